/**
 * The public input of `migrateDatabase`, as one zod schema shared by the workflow (which
 * validates it before touching anything), the CLI (which validates before starting, so a
 * pasted password never reaches history) and the generated JSON Schema for the Web UI.
 *
 * Pure module: it is bundled into workflow code, so no Node APIs here.
 */
import { z } from 'zod';
import { checkWith, type Checked } from './problems';

export { formatProblemLines, formatProblems, type InputProblem } from './problems';
import ms from 'ms';

/**
 * Rules added when the input was hardened: references only (no URL or credentials in a reference
 * field), durations with a unit and an upper bound, no credentials in `target.urlParams` or in health
 * URLs, bounded approver names. A workflow started before them replays under the rules it started with:
 * `checkMigrationInput(raw, { legacy: true })` leaves them out (set only for one synchronous parse).
 */
let legacyRules = false;

/** The patch id (`patched()`) under which workflows apply the hardened rules; histories without it replay under the old ones. */
export const HARDENED_INPUT_PATCH = 'hardened-input';

/** Runs `check` (synchronous) with the hardened rules left out: for histories recorded before them. */
export function withLegacyInputRules<T>(check: () => T): T {
  legacyRules = true;
  try {
    return check();
  } finally {
    legacyRules = false;
  }
}

type Issue = (message: string, path?: PropertyKey[]) => void;
/** A refinement that the legacy rules skip. */
function hardened<T>(rule: (value: T, issue: Issue) => void) {
  return (value: T, ctx: z.RefinementCtx) => {
    if (legacyRules) return;
    rule(value, (message, path) => ctx.addIssue({ code: 'custom', message, ...(path ? { path } : {}) }));
  };
}

/**
 * A value that is a connection URL or carries credentials (`user:pass@host`, `password=`): what must
 * never sit where a reference, a parameter or a name belongs, since inputs are kept in history.
 */
export function looksLikeCredentials(value: string): boolean {
  if (value.includes('://')) return true;
  if (!/^arn:/i.test(value) && /^[^\s:@/]+:[^\s@/]*@/.test(value)) return true;
  return /(^|[\s;?&])(password|passwd|pwd)\s*=/i.test(value);
}

const REFERENCE_NOT_VALUE =
  'a connection URL or credentials are refused here: inputs are kept in workflow history; put the value in the secret and reference it';

/** Optional on a URL reference: use this database of the referenced server instead (rehearsal scratch databases). */
const databaseOverride = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'must be a plain database name')
  .optional()
  .describe('Connect to this database instead of the one in the referenced URL.');

/** A reference to a secret; the value is resolved inside activities, never carried in history. */
export const SecretRef = z
  .union(
    [
      z
        .object({
          env: z
            .string()
            .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name (not its value)')
            .superRefine(
              hardened((v: string, issue) => v.length > 255 && issue('must be an environment variable name of at most 255 characters')),
            ),
          database: databaseOverride,
        })
        .strict(),
      z
        .object({
          ssm: z
            .string()
            .min(1, 'must name an SSM parameter')
            .superRefine(
              hardened((v: string, issue) => {
                if (looksLikeCredentials(v)) issue(`must name an SSM parameter; ${REFERENCE_NOT_VALUE}`);
                else if (v.length > 2048 || !/^[A-Za-z0-9_.\-/:]+$/.test(v))
                  issue('must be an SSM parameter name or ARN (letters, digits and _ . - / :, at most 2048 characters)');
              }),
            ),
          database: databaseOverride,
        })
        .strict(),
      z
        .object({
          secretsManager: z
            .string()
            .min(1, 'must name a Secrets Manager secret')
            .superRefine(
              hardened((v: string, issue) => {
                if (looksLikeCredentials(v)) issue(`must name a Secrets Manager secret; ${REFERENCE_NOT_VALUE}`);
                else if (v.length > 2048 || !/^[A-Za-z0-9/_+=.@:!-]+$/.test(v))
                  issue('must be a Secrets Manager secret name or ARN (letters, digits and / _ + = . @ - :, at most 2048 characters)');
              }),
            ),
          database: databaseOverride,
        })
        .strict(),
    ],
    {
      error:
        'must be a secret reference such as {"env":"SOURCE_DATABASE_URL"}, {"ssm":"/name"} or {"secretsManager":"id"}; literal connection strings are refused',
    },
  )
  .describe(
    'Secret reference: {"env":"NAME"}, {"ssm":"/param/name"} or {"secretsManager":"secret-id"}, optionally with "database". Never a literal URL: a value with "://" or "user:password@" is refused.',
  );
