-- Tenants (municipalities) and the list of time-ordered tables the adapter maintains.

CREATE TABLE tenants (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    timezone    text NOT NULL DEFAULT 'Europe/Paris',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE timeseries_tables (
    name            text PRIMARY KEY,
    engine          text NOT NULL CHECK (engine IN ('timescaledb', 'native')),
    time_column     text NOT NULL,
    interval_days   integer NOT NULL CHECK (interval_days > 0),
    retention_days  integer NOT NULL CHECK (retention_days > 0)
);
