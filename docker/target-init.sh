#!/bin/bash
# Runs once, on the first start of the `target` container (empty data volume), as the
# image's superuser `postgres`. Plays Amazon RDS: the master user `rds_master` is not a
# superuser, has CREATEDB / CREATEROLE and is a member of `rds_superuser`, and owns appdb.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v master_pw="${RDS_MASTER_PASSWORD:?RDS_MASTER_PASSWORD must be set (docker/compose.env)}" <<'SQL'
CREATE ROLE rds_superuser NOLOGIN;
GRANT pg_monitor, pg_signal_backend, pg_read_all_settings, pg_read_all_stats, pg_stat_scan_tables, pg_checkpoint
  TO rds_superuser;
CREATE ROLE rds_master WITH LOGIN NOSUPERUSER CREATEDB CREATEROLE NOREPLICATION PASSWORD :'master_pw';
GRANT rds_superuser TO rds_master WITH ADMIN OPTION;
-- RDS lets rds_superuser set session_replication_role (appliers such as DMS and the triggers method use it).
GRANT SET ON PARAMETER session_replication_role TO rds_superuser;
CREATE DATABASE appdb OWNER rds_master;
SQL

echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
