-- Payment sessions (provider webhooks, the built-in API, pay-station batches) and the
-- provider events and batches they came from (idempotence, replay protection).
-- depends: parking_0001_zones_bays

CREATE TABLE parking_sessions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants (id),
    source          text NOT NULL CHECK (source IN ('provider', 'builtin', 'pay_station')),
    provider        text NOT NULL,        -- operator name, 'civicsense' or the pay station id
    external_id     text NOT NULL,        -- the operator's session id (ours for builtin)
    plate           text NOT NULL,        -- as typed (French SIV plates as AB-123-CD)
    plate_key       text NOT NULL CHECK (plate_key ~ '^[A-Z0-9]{2,12}$'),
    zone_id         bigint NOT NULL REFERENCES parking_zones (id),
    bay_id          bigint REFERENCES parking_bays (id),
    started_at      timestamptz NOT NULL,
    ends_at         timestamptz CHECK (ends_at IS NULL OR ends_at > started_at),
    stopped_at      timestamptz CHECK (stopped_at IS NULL OR stopped_at >= started_at),
    amount          numeric(10, 2) CHECK (amount >= 0),          -- public parking fee
    service_amount  numeric(10, 2) NOT NULL DEFAULT 0 CHECK (service_amount >= 0),  -- SMS...
    currency        text NOT NULL DEFAULT 'EUR',
    last_event_at   timestamptz NOT NULL,  -- the newest event applied (out-of-order events)
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, source, provider, external_id)
);
CREATE INDEX parking_sessions_plate ON parking_sessions (tenant_id, plate_key, started_at DESC);
CREATE INDEX parking_sessions_zone ON parking_sessions (zone_id, started_at DESC);
CREATE INDEX parking_sessions_open ON parking_sessions (zone_id)
    WHERE stopped_at IS NULL;
SELECT civicsense_protect_tenant_table('parking_sessions', 'SELECT, INSERT, UPDATE');

CREATE TABLE parking_provider_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants (id),
    provider        text NOT NULL,
    event_id        text NOT NULL,
    kind            text NOT NULL,
    session_id      bigint REFERENCES parking_sessions (id),
    occurred_at     timestamptz NOT NULL,
    signature_hash  bytea NOT NULL UNIQUE,   -- the same signed request twice is a replay
    body            jsonb NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, provider, event_id)
);
SELECT civicsense_protect_tenant_table('parking_provider_events', 'SELECT, INSERT, UPDATE');

CREATE TABLE parking_batches (
    tenant_id    bigint NOT NULL REFERENCES tenants (id),
    station      text NOT NULL,
    batch_id     text NOT NULL,
    report       jsonb NOT NULL,            -- the per-item answer, given again on a re-send
    received_by  text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, station, batch_id)
);
SELECT civicsense_protect_tenant_table('parking_batches', 'SELECT, INSERT');
