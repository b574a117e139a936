-- Identity: the application role and row-level security, users, roles, machine clients,
-- sessions and the append-only audit trail.
-- depends: core_0002_readings

-- The role web requests run as. It owns nothing, so row-level security applies to it;
-- the tenant is set per transaction (civicsense.tenant_id). Ingest, migrations and
-- operator tasks use the owner's connection: the explicit privileged path.
DO $$
BEGIN
    CREATE ROLE civicsense_app NOLOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;  -- one role per cluster, shared by the databases on it
END $$;
GRANT civicsense_app TO CURRENT_USER;
GRANT USAGE ON SCHEMA public TO civicsense_app;

CREATE FUNCTION civicsense_current_tenant() RETURNS bigint
    LANGUAGE sql STABLE
    AS $$ SELECT nullif(current_setting('civicsense.tenant_id', true), '')::bigint $$;

-- Row-level security on a tenant table: the application role sees and writes only the
-- rows of the tenant set for the transaction. Every package calls it on its tables.
CREATE FUNCTION civicsense_protect_tenant_table(
    tbl regclass, privileges text DEFAULT 'SELECT, INSERT, UPDATE, DELETE',
    tenant_column text DEFAULT 'tenant_id'
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format(
        'CREATE POLICY tenant_isolation ON %s TO civicsense_app'
        ' USING (%I = civicsense_current_tenant())'
        ' WITH CHECK (%I = civicsense_current_tenant())',
        tbl, tenant_column, tenant_column);
    EXECUTE format('GRANT %s ON %s TO civicsense_app', privileges, tbl);
END $$;

ALTER TABLE tenants
    ADD COLUMN siret      text CHECK (siret ~ '^[0-9]{14}$'),
    ADD COLUMN insee_code text CHECK (insee_code ~ '^([0-9]{2}|2A|2B)[0-9]{3}$');
SELECT civicsense_protect_tenant_table('tenants', 'SELECT', 'id');
SELECT civicsense_protect_tenant_table('readings', 'SELECT');

-- People. tenant_id is NULL for the operator level (platform administrators).
CREATE TABLE users (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id            bigint REFERENCES tenants (id),
    email                text NOT NULL CHECK (email = lower(email) AND email ~ '^[^@\s]+@[^@\s]+$'),
    display_name         text,
    password_hash        text NOT NULL,
    password_changed_at  timestamptz NOT NULL DEFAULT now(),
    totp_secret          bytea,          -- encrypted with the secret key
    totp_pending         bytea,          -- enrolment started, not confirmed yet
    totp_last_step       bigint,         -- a code is accepted once
    recovery_codes       text[] NOT NULL DEFAULT '{}',  -- keyed hashes, single use
    failed_logins        integer NOT NULL DEFAULT 0,
    locked_until         timestamptz,
    active               boolean NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL DEFAULT now(),
    last_login_at        timestamptz
);
CREATE UNIQUE INDEX users_email ON users (email);
CREATE INDEX users_tenant ON users (tenant_id);

CREATE TABLE user_roles (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id  bigint REFERENCES tenants (id),
    role       text NOT NULL,
    PRIMARY KEY (user_id, role)
);

CREATE TABLE user_permissions (
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tenant_id   bigint REFERENCES tenants (id),
    permission  text NOT NULL,
    PRIMARY KEY (user_id, permission)
);

SELECT civicsense_protect_tenant_table('users');
SELECT civicsense_protect_tenant_table('user_roles');
SELECT civicsense_protect_tenant_table('user_permissions');
GRANT USAGE ON SEQUENCE users_id_seq TO civicsense_app;

-- Integrations' API keys: only a hash of the secret part is kept.
CREATE TABLE api_keys (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     bigint NOT NULL REFERENCES tenants (id),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    prefix        text NOT NULL UNIQUE,
    secret_hash   bytea NOT NULL,
    permissions   text[] NOT NULL,
    created_by    bigint REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
SELECT civicsense_protect_tenant_table('api_keys');
GRANT USAGE ON SEQUENCE api_keys_id_seq TO civicsense_app;

-- Payment providers' webhook signing secrets (HMAC needs the secret itself: encrypted).
CREATE TABLE payment_providers (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         bigint NOT NULL REFERENCES tenants (id),
    provider          text NOT NULL CHECK (provider ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    secret_encrypted  bytea NOT NULL,
    created_by        bigint REFERENCES users (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    revoked_at        timestamptz
);
CREATE UNIQUE INDEX payment_providers_live ON payment_providers (tenant_id, provider)
    WHERE revoked_at IS NULL;
SELECT civicsense_protect_tenant_table('payment_providers');
GRANT USAGE ON SEQUENCE payment_providers_id_seq TO civicsense_app;

-- Refresh tokens and browser sessions: hashes only; privileged path only.
CREATE TABLE auth_sessions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('refresh', 'cookie')),
    token_hash    bytea NOT NULL UNIQUE,
    csrf_hash     bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    source        text
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);

-- The audit trail: who did what, where from. Append-only for everyone but retention.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    tenant_id   bigint REFERENCES tenants (id),
    actor_kind  text NOT NULL CHECK (actor_kind IN ('user', 'api_key', 'cli', 'anonymous', 'system')),
    actor_id    bigint,
    actor       text NOT NULL,
    action      text NOT NULL,
    target      text,
    outcome     text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    source      text,
    details     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at DESC);
CREATE INDEX audit_log_failures ON audit_log (source, at DESC) WHERE outcome = 'failure';

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit trail is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

ALTER TABLE audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_reads ON audit_log FOR SELECT TO civicsense_app
    USING (tenant_id = civicsense_current_tenant());
-- the application role appends for the tenant of its transaction only; operator-level
-- entries (no tenant: logins of unknown accounts, operators' work) go the privileged path
CREATE POLICY tenant_appends ON audit_log FOR INSERT TO civicsense_app
    WITH CHECK (tenant_id = civicsense_current_tenant());
GRANT SELECT, INSERT ON audit_log TO civicsense_app;