export type SecretRef = z.infer<typeof SecretRef>;

/** A reference as people read it (`env:DATABASE_URL`, `ssm:/prod/db`): never the secret it names. */
export function describeRef(ref: SecretRef): string {
  const db = ref.database ? ` (database ${ref.database})` : '';
  if ('env' in ref) return `env:${ref.env}${db}`;
  if ('ssm' in ref) return `ssm:${ref.ssm}${db}`;
  return `secretsManager:${ref.secretsManager}${db}`;
}

/** Units of the `ms` notation (Temporal accepts the same): ms, s, m, h, d, w (and their long forms). */
export const DURATION_UNITS = 'ms, s, m, h, d, w';
const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?\\s*[A-Za-z]+$';

function msOf(value: string): number | undefined {
  try {
    const n = ms(value as ms.StringValue);
    return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined; // ms() throws on an empty string
  }
}

/**
 * A duration in the `ms` notation Temporal also accepts ("90s", "15m", "72h", "7d"): a positive number
 * with a unit ("30" alone is refused: it would mean 30 ms), at most `max` (a typo like "30d" for "30s"
 * is refused before anything changes, not found out at the gate).
 */
export function duration(max: string) {
  const maxMs = msOf(max)!;
  return z
    .string()
    .superRefine((v, ctx) => {
      const value = msOf(v);
      if (legacyRules) {
        if (!(value !== undefined && value > 0))
          ctx.addIssue({ code: 'custom', message: 'must be a positive duration such as "30s", "15m" or "2h"' });
        return;
      }
      const issue = (message: string) => ctx.addIssue({ code: 'custom', message });
      if (/^\d{1,12}(\.\d{1,6})?$/.test(v.trim()))
        issue(`needs a unit: "${v.trim()}" alone would mean milliseconds; write e.g. "${v.trim()}s" (units: ${DURATION_UNITS})`);
      else if (!new RegExp(DURATION_PATTERN).test(v) || value === undefined || value <= 0)
        issue(`must be a positive duration with a unit (${DURATION_UNITS}), such as "30s", "15m", "2h" or "7d"`);
      else if (value > maxMs) issue(`must be at most ${max}`);
    })
    .meta({ pattern: DURATION_PATTERN });
}

/** A duration anywhere else (schedules): at most about ten years. */
export const DurationString = duration('3650d');

export function durationMs(value: string): number {
  return ms(value as ms.StringValue);
}

/**
 * Upper bounds of the migration's durations, by field: long enough for any real migration, short
 * enough that a slip of unit is refused at once. Documented in README.md (Input).
 */
export const DURATION_LIMITS = {
  gateTimeout: '30d',
  downtimeBudget: '24h',
  freezeDrainTimeout: '10m',
  replicationDrainTimeout: '1h',
  replicationErrorTimeout: '24h',
  holdDuration: '365d',
  trafficBake: '24h',
  trafficGateInterval: '10m',
} as const;

/** Approver names (gate approver lists, and the `approver` of every decision): recorded in history, status and memo. */
export const MAX_APPROVER_CHARS = 200;
/** Control characters, line and paragraph separators and bidi overrides: no place in a name. */
export const NAME_CONTROL_CHARACTERS = /[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069]/u;

/** Who decides at a gate: non-empty, at most 200 characters, no control characters. */
export const ApproverName = z
  .string({ error: (iss) => (iss.input === undefined ? 'is required (who decides)' : 'must be a string') })
  .superRefine((v, ctx) => {
    const issue = (message: string) => ctx.addIssue({ code: 'custom', message });
    if (legacyRules) {
      if (!v.length) issue('Too small: expected string to have >=1 characters');
      return;
    }
    if (!v.trim()) issue('is required (who decides)');
    else if (v.length > MAX_APPROVER_CHARS) issue(`must be at most ${MAX_APPROVER_CHARS} characters (got ${v.length})`);
    else if (NAME_CONTROL_CHARACTERS.test(v)) issue('must not contain control characters (newlines, tabs, escapes)');
  })
  .meta({ maxLength: MAX_APPROVER_CHARS, minLength: 1 });

