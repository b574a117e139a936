-- Notifications of incidents: where a tenant sends them (routes), how each user wants them
-- (preferences), the outbox a delivery worker drains, and the daily digests.
-- depends: alerts_0002_incident_attachments

-- A tenant's fixed destinations: a mailbox (a duty desk) or a signed webhook. The webhook's
-- signing secret is encrypted with the secret key (core.crypto) and never returned.
-- Empty categories or events: all of them; min_priority: the least urgent one sent.
CREATE TABLE notification_routes (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         bigint NOT NULL REFERENCES tenants (id),
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    channel           text NOT NULL CHECK (channel IN ('email', 'webhook')),
    target            text NOT NULL CHECK (length(target) BETWEEN 3 AND 2000),
    secret_encrypted  bytea,
    categories        text[] NOT NULL DEFAULT '{}',
    events            text[] NOT NULL DEFAULT '{}',
    min_priority      text NOT NULL DEFAULT 'P2' CHECK (min_priority IN ('P0', 'P1', 'P2')),
    created_by        bigint REFERENCES users (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((channel = 'webhook') = (secret_encrypted IS NOT NULL))
);
CREATE UNIQUE INDEX notification_routes_target ON notification_routes (tenant_id, channel, target);
SELECT civicsense_protect_tenant_table('notification_routes', 'SELECT, INSERT, DELETE');
GRANT USAGE ON SEQUENCE notification_routes_id_seq TO civicsense_app;

-- A user's own choice; without a row: immediate, every category, every priority.
-- digest_hour: the local hour (tenant's timezone) after which the day's digest is sent.
CREATE TABLE notification_preferences (
    user_id       bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    tenant_id     bigint NOT NULL REFERENCES tenants (id),
    mode          text NOT NULL DEFAULT 'immediate' CHECK (mode IN ('immediate', 'digest', 'off')),
    categories    text[] NOT NULL DEFAULT '{}',
    min_priority  text NOT NULL DEFAULT 'P2' CHECK (min_priority IN ('P0', 'P1', 'P2')),
    digest_hour   smallint NOT NULL DEFAULT 7 CHECK (digest_hour BETWEEN 0 AND 23),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
SELECT civicsense_protect_tenant_table('notification_preferences', 'SELECT, INSERT, UPDATE');

-- One user's digest of one local day, claimed before it is sent: at most one per day.
CREATE TABLE notification_digests (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    day         date NOT NULL,
    target      text NOT NULL,
    items       integer NOT NULL CHECK (items > 0),
    message_id  text NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, day)
);
SELECT civicsense_protect_tenant_table('notification_digests', 'SELECT');

-- The outbox, written in the transaction of the incident's change. `pending` rows are sent
-- by the delivery worker when next_attempt_at comes (it also leases a claimed row by moving
-- next_attempt_at), `digest` rows wait for their user's digest. instance tells two
-- occurrences of one event apart (two assignments), so the same occurrence is queued once.
CREATE TABLE notifications (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        bigint NOT NULL REFERENCES tenants (id),
    channel          text NOT NULL CHECK (channel IN ('email', 'webhook')),
    target           text NOT NULL,
    route_id         bigint REFERENCES notification_routes (id) ON DELETE SET NULL,
    user_id          bigint REFERENCES users (id) ON DELETE CASCADE,
    incident_id      bigint NOT NULL REFERENCES incidents (id),
    event            text NOT NULL CHECK (event IN ('opened', 'assigned', 'requalified',
                         'resolved', 'closed', 'sla_warning', 'sla_breach', 'escalated')),
    instance         text NOT NULL,
    subject          text NOT NULL,
    body             text NOT NULL,
    payload          jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    status           text NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'digest')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    digest_id        bigint REFERENCES notification_digests (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    UNIQUE (channel, target, incident_id, event, instance)
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_digest ON notifications (user_id, created_at) WHERE status = 'digest';
CREATE INDEX notifications_tenant ON notifications (tenant_id, created_at DESC);
SELECT civicsense_protect_tenant_table('notifications', 'SELECT, INSERT');
GRANT USAGE ON SEQUENCE notifications_id_seq TO civicsense_app;
