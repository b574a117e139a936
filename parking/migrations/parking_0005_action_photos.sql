-- Photos of enforcement actions: evidence (the car behind an FPS), so written once and
-- never replaced or removed through the API: the application role may only read and add
-- rows. One clean JPEG per action (re-encoded, metadata removed); its SHA-256, checked
-- here, is also written to the audit trail, so that a photo changed later through the
-- owner's connection no longer matches its audit entry.
-- depends: parking_0004_reports

-- The unused column of parking_0003 (nothing ever wrote it): the photos live below, where
-- the application role cannot UPDATE them as it can the actions' other columns.
ALTER TABLE enforcement_actions DROP COLUMN photo;
-- Nor may it change a recorded action (its kind, FPS amount, plate): actions are records.
REVOKE UPDATE ON enforcement_actions FROM civicsense_app;
-- A photo belongs to an action of its own tenant (foreign keys do not see row security).
ALTER TABLE enforcement_actions ADD UNIQUE (id, tenant_id);

CREATE TABLE enforcement_action_photos (
    action_id     bigint PRIMARY KEY,
    tenant_id     bigint NOT NULL REFERENCES tenants (id),
    bytes         bytea NOT NULL,
    sha256        bytea NOT NULL CHECK (sha256 = sha256(bytes)),
    content_type  text NOT NULL CHECK (content_type = 'image/jpeg'),
    width         integer NOT NULL CHECK (width BETWEEN 1 AND 2048),
    height        integer NOT NULL CHECK (height BETWEEN 1 AND 2048),
    size          integer NOT NULL CHECK (size = length(bytes)),
    uploaded_by   text NOT NULL,
    uploaded_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (action_id, tenant_id) REFERENCES enforcement_actions (id, tenant_id)
);
CREATE INDEX enforcement_action_photos_tenant ON enforcement_action_photos (tenant_id);
SELECT civicsense_protect_tenant_table('enforcement_action_photos', 'SELECT, INSERT');
