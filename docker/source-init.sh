#!/bin/bash
# Runs once, on the first start of the `source` container (empty data volume), as the
# image's superuser `postgres`. Plays Heroku Postgres: the application's credential `app`
# owns appdb, is not a superuser, and has REPLICATION (logical replication / pgcopydb); and
# `heroku_app`, an owner without REPLICATION as Heroku's credential really is (method triggers).
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v app_pw="${APP_PASSWORD:?APP_PASSWORD must be set (docker/compose.env)}" \
  -v worker_pw="${APP_WORKER_PASSWORD:?APP_WORKER_PASSWORD must be set (docker/compose.env)}" \
  -v heroku_pw="${HEROKU_APP_PASSWORD:?HEROKU_APP_PASSWORD must be set (docker/compose.env)}" <<'SQL'
CREATE ROLE app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE REPLICATION PASSWORD :'app_pw';
CREATE ROLE app_worker WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'worker_pw';
CREATE ROLE heroku_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'heroku_pw';
CREATE DATABASE appdb OWNER app;
GRANT CONNECT ON DATABASE appdb TO app_worker;
\connect appdb
ALTER DEFAULT PRIVILEGES FOR ROLE app GRANT USAGE ON SCHEMAS TO app_worker;
ALTER DEFAULT PRIVILEGES FOR ROLE app GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO app_worker;
ALTER DEFAULT PRIVILEGES FOR ROLE app GRANT USAGE, SELECT ON SEQUENCES TO app_worker;
SQL

# The image's pg_hba.conf admits `host all all all`, which does not cover replication
# connections (pgcopydb, pg_recvlogical); allow them with a password too.
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
