-- The solution catalogue shared by every tenant: use-case domains, solutions with their
-- lifecycle status, immutable versions (content and price lines) and the status history.
-- No tenant_id: the catalogue belongs to the operator; the application role may only read
-- it, and every write goes through the operator's privileged connection (catalog.solutions).
-- depends: alerts_0003_notifications

-- Use-case domains (parking, air_indoor, leak...): an extensible list, not an enum.
CREATE TABLE catalog_domains (
    code        text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]{1,39}$'),
    name_fr     text NOT NULL CHECK (length(name_fr) BETWEEN 1 AND 200),
    name_en     text NOT NULL CHECK (length(name_en) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The domains of the purchasing groups' framework agreements; more through the operator API.
INSERT INTO catalog_domains (code, name_fr, name_en) VALUES
    ('parking', 'Stationnement', 'Parking'),
    ('air_indoor', 'Qualité de l''air intérieur', 'Indoor air quality'),
    ('air_outdoor', 'Qualité de l''air extérieur', 'Outdoor air quality'),
    ('leak', 'Détection de fuites', 'Leak detection'),
    ('fire', 'Détection incendie', 'Fire detection'),
    ('cold_chain', 'Température et chaîne du froid', 'Temperature and cold chain'),
    ('energy', 'Énergie', 'Energy'),
    ('water', 'Eau', 'Water'),
    ('school_security', 'Sécurité des écoles', 'School security'),
    ('waste', 'Déchets', 'Waste'),
    ('satisfaction', 'Satisfaction des usagers', 'User satisfaction');

-- A solution is its slug, status and the number of its current version; everything else
-- is in its versions. (id, current_version) must name a written version: checked at commit,
-- since a solution and its first version are written in one transaction.
CREATE TABLE catalog_solutions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug             text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,78}[a-z0-9]$'),
    status           text NOT NULL DEFAULT 'proposed'
                     CHECK (status IN ('proposed', 'certified', 'available', 'deprecated', 'withdrawn')),
    current_version  integer NOT NULL CHECK (current_version >= 1),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalog_solutions_status ON catalog_solutions (status);

-- One version of a solution's content. Written once, never changed: quotes and orders
-- point at (solution_id, version) and must keep showing what was offered.
-- device_models: [{"model": "nwave-nps405", "quantity": 50 | null}];
-- rule_templates: ["leak", ...] template ids or full alerts.rules.RuleSpec objects;
-- prerequisites: [{"fr": ..., "en": ...}]; roi: {...}; documents: [{"title", "url"}].
CREATE TABLE catalog_solution_versions (
    solution_id       bigint NOT NULL REFERENCES catalog_solutions (id),
    version           integer NOT NULL CHECK (version >= 1),
    domain            text NOT NULL REFERENCES catalog_domains (code),
    name_fr           text NOT NULL CHECK (length(name_fr) BETWEEN 1 AND 200),
    name_en           text NOT NULL CHECK (length(name_en) BETWEEN 1 AND 200),
    description_fr    text NOT NULL DEFAULT '',
    description_en    text NOT NULL DEFAULT '',
    device_models     jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(device_models) = 'array'),
    software_modules  text[] NOT NULL DEFAULT '{}',
    rule_templates    jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(rule_templates) = 'array'),
    prerequisites     jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(prerequisites) = 'array'),
    roi               jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(roi) = 'object'),
    documents         jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(documents) = 'array'),
    change_reason     text NOT NULL CHECK (length(change_reason) BETWEEN 1 AND 1000),
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- Text search in both languages: French stemming on the French texts, English on the
    -- English ones (catalog.solutions combines it with a substring match).
    search_vector     tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('french', name_fr), 'A')
        || setweight(to_tsvector('english', name_en), 'A')
        || setweight(to_tsvector('french', description_fr), 'B')
        || setweight(to_tsvector('english', description_en), 'B')
    ) STORED,
    PRIMARY KEY (solution_id, version)
);
CREATE INDEX catalog_solution_versions_domain ON catalog_solution_versions (domain);
CREATE INDEX catalog_solution_versions_search ON catalog_solution_versions USING gin (search_vector);

ALTER TABLE catalog_solutions
    ADD CONSTRAINT catalog_solutions_current_version_exists
    FOREIGN KEY (id, current_version) REFERENCES catalog_solution_versions (solution_id, version)
    DEFERRABLE INITIALLY DEFERRED;

-- A version's price lines, excl. tax. Written once with their version: a price change is
-- a new version with every line copied. typical_quantity is the quantity of a typical
-- deployment (e.g. 50 sensors, 3 days of installation, 1 year), used for the typical
-- total shown and filtered on; quotes set their own quantities.
CREATE TABLE catalog_price_lines (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    solution_id       bigint NOT NULL,
    version           integer NOT NULL,
    code              text NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    label_fr          text NOT NULL CHECK (length(label_fr) BETWEEN 1 AND 300),
    label_en          text NOT NULL CHECK (length(label_en) BETWEEN 1 AND 300),
    kind              text NOT NULL CHECK (kind IN ('hardware', 'software', 'service')),
    unit              text NOT NULL CHECK (unit IN ('device', 'year', 'month', 'day', 'unit')),
    unit_price        numeric(12, 2) NOT NULL CHECK (unit_price >= 0),
    vat_rate          numeric(5, 2) NOT NULL CHECK (vat_rate IN (0, 2.1, 5.5, 10, 20)),
    complexity        text CHECK (complexity IN ('simple', 'standard', 'complexe')),
    device_model      text,
    typical_quantity  numeric(12, 2) NOT NULL DEFAULT 1 CHECK (typical_quantity > 0),
    FOREIGN KEY (solution_id, version) REFERENCES catalog_solution_versions (solution_id, version),
    UNIQUE (solution_id, version, code)
);

-- Every lifecycle transition, with its reason and who made it.
CREATE TABLE catalog_status_changes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    solution_id  bigint NOT NULL REFERENCES catalog_solutions (id),
    from_status  text NOT NULL,
    to_status    text NOT NULL,
    reason       text NOT NULL CHECK (length(reason) BETWEEN 1 AND 1000),
    actor        text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX catalog_status_changes_solution ON catalog_status_changes (solution_id, at);

-- Versions, their price lines and the status history are written once, even by the owner.
CREATE FUNCTION catalog_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: write a new version', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER catalog_solution_versions_append_only
    BEFORE UPDATE OR DELETE ON catalog_solution_versions
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_is_append_only();
CREATE TRIGGER catalog_price_lines_append_only
    BEFORE UPDATE OR DELETE ON catalog_price_lines
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_is_append_only();
CREATE TRIGGER catalog_status_changes_append_only
    BEFORE UPDATE OR DELETE ON catalog_status_changes
    FOR EACH STATEMENT EXECUTE FUNCTION catalog_is_append_only();

-- Shared by every tenant, read by every request; written only on the privileged path.
GRANT SELECT ON catalog_domains, catalog_solutions, catalog_solution_versions,
    catalog_price_lines, catalog_status_changes TO civicsense_app;
