# The migration worker: Node 20 plus the PostgreSQL 15 client tools (pg_dump, pg_restore,
# psql) and pgcopydb that the activities run. Built by docker-compose.yml (service `worker`).
FROM node:20-bookworm

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-client-15 pgcopydb \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .

ENV PG_BIN=/usr/lib/postgresql/15/bin
CMD ["npm", "run", "worker"]
