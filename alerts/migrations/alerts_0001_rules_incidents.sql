-- Alert rules on readings and device health, the alerts they raise, and incidents (tickets)
-- with their history, from which the service-level clocks are replayed.
-- depends: devices_0008_photos ingest_0003_tenant_isolation

-- A tenant's service-level options (alerts.sla.SlaPolicy as JSON; defaults when absent).
CREATE TABLE alert_settings (
    tenant_id   bigint PRIMARY KEY REFERENCES tenants (id),
    sla_policy  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(sla_policy) = 'object'),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
SELECT civicsense_protect_tenant_table('alert_settings', 'SELECT, INSERT, UPDATE');

-- condition: alerts.rules.Condition as JSON (threshold, event, battery, silence, gateway, rate);
-- scope: which devices (model, site, tag, device), empty = every device of the tenant.
CREATE TABLE alert_rules (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants (id),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    category        text NOT NULL CHECK (category ~ '^[a-z][a-z0-9_]{1,39}$'),
    condition       jsonb NOT NULL CHECK (jsonb_typeof(condition) = 'object'),
    scope           jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(scope) = 'object'),
    incident_class  text CHECK (incident_class IN ('bloquant', 'majeur', 'mineur')),
    priority        text CHECK (priority IN ('P0', 'P1', 'P2')),
    open_incident   boolean NOT NULL DEFAULT false,  -- open an incident when an alert opens
    enabled         boolean NOT NULL DEFAULT true,
    template        text,            -- the shipped default it was made from, if any
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT open_incident OR incident_class IS NOT NULL)
);
CREATE INDEX alert_rules_tenant ON alert_rules (tenant_id) WHERE enabled;
CREATE UNIQUE INDEX alert_rules_template ON alert_rules (tenant_id, template);
SELECT civicsense_protect_tenant_table('alert_rules');

-- subject: what the alert is about, `device:<id>` or `gateway:<gateway id>`; one alert per
-- rule and subject is not cleared at a time. `pending`: the condition holds but not for its
-- duration yet. Repeats count the condition seen again while the alert is open.
CREATE TABLE alerts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        bigint NOT NULL REFERENCES tenants (id),
    rule_id          bigint NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    subject          text NOT NULL,
    device_id        bigint REFERENCES devices (id),
    gateway_id       text,
    state            text NOT NULL CHECK (state IN ('pending', 'open', 'cleared')),
    started_at       timestamptz NOT NULL,   -- the condition first held
    opened_at        timestamptz,
    last_seen_at     timestamptz NOT NULL,   -- the condition last held
    repeats          integer NOT NULL DEFAULT 0,
    value            double precision,       -- the value that last held the condition
    acknowledged_at  timestamptz,
    acknowledged_by  bigint REFERENCES users (id),
    cleared_at       timestamptz,
    incident_id      bigint,
    CHECK (state = 'pending' OR opened_at IS NOT NULL OR cleared_at IS NOT NULL)
);
CREATE UNIQUE INDEX alerts_one_active ON alerts (rule_id, subject) WHERE state <> 'cleared';
CREATE INDEX alerts_tenant_time ON alerts (tenant_id, started_at DESC);
CREATE INDEX alerts_active_device ON alerts (device_id) WHERE state <> 'cleared';
CREATE INDEX alerts_active_gateway ON alerts (gateway_id) WHERE state <> 'cleared';
SELECT civicsense_protect_tenant_table('alerts');

