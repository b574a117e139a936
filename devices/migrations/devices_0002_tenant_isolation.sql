-- Row-level security on the device registry.
-- depends: devices_0001_devices core_0003_identity

SELECT civicsense_protect_tenant_table('devices');