/** An http(s) URL recorded in history (health checks, probes): never with `user:password@`. */
const urlWithoutCredentials = hardened((v: string, issue) => {
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(v)) issue('must not carry credentials (user:password@): inputs are kept in workflow history');
});

/** libpq parameters that say as whom or where the application connects: they belong in the referenced URL. */
export const URL_PARAMS_REFUSED = [
  'user',
  'username',
  'password',
  'passwd',
  'pwd',
  'sslpassword',
  'host',
  'hostaddr',
  'port',
  'dbname',
  'service',
];
const MAX_URL_PARAMS = 32;
const MAX_URL_PARAM_CHARS = 1024;

/** A long random-looking token (mixed case and digits, no path or dots): an API key or a password. */
function looksLikeToken(value: string): boolean {
  return (
    value.length >= 24 &&
    /^[A-Za-z0-9+/_=-]+$/.test(value) &&
    !value.startsWith('/') &&
    /[A-Z]/.test(value) &&
    /[a-z]/.test(value) &&
    /\d/.test(value)
  );
}

/** `target.urlParams` are written into history and into the application's URL: no credentials, no other server. */
function urlParamsProblems(params: Record<string, string>, issue: Issue): void {
  const keys = Object.keys(params);
  if (keys.length > MAX_URL_PARAMS) issue(`at most ${MAX_URL_PARAMS} parameters`);
  for (const key of keys) {
    // A key is named in the problem only when it is a plain parameter name (it could be anything).
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(key)) {
      issue('parameter names must be libpq keywords (letters, digits and _, at most 63 characters)');
      continue;
    }
    const value = params[key];
    if (URL_PARAMS_REFUSED.includes(key.toLowerCase()))
      issue(
        'credentials and connection targets do not belong in urlParams (they are kept in workflow history): put them in the URL target.appUrl references',
        [key],
      );
    else if (value.length > MAX_URL_PARAM_CHARS) issue(`must be at most ${MAX_URL_PARAM_CHARS} characters`, [key]);
    else if (looksLikeCredentials(value) || looksLikeToken(value))
      issue(
        'looks like a URL, credentials or a secret token, which must not be kept in workflow history: reference secrets through target.appUrl',
        [key],
      );
  }
}

const roleName = z.string().min(1).max(63);

/** Names no role may be mapped to: PUBLIC is not a role, pg_ names are PostgreSQL's reserved prefix. */
export function targetRoleProblem(name: string): string | undefined {
  if (!name.trim()) return 'must be a role name';
  if (name.length > 63) return 'must be at most 63 characters (PostgreSQL truncates longer names)';
  if (/^(public|none|current_user|session_user|current_role)$/i.test(name)) return `"${name}" is a keyword, not a role name`;
  if (/^pg_/i.test(name)) return 'names beginning with pg_ are reserved for PostgreSQL';
  if (NAME_CONTROL_CHARACTERS.test(name)) return 'must not contain control characters';
  return undefined;
}

/** How the source's roles arrive on the target (see README, Roles and privileges). */
export const RolesConfig = z
  .object({
    map: z
      .record(roleName, z.string())
      .superRefine((map, ctx) => {
        for (const [from, to] of Object.entries(map)) {
          const problem = targetRoleProblem(to);
          if (problem) ctx.addIssue({ code: 'custom', path: [from], message: problem });
        }
      })
      .default({})
      .describe(
        'Source role -> target role. Ownership and grants of a source role are replayed onto its target role; a role not listed keeps its name. Target roles missing on the target are created (the application role LOGIN, others NOLOGIN).',
      ),
    application: z
      .enum(['own', 'master'])
      .default('own')
      .describe(
        "`own`: the application keeps running as its own role on the target (the first of source.appRoles, by default the source URL's user, mapped), with a password the migration generates and writes only into the config sink. `master`: the application uses target.url's user, as asked for explicitly. Ignored when target.appUrl is given.",
      ),
    appPassword: SecretRef.optional().describe(
      "Reference to the password the application's role gets on the target, instead of a generated one (never a literal).",
    ),
  })
  .strict();
export type RolesConfig = z.infer<typeof RolesConfig>;

