-- Row-level security on what ingest stores; the application role reads it, ingest writes
-- through the privileged path. Partitions and chunks get no grant: reading one directly
-- would skip the parent's policy, so the application role may not.
-- depends: ingest_0002_rejects core_0003_identity

SELECT civicsense_protect_tenant_table('uplinks', 'SELECT');
SELECT civicsense_protect_tenant_table('device_events', 'SELECT');
SELECT civicsense_protect_tenant_table('ingest_rejects', 'SELECT');
