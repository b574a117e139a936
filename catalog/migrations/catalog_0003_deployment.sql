-- Deployment of an order: the onboarding checklist of the devices to install, one item per
-- ordered solution version and device model. Only what was ordered is stored; what has been
-- installed is computed when the checklist is read, from the town's devices (see
-- catalog.deployment), so no counter can get out of step with the device registry.
-- depends: catalog_0002_quotes_orders

-- items name their order with their town, as quote lines name their quote
ALTER TABLE catalog_orders ADD CONSTRAINT catalog_orders_id_tenant UNIQUE (id, tenant_id);

CREATE TABLE catalog_checklist_items (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         bigint NOT NULL,
    order_id          bigint NOT NULL,
    solution_id       bigint NOT NULL,
    solution_version  integer NOT NULL,
    device_model      text NOT NULL,
    quantity          integer NOT NULL CHECK (quantity >= 1),
    created_at        timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (order_id, tenant_id) REFERENCES catalog_orders (id, tenant_id),
    FOREIGN KEY (solution_id, solution_version)
        REFERENCES catalog_solution_versions (solution_id, version),
    UNIQUE (order_id, solution_id, device_model)
);
-- progress reads the town's items of a model, oldest order first
CREATE INDEX catalog_checklist_items_model ON catalog_checklist_items (tenant_id, device_model);
-- written once with the order; nothing changes it afterwards
SELECT civicsense_protect_tenant_table('catalog_checklist_items', 'SELECT, INSERT');
GRANT USAGE ON SEQUENCE catalog_checklist_items_id_seq TO civicsense_app;