export const METHODS = ['auto', 'dump-restore', 'logical', 'pgcopydb', 'dms', 'triggers'] as const;
/** Methods that stream changes (CDC) and so cut over with a short freeze: they have a `cutover` gate. */
export const CDC_METHODS = ['logical', 'pgcopydb', 'dms', 'triggers'] as const;
export type MigrationMethod = Exclude<(typeof METHODS)[number], 'auto'>;
/** How a logical migration makes its initial copy: the subscription's own (copy_data), or pgcopydb's parallel copy of the slot's exported snapshot. */
export const INITIAL_COPIES = ['native', 'pgcopydb'] as const;
export type InitialCopy = (typeof INITIAL_COPIES)[number];

export const GATES = ['cutover', 'go-live', 'traffic', 'decommission'] as const;
export type GateName = (typeof GATES)[number];

const GateConfig = z
  .object({
    timeout: duration(DURATION_LIMITS.gateTimeout)
      .default('30m')
      .describe(`How long the gate waits for a decision (at most ${DURATION_LIMITS.gateTimeout}); on timeout the decision is no-go.`),
    approvers: z
      .array(ApproverName)
      .max(100)
      .optional()
      .describe('Who may decide at this gate (names of at most 200 characters). Absent: anyone with access to the namespace.'),
  })
  .strict();

export const EnvFileSink = z
  .object({
    type: z.literal('env-file'),
    path: z.string().min(1).describe('Path of the dotenv file the application reads, on the worker host.'),
    key: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .default('DATABASE_URL'),
  })
  .strict();
export const SsmSink = z
  .object({
    type: z.literal('ssm'),
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.\-/]{1,2048}$/, 'must be an SSM parameter name such as /shop/prod/DATABASE_URL')
      .describe(
        'SSM parameter holding the URL. Its current version is labelled pgmig-<migrationId>-previous before it is overwritten (Type and KMS key kept); absent parameters are created as SecureString and deleted again on rollback.',
      ),
  })
  .strict();

export const SecretsManagerSink = z
  .object({
    type: z.literal('secrets-manager'),
    secretId: z
      .string()
      .min(1)
      .describe(
        'Secret name or ARN. Its current version gets the staging label pgmig-<migrationId>-previous before the new value is written.',
      ),
    jsonKey: z.string().min(1).optional().describe('The secret is a JSON object (RDS style): replace only this key, e.g. "DATABASE_URL".'),
  })
  .strict();

