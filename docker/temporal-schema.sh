#!/bin/sh
# One-shot (service temporal-schema): the Temporal server's own PostgreSQL databases and their
# schemas, with the admin-tools image's temporal-sql-tool. Safe to run on every `docker compose up`:
# an existing database is kept, and update-schema applies only the versions it lacks.
set -eu
# The password comes from SQL_PASSWORD in the environment (temporal-sql-tool reads it), not the command line.
sql() { temporal-sql-tool --plugin postgres12 --ep temporal-postgres -p 5432 -u "$SQL_USER" "$@"; }
for db in temporal temporal_visibility; do
  sql --db "$db" create 2>/dev/null || echo "database $db exists"
done
# setup-schema -v 0.0 creates the version tables the first time; update-schema brings both schemas current.
sql --db temporal setup-schema -v 0.0 2>/dev/null || true
sql --db temporal update-schema -d /etc/temporal/schema/postgresql/v12/temporal/versioned
sql --db temporal_visibility setup-schema -v 0.0 2>/dev/null || true
sql --db temporal_visibility update-schema -d /etc/temporal/schema/postgresql/v12/visibility/versioned
echo 'Temporal schemas are current'
