-- Quotes and orders of member towns. Quote lines copy what they were priced on (solution
-- version, price line, label, unit price, VAT rate): catalogue versions are immutable
-- already, the copy makes a quote a self-contained document that a later catalogue change
-- cannot alter. Every row carries its town (tenant_id) under row-level security.
-- depends: catalog_0001_catalogue

-- Document numbers (DEV-2026-000123, CMD-2026-000045): one counter per prefix and year,
-- incremented in the transaction that writes the document, so numbers have no gaps.
-- Shared by every town (the numbering is the operator's) and holds no tenant data.
CREATE TABLE catalog_document_numbers (
    prefix       text NOT NULL CHECK (prefix IN ('DEV', 'CMD')),
    year         integer NOT NULL CHECK (year BETWEEN 2000 AND 9999),
    last_number  integer NOT NULL CHECK (last_number >= 1),
    PRIMARY KEY (prefix, year)
);
GRANT SELECT, INSERT, UPDATE ON catalog_document_numbers TO civicsense_app;

-- Totals are stored (lists and reports read them) and recomputed from the lines by
-- catalog.money on every change of lines.
CREATE TABLE catalog_quotes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES tenants (id),
    number       text NOT NULL UNIQUE CHECK (number ~ '^DEV-[0-9]{4}-[0-9]{6,}$'),
    status       text NOT NULL DEFAULT 'draft'
                 CHECK (status IN ('draft', 'submitted', 'accepted', 'amended', 'refused')),
    reference    text NOT NULL DEFAULT '' CHECK (length(reference) <= 200),
    total_excl   numeric(14, 2) NOT NULL DEFAULT 0,
    total_vat    numeric(14, 2) NOT NULL DEFAULT 0,
    total_incl   numeric(14, 2) NOT NULL DEFAULT 0,
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (total_incl = total_excl + total_vat),
    UNIQUE (id, tenant_id)  -- lines, events and orders name their quote with their town
);
CREATE INDEX catalog_quotes_tenant ON catalog_quotes (tenant_id, created_at DESC);
SELECT civicsense_protect_tenant_table('catalog_quotes', 'SELECT, INSERT, UPDATE');
GRANT USAGE ON SEQUENCE catalog_quotes_id_seq TO civicsense_app;

CREATE TABLE catalog_quote_lines (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         bigint NOT NULL,
    quote_id          bigint NOT NULL,
    position          integer NOT NULL CHECK (position >= 1),
    solution_id       bigint NOT NULL,
    solution_version  integer NOT NULL,
    solution_slug     text NOT NULL,
    solution_name     text NOT NULL,
    price_line_id     bigint NOT NULL REFERENCES catalog_price_lines (id),
    code              text NOT NULL,
    label             text NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('hardware', 'software', 'service')),
    unit              text NOT NULL CHECK (unit IN ('device', 'year', 'month', 'day', 'unit')),
    device_model      text,
    unit_price        numeric(12, 2) NOT NULL CHECK (unit_price >= 0),
    vat_rate          numeric(5, 2) NOT NULL CHECK (vat_rate IN (0, 2.1, 5.5, 10, 20)),
    quantity          numeric(12, 3) NOT NULL CHECK (quantity > 0),
    discount_percent  numeric(5, 2) NOT NULL DEFAULT 0 CHECK (discount_percent BETWEEN 0 AND 100),
    amount_excl       numeric(14, 2) NOT NULL,
    FOREIGN KEY (quote_id, tenant_id) REFERENCES catalog_quotes (id, tenant_id) ON DELETE CASCADE,
    FOREIGN KEY (solution_id, solution_version)
        REFERENCES catalog_solution_versions (solution_id, version),
    UNIQUE (quote_id, position),
    UNIQUE (quote_id, solution_id, code)
);
CREATE INDEX catalog_quote_lines_tenant ON catalog_quote_lines (tenant_id);
-- DELETE: a draft's or an amendment's lines are replaced as a whole
SELECT civicsense_protect_tenant_table('catalog_quote_lines', 'SELECT, INSERT, DELETE');
GRANT USAGE ON SEQUENCE catalog_quote_lines_id_seq TO civicsense_app;

-- The quote's history: every status it went through, with the reason given and who.
CREATE TABLE catalog_quote_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id  bigint NOT NULL,
    quote_id   bigint NOT NULL,
    status     text NOT NULL,
    reason     text CHECK (length(reason) <= 2000),
    actor      text NOT NULL,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    FOREIGN KEY (quote_id, tenant_id) REFERENCES catalog_quotes (id, tenant_id)
);
CREATE INDEX catalog_quote_events_quote ON catalog_quote_events (quote_id, at);
SELECT civicsense_protect_tenant_table('catalog_quote_events', 'SELECT, INSERT');
GRANT USAGE ON SEQUENCE catalog_quote_events_id_seq TO civicsense_app;

-- An order is an accepted quote (whose lines it keeps) with the town's purchase-order
-- number. The beneficiary's name and SIRET are copied as they were at order time: the
-- operator reports per SIRET, and a town's record may change later. The status follows
-- the dates (each step has its date, in order), which the CHECKs hold together.
CREATE TABLE catalog_orders (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id          bigint NOT NULL,
    quote_id           bigint NOT NULL UNIQUE,
    number             text NOT NULL UNIQUE CHECK (number ~ '^CMD-[0-9]{4}-[0-9]{6,}$'),
    po_number          text NOT NULL CHECK (length(po_number) BETWEEN 1 AND 100),
    status             text NOT NULL DEFAULT 'ordered'
                       CHECK (status IN ('ordered', 'delivered', 'invoiced', 'paid')),
    ordered_on         date NOT NULL,
    delivered_on       date CHECK (delivered_on >= ordered_on),
    invoiced_on        date CHECK (invoiced_on >= delivered_on),
    paid_on            date CHECK (paid_on >= invoiced_on),
    beneficiary_name   text NOT NULL,
    beneficiary_siret  text NOT NULL CHECK (beneficiary_siret ~ '^[0-9]{14}$'),
    total_excl         numeric(14, 2) NOT NULL,
    total_vat          numeric(14, 2) NOT NULL,
    total_incl         numeric(14, 2) NOT NULL,
    created_by         text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (total_incl = total_excl + total_vat),
    CHECK (status = CASE WHEN paid_on IS NOT NULL THEN 'paid'
                         WHEN invoiced_on IS NOT NULL THEN 'invoiced'
                         WHEN delivered_on IS NOT NULL THEN 'delivered'
                         ELSE 'ordered' END),
    CHECK (paid_on IS NULL OR invoiced_on IS NOT NULL),
    CHECK (invoiced_on IS NULL OR delivered_on IS NOT NULL),
    FOREIGN KEY (quote_id, tenant_id) REFERENCES catalog_quotes (id, tenant_id)
);
CREATE INDEX catalog_orders_ordered_on ON catalog_orders (ordered_on);
CREATE INDEX catalog_orders_tenant ON catalog_orders (tenant_id, ordered_on DESC);
-- status moves are the operator's, on the privileged path
SELECT civicsense_protect_tenant_table('catalog_orders', 'SELECT, INSERT');
GRANT USAGE ON SEQUENCE catalog_orders_id_seq TO civicsense_app;
