-- Downlinks queued for devices through ChirpStack, and what became of them.
-- depends: devices_0005_deprovisioning

CREATE TABLE downlinks (
    id          uuid PRIMARY KEY,  -- ChirpStack's queue item id (we choose it)
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    device_id   bigint NOT NULL REFERENCES devices (id),
    dev_eui     text NOT NULL,
    f_port      integer NOT NULL CHECK (f_port BETWEEN 1 AND 223),
    data        bytea NOT NULL,
    confirmed   boolean NOT NULL,
    status      text NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'sent', 'acknowledged', 'nacked', 'failed')),
    error       text,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX downlinks_device ON downlinks (device_id, created_at DESC);
SELECT civicsense_protect_tenant_table('downlinks', 'SELECT, INSERT, UPDATE');
