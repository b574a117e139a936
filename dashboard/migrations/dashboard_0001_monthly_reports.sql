-- Monthly reports sent: one row per town and month, claimed in the sending transaction so
-- that a failed send leaves no row (retried at the next run) and a second process skips.
-- depends: catalog_0003_deployment

CREATE TABLE dashboard_report_deliveries (
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    month       text NOT NULL CHECK (month ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    recipients  text[] NOT NULL,
    message_id  text NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, month)
);
SELECT civicsense_protect_tenant_table('dashboard_report_deliveries', 'SELECT, INSERT');
