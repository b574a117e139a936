-- Files attached to incidents: photos (stored only as the clean JPEG that core.images makes,
-- metadata removed) and PDF documents (checked by their magic bytes). They are the record of
-- the work done, so the application role may only read and add them; the SHA-256, checked
-- here, is also written to the audit trail and to the incident's history.
-- depends: alerts_0001_rules_incidents

-- An attachment belongs to an incident of its own tenant (foreign keys do not see row security).
ALTER TABLE incidents ADD UNIQUE (id, tenant_id);

CREATE TABLE incident_attachments (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id     bigint NOT NULL REFERENCES tenants (id),
    incident_id   bigint NOT NULL,
    filename      text NOT NULL CHECK (length(filename) BETWEEN 1 AND 200),
    content_type  text NOT NULL CHECK (content_type IN ('image/jpeg', 'application/pdf')),
    bytes         bytea NOT NULL,
    sha256        bytea NOT NULL CHECK (sha256 = sha256(bytes)),
    size          integer NOT NULL CHECK (size = length(bytes)),
    width         integer CHECK (width BETWEEN 1 AND 2048),
    height        integer CHECK (height BETWEEN 1 AND 2048),
    uploaded_by   text NOT NULL,
    uploaded_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (incident_id, tenant_id) REFERENCES incidents (id, tenant_id),
    -- photos have their dimensions, documents none
    CHECK ((content_type = 'image/jpeg') = (width IS NOT NULL AND height IS NOT NULL))
);
CREATE INDEX incident_attachments_incident ON incident_attachments (incident_id, id);
SELECT civicsense_protect_tenant_table('incident_attachments', 'SELECT, INSERT');
