-- Scheduled job runs across processes: one row per job and time slot, claimed before the
-- run, so a slot runs once however many civicsense processes schedule it. Privileged path
-- only (the scheduler), no tenant data.
-- depends: core_0003_identity

CREATE TABLE scheduler_runs (
    job          text NOT NULL,
    slot         bigint NOT NULL,   -- the run's instant in job intervals since the epoch
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    outcome      text CHECK (outcome IN ('ok', 'failed')),
    error        text,
    runner       text NOT NULL,     -- host and process id
    PRIMARY KEY (job, slot)
);
