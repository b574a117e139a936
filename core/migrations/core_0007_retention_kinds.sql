-- Which retention setting governs each time table ('raw': CIVICSENSE_RAW_RETENTION_DAYS,
-- 'readings': CIVICSENSE_READINGS_RETENTION_DAYS), so that the maintenance job applies a
-- changed setting instead of the value copied when the table was created. Time tables are
-- 'raw' unless a migration says otherwise, as this one does for readings.
-- depends: core_0006_privacy

ALTER TABLE timeseries_tables
    ADD COLUMN retention text NOT NULL DEFAULT 'raw' CHECK (retention IN ('raw', 'readings'));
UPDATE timeseries_tables SET retention = 'readings' WHERE name = 'readings';
