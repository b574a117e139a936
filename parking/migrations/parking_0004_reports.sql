-- Daily reports: who receives them, and what was sent (a restart does not send twice).
-- depends: parking_0003_enforcement

CREATE TABLE parking_report_recipients (
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    email       text NOT NULL CHECK (email = lower(email) AND email ~ '^[^@\s]+@[^@\s]+$'
                                     AND length(email) <= 254),
    role        text NOT NULL CHECK (role IN ('regie', 'police', 'parking', 'finance', 'other')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, email)
);
SELECT civicsense_protect_tenant_table('parking_report_recipients');

-- One row per report and local day: claimed in the sending transaction, so a failed
-- send leaves no row (retried at the next run) and a second run finds the row.
CREATE TABLE parking_report_deliveries (
    tenant_id   bigint NOT NULL REFERENCES tenants (id),
    report      text NOT NULL CHECK (report IN ('reconciliation')),
    day         date NOT NULL,
    recipients  text[] NOT NULL,
    message_id  text NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, report, day)
);
SELECT civicsense_protect_tenant_table('parking_report_deliveries', 'SELECT, INSERT');
