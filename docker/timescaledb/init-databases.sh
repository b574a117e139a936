#!/bin/sh
# First start of an empty data volume only (the image runs /docker-entrypoint-initdb.d/*
# after its own TimescaleDB set-up): the logins and databases of civicsense and ChirpStack.
# Passwords come from the environment (.env) through psql's \getenv, never a command line.
#
#   civicsense      owns the civicsense database: migrations (civicsense db upgrade),
#                   ingest, the scheduler and operator commands. CREATEROLE because the
#                   migrations manage the application role civicsense_app.
#   civicsense_web  the web app's login, a member of civicsense_app: row-level security
#                   applies to every request (CIVICSENSE_APP_DATABASE_URL).
#   chirpstack      owns ChirpStack's database (pg_trgm, which ChirpStack's search needs).
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<'SQL'
\getenv owner_password DB_OWNER_PASSWORD
\getenv web_password DB_WEB_PASSWORD
\getenv chirpstack_password DB_CHIRPSTACK_PASSWORD

CREATE ROLE civicsense LOGIN CREATEROLE PASSWORD :'owner_password';
CREATE DATABASE civicsense OWNER civicsense;
CREATE ROLE civicsense_app NOLOGIN;
GRANT civicsense_app TO civicsense WITH ADMIN OPTION;
CREATE ROLE civicsense_web LOGIN PASSWORD :'web_password' IN ROLE civicsense_app;

CREATE ROLE chirpstack LOGIN PASSWORD :'chirpstack_password';
CREATE DATABASE chirpstack OWNER chirpstack;

\connect civicsense
-- Without TimescaleDB (a plain PostgreSQL image) civicsense uses native partitioning.
SELECT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'timescaledb') AS timescale \gset
\if :timescale
CREATE EXTENSION IF NOT EXISTS timescaledb;
\endif

\connect chirpstack
CREATE EXTENSION IF NOT EXISTS pg_trgm;
SQL