/** A Heroku app and the API token to manage it (a reference, resolved by the worker). */
export const HerokuAppRef = z.object({
  app: z
    .string()
    .regex(/^([a-z][a-z0-9-]{1,29}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/, 'must be a Heroku app name or id')
    .describe('Heroku app name (or id).'),
  token: SecretRef.describe('Reference to a Heroku Platform API token, e.g. {"env":"HEROKU_API_KEY"}.'),
  apiUrl: z
    .url({ protocol: /^https?$/ })
    .superRefine(urlWithoutCredentials)
    .default('https://api.heroku.com')
    .describe('Platform API base URL.'),
});

export const HerokuSink = HerokuAppRef.extend({
  type: z.literal('heroku'),
  attachmentName: z
    .string()
    .regex(/^[A-Z][A-Z0-9_]*$/, 'must be an attachment name such as DATABASE')
    .default('DATABASE')
    .describe(
      'The add-on attachment (and so the config var <NAME>_URL) the application reads. The swap re-attaches the add-on as PGMIG_ROLLBACK_<ID> and detaches this one, so a credential rotation cannot revert the new URL; a plain config var is kept encrypted (worker PGMIG_SECRET_KEY).',
    ),
}).strict();

/** dump-restore's copy engine as asked for (`auto`: pgcopydb where the worker has it). */
export type CopyEngine = 'auto' | 'pgcopydb' | 'pg-dump';

export const ConfigSink = z.discriminatedUnion('type', [EnvFileSink, SsmSink, SecretsManagerSink, HerokuSink]);
export type ConfigSink = z.infer<typeof ConfigSink>;

export const MigrationInput = z
  .object({
    migrationId: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and dashes, at most 63 characters')
      .optional()
      .describe('Stable name of this migration (defaults to the workflow id).'),
    source: z
      .object({
        url: SecretRef.describe('Reference to the source connection URL (Heroku DATABASE_URL).'),
        appRoles: z
          .array(roleName)
          .optional()
          .describe(
            'Application roles to freeze; defaults to the role in the source URL. The database-level freeze covers every other role.',
          ),
        replicationUrl: SecretRef.optional().describe(
          'hold.reverseReplication: reference to the URL of a role allowed to CREATE SUBSCRIPTION on the source (not an application role).',
        ),
      })
      .strict(),
    target: z
      .object({
        url: SecretRef.describe('Reference to the target connection URL used by the migration (RDS master user).'),
        appUrl: SecretRef.optional().describe('Reference to the URL the application should use after cutover; defaults to target.url.'),
        replicationUrl: SecretRef.optional().describe(
          'Reference to the URL of a role allowed to CREATE SUBSCRIPTION on the target (RDS: the master user; self-managed PostgreSQL 15: a superuser). Defaults to target.url.',
        ),
        urlParams: z
          .record(z.string(), z.string())
          .superRefine(hardened(urlParamsProblems))
          .default({})
          .describe(
            'Query parameters added to the URL written to the config sink, e.g. {"sslmode":"verify-full","sslrootcert":"/etc/ssl/rds-global-bundle.pem"}. No credentials and no connection target (user, password, host, port, dbname, service...): those belong in the URL target.appUrl references.',
          ),
      })
      .strict(),
    roles: RolesConfig.default({ map: {}, application: 'own' }).describe(
      "The source's roles, ownership and privileges on the target, and which role the application uses there.",
    ),
    method: z.enum(METHODS).default('auto'),
    parallelJobs: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(2)
      .describe('Parallel jobs of the copy (pgcopydb --table-jobs and --index-jobs, pg_dump / pg_restore -j) and of verification'),
    copy: z
      .object({
        engine: z
          .enum(['auto', 'pgcopydb', 'pg-dump'])
          .default('auto')
          .describe(
            "dump-restore's copy: `pgcopydb` clone (table data streamed from source to target, tables and indexes in parallel, large tables split), `pg-dump` (pg_dump -Fd to the worker's disk, then pg_restore), or `auto`: pgcopydb where the worker has it",
          ),
        splitTablesLargerThan: z
          .string()
          .regex(/^\d+\s*(kB|MB|GB|TB)$/, 'a size such as "512MB" or "2GB" (kB, MB, GB, TB)')
          .optional()
          .describe(
            'pgcopydb (the engine of dump-restore, and the initial copy of the pgcopydb method or of replication.initialCopy pgcopydb): a table larger than this is copied by several jobs at once, in key ranges (--split-tables-larger-than). Off by default: pgcopydb 0.10 reads each range with a WHERE on the key, which measured slower than one COPY per table (426 MB: 4.3 s unsplit, 5.0 s split at 100MB)',
          ),
      })
      .strict()
      .default({ engine: 'auto' }),
    downtimeBudget: duration(DURATION_LIMITS.downtimeBudget)
      .optional()
      .describe(
        `Largest acceptable write-freeze window (at most ${DURATION_LIMITS.downtimeBudget}); the plan is blocked if the estimate exceeds it.`,
      ),
    freeze: z
      .object({
        drainTimeout: duration(DURATION_LIMITS.freezeDrainTimeout)
          .default('5s')
          .describe(
            `How long in-flight transactions may finish before their sessions are terminated (at most ${DURATION_LIMITS.freezeDrainTimeout}).`,
          ),
      })
      .strict()
      .default({ drainTimeout: '5s' }),
    replication: z
      .object({
        maxLagBytes: z
          .number()
          .int()
          .min(0)
          .default(1024 * 1024)
          .describe('logical: catch-up is done (and the cutover gate opens) once the replication lag is at most this many bytes of WAL.'),
        maxLagSeconds: z
          .number()
          .min(0)
          .default(5)
          .describe(
            'dms: catch-up is done once CloudWatch CDCLatencySource and CDCLatencyTarget are at most this many seconds; triggers: once the oldest change not yet applied is at most this old.',
          ),
        maxLagChanges: z
          .number()
          .int()
          .min(0)
          .default(1_000)
          .describe(
            'triggers: catch-up is done (and the cutover gate opens) once at most this many captured row changes wait to be applied.',
          ),
        tablesWithoutPrimaryKey: z
          .enum(['refuse', 'replica-identity-full'])
          .default('refuse')
          .describe(
            'CDC methods: refuse tables without a primary key (UPDATE/DELETE on them would fail on the source), or set REPLICA IDENTITY FULL on them for the migration (triggers: a unique NOT NULL index serves as the key; otherwise such tables are matched on the whole row).',
          ),
        initialCopy: z
          .enum(INITIAL_COPIES)
          .default('native')
          .describe(
            'logical: how the tables are first copied. `native`: the subscription copies them (copy_data), after the schema. `pgcopydb`: a replication slot exports a snapshot, pgcopydb copies it in parallel (schema, data split across parallelJobs, indexes), then the subscription streams from that slot without a copy; needs pgcopydb on the worker. The `pgcopydb` method always copies this way.',
          ),
        drainTimeout: duration(DURATION_LIMITS.replicationDrainTimeout)
          .default('30s')
          .describe(
            `How long the target may take to apply the last changes after the freeze (at most ${DURATION_LIMITS.replicationDrainTimeout}).`,
          ),
        errorTimeout: duration(DURATION_LIMITS.replicationErrorTimeout)
          .default('60s')
          .describe(
            `How long replication may keep failing without progress (apply or table synchronization errors, no worker) before the step fails with the error text (at most ${DURATION_LIMITS.replicationErrorTimeout}).`,
          ),
      })
      .strict()
      .default({
        maxLagBytes: 1024 * 1024,
        maxLagSeconds: 5,
        maxLagChanges: 1_000,
        tablesWithoutPrimaryKey: 'refuse',
        initialCopy: 'native',
        drainTimeout: '30s',
        errorTimeout: '60s',
      }),
    verify: z
      .object({
        fullBeforeGoLive: z
          .boolean()
          .default(false)
          .describe(
            'CDC methods: hold the go-live gate until the full per-table count + checksum comparison (on snapshots taken at the freeze) passes. Off: it runs alongside and its result is reported; the window holds the exact drain, schema, sequence and smoke checks.',
          ),
      })
      .strict()
      .default({ fullBeforeGoLive: false }),
    hold: z
      .object({
        duration: duration(DURATION_LIMITS.holdDuration)
          .default('72h')
          .describe(
            `How long the source is kept (read-only) as the rollback target after go-live (at most ${DURATION_LIMITS.holdDuration}); then the decommission gate opens.`,
          ),
        reverseReplication: z
          .boolean()
          .default(false)
          .describe('Replicate target -> source from before go-live, so a `rollback` during the hold loses no write made on the target.'),
        goLiveAfterWritesResume: z
          .boolean()
          .default(false)
          .describe(
            'With reverse replication: unfreeze the target first and take the go-live decision afterwards (a no-go is then a lossless rollback).',
          ),
      })
      .strict()
      .optional()
      .describe('Absent: the workflow ends at go-live and the source simply stays read-only.'),
    app: z
      .object({
        heroku: HerokuAppRef.extend({
          maintenance: z.boolean().default(true).describe('Maintenance mode on for the write freeze, off at go-live.'),
          scaleDown: z
            .union([z.literal('all-but-web'), z.array(z.string().min(1))])
            .default('all-but-web')
            .describe('Process types scaled to 0 for the freeze and back to their recorded counts at go-live.'),
          restart: z.boolean().default(true).describe('One coordinated restart after the DATABASE_URL swap.'),
        }).optional(),
        ecs: z
          .array(z.object({ cluster: z.string().min(1), service: z.string().min(1) }).strict())
          .default([])
          .describe('Services already on AWS: UpdateService --force-new-deployment after the swap.'),
        healthUrls: z
          .array(z.string().url().superRefine(urlWithoutCredentials))
          .default([])
          .describe('Smoke test: HTTP health URLs that must answer 2xx after the restart (no user:password@).'),
      })
      .strict()
      .optional(),
    traffic: z
      .object({
        hostedZoneId: z.string().min(1),
        recordName: z.string().min(1),
        type: z.enum(['CNAME', 'A', 'AAAA']).default('CNAME'),
        oldSetIdentifier: z.string().min(1),
        newSetIdentifier: z.string().min(1),
        steps: z
          .array(z.number().int().min(1).max(100))
          .min(1)
          .default([10, 50, 100])
          .describe('Percent of traffic to the new records, step by step; ends at 100.'),
        bake: duration(DURATION_LIMITS.trafficBake)
          .default('5m')
          .describe(`Time at each step before its health gate (at most ${DURATION_LIMITS.trafficBake}).`),
        ttlSeconds: z.number().int().min(0).default(60).describe('TTL set ahead of the window so clients follow weight changes quickly.'),
        gate: z
          .object({
            probes: z
              .array(
                z.object({ url: z.string().url().superRefine(urlWithoutCredentials), expectStatus: z.number().int().optional() }).strict(),
              )
              .default([]),
            healthCheckIds: z.array(z.string().min(1)).default([]),
            samples: z.number().int().min(1).default(3),
            interval: duration(DURATION_LIMITS.trafficGateInterval).default('5s'),
            maxErrorRate: z.number().min(0).max(1).default(0.01),
          })
          .strict()
          .default({ probes: [], healthCheckIds: [], samples: 3, interval: '5s', maxErrorRate: 0.01 }),
        approveBeforeLast: z.boolean().default(false).describe('Gate "traffic" before the last step.'),
      })
      .strict()
      .optional()
      .describe('Route 53 weighted shift old -> new after go-live; a failed health gate shifts back to the original weights.'),
    configSink: ConfigSink,
    gates: z
      .object({
        cutover: GateConfig.default({ timeout: '30m' }).describe('CDC methods: approval to freeze writes once replication has caught up.'),
        'go-live': GateConfig.default({ timeout: '30m' }).describe('Its approvers may also request a rollback during the hold.'),
        traffic: GateConfig.default({ timeout: '1h' }).describe(
          'traffic.approveBeforeLast: approval before the last weight step; no-go or timeout shifts back.',
        ),
        decommission: GateConfig.default({ timeout: '24h' }).describe(
          'hold: approval to drop the rollback path when the hold ends; no-go or timeout holds again.',
        ),
      })
      .strict()
      .default({
        cutover: { timeout: '30m' },
        'go-live': { timeout: '30m' },
        traffic: { timeout: '1h' },
        decommission: { timeout: '24h' },
      }),
    smoke: z
      .object({
        sql: z
          .array(z.string().min(1))
          .default([])
          .describe('Extra statements run against the target inside a rolled-back READ WRITE transaction.'),
      })
      .strict()
      .default({ sql: [] }),
  })
  .strict()
  .superRefine((input, ctx) => {
    // The triggers method carries the hold's writes back by capture on the target, applied by the migration's own session: no subscriber.
    if (input.hold?.reverseReplication && !input.source.replicationUrl && input.method !== 'triggers') {
      ctx.addIssue({
        code: 'custom',
        path: ['source', 'replicationUrl'],
        message: 'required when hold.reverseReplication is on (the role that subscribes on the source), except with method triggers',
      });
    }
    if (input.replication.initialCopy === 'pgcopydb' && input.method !== 'logical' && input.method !== 'pgcopydb') {
      ctx.addIssue({
        code: 'custom',
        path: ['replication', 'initialCopy'],
        message: `"pgcopydb" is for method logical (method pgcopydb always copies that way); method ${input.method} makes its own initial copy`,
      });
    }
    if (input.roles.appPassword && (input.target.appUrl || input.roles.application === 'master')) {
      ctx.addIssue({
        code: 'custom',
        path: ['roles', 'appPassword'],
        message: input.target.appUrl
          ? 'target.appUrl already says how the application connects; give one or the other'
          : 'roles.application is "master": the application uses target.url, so no password of its own is set',
      });
    }
    if (input.traffic && input.traffic.steps[input.traffic.steps.length - 1] !== 100) {
      ctx.addIssue({ code: 'custom', path: ['traffic', 'steps'], message: 'the last step must be 100 (all traffic on the new records)' });
    }
    if (input.hold?.goLiveAfterWritesResume && !input.hold.reverseReplication) {
      ctx.addIssue({
        code: 'custom',
        path: ['hold', 'goLiveAfterWritesResume'],
        message: 'needs hold.reverseReplication: without it a no-go after writes resumed would lose them',
      });
    }
  });
export type MigrationInput = z.output<typeof MigrationInput>;
export type MigrationInputDraft = z.input<typeof MigrationInput>;

/**
 * Validates without throwing; each problem names its field (dotted path). `legacy`: the rules of
 * inputs recorded before the hardening (a replayed history), see `withLegacyInputRules`.
 */
export function checkMigrationInput(raw: unknown, opts: { legacy?: boolean } = {}): Checked<MigrationInput> {
  return opts.legacy ? withLegacyInputRules(() => checkWith(MigrationInput, raw)) : checkWith(MigrationInput, raw);
}
