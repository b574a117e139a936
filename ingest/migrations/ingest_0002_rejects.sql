-- Events the pipeline could not use, kept with the reason: never dropped.
-- fingerprint makes a redelivered reject land once.
-- depends: ingest_0001_uplinks

CREATE TABLE ingest_rejects (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  timestamptz NOT NULL DEFAULT now(),
    tenant_id    bigint REFERENCES tenants (id),
    source       text NOT NULL,
    topic        text,
    event        text,
    dev_eui      text,
    reason       text NOT NULL,
    detail       text NOT NULL,
    fingerprint  bytea NOT NULL UNIQUE,
    raw          bytea NOT NULL
);
CREATE INDEX ingest_rejects_received ON ingest_rejects (received_at DESC);
CREATE INDEX ingest_rejects_reason ON ingest_rejects (reason, received_at DESC);