-- Incidents: opened from an alert (source 'alert'), by a user ('user'), or from a resident's
-- or an elected official's request ('request'). Due instants are cached from the replayed
-- history for the scheduler's checks; the history (incident_events) is the truth.
CREATE TABLE incidents (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        bigint NOT NULL REFERENCES tenants (id),
    title            text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description      text CHECK (length(description) <= 5000),
    category         text NOT NULL DEFAULT 'other' CHECK (category ~ '^[a-z][a-z0-9_]{1,39}$'),
    incident_class   text NOT NULL CHECK (incident_class IN ('bloquant', 'majeur', 'mineur')),
    priority         text NOT NULL CHECK (priority IN ('P0', 'P1', 'P2')),
    state            text NOT NULL DEFAULT 'new' CHECK (state IN
                         ('new', 'acknowledged', 'in_progress', 'waiting', 'resolved', 'closed')),
    source           text NOT NULL CHECK (source IN ('alert', 'user', 'request')),
    alert_id         bigint REFERENCES alerts (id),
    device_id        bigint REFERENCES devices (id),
    site             text CHECK (length(site) <= 200),
    lat              double precision CHECK (lat BETWEEN -90 AND 90),
    lon              double precision CHECK (lon BETWEEN -180 AND 180),
    requester        jsonb CHECK (requester IS NULL OR jsonb_typeof(requester) = 'object'),
    assignee_id      bigint REFERENCES users (id),
    created_by       bigint REFERENCES users (id),
    public           boolean NOT NULL DEFAULT false,   -- on the town's public status list
    planned_start    timestamptz,                      -- a planned intervention
    planned_end      timestamptz,
    opened_at        timestamptz NOT NULL DEFAULT now(),
    gti_due_at       timestamptz,
    gtr_due_at       timestamptz,
    gti_reached_at   timestamptz,
    gtr_reached_at   timestamptz,
    resolved_at      timestamptz,
    closed_at        timestamptz,
    last_reaction_at timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (source <> 'alert' OR alert_id IS NOT NULL),
    CHECK (planned_end IS NULL OR planned_start IS NOT NULL AND planned_end > planned_start)
);
CREATE INDEX incidents_tenant_state ON incidents (tenant_id, state, opened_at DESC);
CREATE INDEX incidents_open_due ON incidents (gti_due_at, gtr_due_at) WHERE state <> 'closed';
ALTER TABLE alerts ADD FOREIGN KEY (incident_id) REFERENCES incidents (id);
SELECT civicsense_protect_tenant_table('incidents', 'SELECT, INSERT, UPDATE');

-- What happened to an incident, in order: its transitions (replayed into the clocks),
-- re-qualifications with their reason, assignments, comments, attachments, SLA notices.
CREATE TABLE incident_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES tenants (id),
    incident_id  bigint NOT NULL REFERENCES incidents (id),
    at           timestamptz NOT NULL DEFAULT now(),
    kind         text NOT NULL CHECK (kind IN ('opened', 'transition', 'requalified', 'assigned',
                     'comment', 'attachment', 'sla_warning', 'sla_breach', 'escalated')),
    transition   text CHECK (transition IN ('acknowledge', 'start', 'wait', 'resume', 'resolve',
                     'reopen', 'close', 'auto_close')),
    actor        text NOT NULL,
    actor_id     bigint REFERENCES users (id),
    body         text CHECK (length(body) <= 5000),
    details      jsonb NOT NULL DEFAULT '{}',
    CHECK ((kind = 'transition') = (transition IS NOT NULL))
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, at, id);
-- SLA notices are sent once per incident, milestone and kind (warning, breach).
CREATE UNIQUE INDEX incident_events_sla_once ON incident_events
    (incident_id, kind, (details ->> 'milestone')) WHERE kind IN ('sla_warning', 'sla_breach');
SELECT civicsense_protect_tenant_table('incident_events', 'SELECT, INSERT');

-- Gateways as heard in uplinks' radio metadata, for the "gateway not heard" rules.
CREATE TABLE gateways_heard (
    tenant_id      bigint NOT NULL REFERENCES tenants (id),
    gateway_id     text NOT NULL CHECK (length(gateway_id) BETWEEN 1 AND 64),
    last_heard_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, gateway_id)
);
SELECT civicsense_protect_tenant_table('gateways_heard', 'SELECT');
