-- What agents did on the street: FPS issued (forfait post-stationnement), warning, no action.
-- depends: parking_0002_sessions

CREATE TABLE enforcement_actions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    bay_id      bigint REFERENCES parking_bays (id),
    zone_id     bigint REFERENCES parking_zones (id),
    plate       text,
    plate_key   text CHECK (plate_key ~ '^[A-Z0-9]{2,12}$'),
    kind        text NOT NULL CHECK (kind IN ('fps', 'warning', 'none')),
    amount      numeric(10, 2) CHECK (amount >= 0),
    note        text CHECK (length(note) <= 1000),
    bay_status  text,             -- what the map showed when the agent acted
    agent       text NOT NULL,
    agent_id    bigint,
    photo       bytea,            -- re-encoded JPEG without metadata
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (bay_id IS NOT NULL OR plate IS NOT NULL),
    CHECK (kind = 'fps' OR amount IS NULL)
);
CREATE INDEX enforcement_actions_time ON enforcement_actions (tenant_id, created_at DESC);
SELECT civicsense_protect_tenant_table('enforcement_actions', 'SELECT, INSERT, UPDATE');
