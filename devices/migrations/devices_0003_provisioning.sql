-- ChirpStack provisioning state: a device stays 'registered' with the error shown until a
-- provisioning run succeeds.
-- depends: devices_0002_tenant_isolation

ALTER TABLE devices
    ADD COLUMN provisioned_at        timestamptz,
    ADD COLUMN provisioning_error    text,
    ADD COLUMN provisioning_attempts integer NOT NULL DEFAULT 0;
CREATE INDEX devices_to_provision ON devices (id) WHERE status = 'registered';
