-- Installation photos: one clean JPEG per device (re-encoded, metadata removed), replaced
-- by a new upload. Kept when the device is decommissioned: evidence of the installation.
-- depends: devices_0007_tags

CREATE TABLE device_photos (
    device_id     bigint PRIMARY KEY REFERENCES devices (id),
    tenant_id     bigint NOT NULL REFERENCES tenants (id),
    bytes         bytea NOT NULL,
    content_type  text NOT NULL CHECK (content_type = 'image/jpeg'),
    width         integer NOT NULL CHECK (width BETWEEN 1 AND 2048),
    height        integer NOT NULL CHECK (height BETWEEN 1 AND 2048),
    size          integer NOT NULL CHECK (size = length(bytes)),
    uploaded_by   text NOT NULL,
    uploaded_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_photos_tenant ON device_photos (tenant_id);
SELECT civicsense_protect_tenant_table('device_photos');
