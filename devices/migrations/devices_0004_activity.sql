-- Device activity: the last uplink, and how often the device is expected to send.
-- depends: devices_0003_provisioning

ALTER TABLE devices
    ADD COLUMN last_seen_at        timestamptz,
    ADD COLUMN expected_interval_s integer CHECK (expected_interval_s > 0);
CREATE INDEX devices_active_last_seen ON devices (last_seen_at) WHERE status = 'active';
