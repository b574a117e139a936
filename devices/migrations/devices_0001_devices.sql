-- The device registry: one row per LoRaWAN device a tenant owns.
-- depends: core_0001_base

CREATE TABLE devices (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id          bigint NOT NULL REFERENCES tenants (id),
    dev_eui            text NOT NULL CHECK (dev_eui ~ '^[0-9a-f]{16}$'),
    join_eui           text CHECK (join_eui ~ '^[0-9a-f]{16}$'),
    app_key_encrypted  bytea,
    model              text NOT NULL,
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    site               text,
    bay                text,
    lat                double precision CHECK (lat BETWEEN -90 AND 90),
    lon                double precision CHECK (lon BETWEEN -180 AND 180),
    status             text NOT NULL DEFAULT 'registered'
                       CHECK (status IN ('registered', 'provisioned', 'active', 'silent', 'decommissioned')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- A DevEUI is live on one device at a time; decommissioned rows keep their history.
CREATE UNIQUE INDEX devices_live_dev_eui ON devices (dev_eui) WHERE status <> 'decommissioned';
CREATE INDEX devices_tenant ON devices (tenant_id);
