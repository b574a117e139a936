-- A decommissioned device is deleted from ChirpStack by the provisioning job.
-- depends: devices_0004_activity

ALTER TABLE devices ADD COLUMN deprovisioned_at timestamptz;
CREATE INDEX devices_to_deprovision ON devices (id)
    WHERE status = 'decommissioned' AND provisioned_at IS NOT NULL AND deprovisioned_at IS NULL;
