-- Tariff zones, bays and the occupancy intervals their sensors report.
-- Vocabulary after FIWARE OnStreetParking (zone) and ParkingSpot (bay).
-- depends: devices_0002_tenant_isolation core_0003_identity

CREATE TABLE parking_zones (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants (id),
    code            text NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$'),
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    category        text NOT NULL CHECK (category IN
                        ('short_term', 'long_term', 'residents', 'delivery', 'disabled', 'mixed')),
    area            jsonb CHECK (area IS NULL OR jsonb_typeof(area) = 'object'),  -- GeoJSON Polygon
    hours           jsonb NOT NULL,   -- parking.hours.RegulatedHours
    tariff          jsonb NOT NULL,   -- parking.tariffs.Tariff
    grace_minutes   integer NOT NULL DEFAULT 10 CHECK (grace_minutes BETWEEN 0 AND 240),
    active          boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, code)
);
SELECT civicsense_protect_tenant_table('parking_zones');

CREATE TABLE parking_bays (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    zone_id     bigint NOT NULL REFERENCES parking_zones (id),
    code        text NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9_./-]{0,39}$'),
    kind        text NOT NULL DEFAULT 'standard' CHECK (kind IN
                    ('standard', 'disabled', 'delivery', 'ev', 'residents', 'motorcycle')),
    lat         double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon         double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
    device_id   bigint REFERENCES devices (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, code)
);
CREATE UNIQUE INDEX parking_bays_device ON parking_bays (device_id) WHERE device_id IS NOT NULL;
CREATE INDEX parking_bays_zone ON parking_bays (zone_id);
SELECT civicsense_protect_tenant_table('parking_bays');

-- One row per stay of a vehicle in a bay, rebuilt from the sensor's readings when a
-- late or repeated uplink arrives (parking.occupancy).
CREATE TABLE bay_occupancy (
    bay_id      bigint NOT NULL REFERENCES parking_bays (id) ON DELETE CASCADE,
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    arrived_at  timestamptz NOT NULL,
    left_at     timestamptz CHECK (left_at IS NULL OR left_at > arrived_at),
    PRIMARY KEY (bay_id, arrived_at)
);
CREATE INDEX bay_occupancy_open ON bay_occupancy (bay_id) WHERE left_at IS NULL;
CREATE INDEX bay_occupancy_tenant_time ON bay_occupancy (tenant_id, arrived_at);
SELECT civicsense_protect_tenant_table('bay_occupancy', 'SELECT');
