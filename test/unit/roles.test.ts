/** The pure parts of carrying roles: the SCRAM verifier, the replay's statements, role mapping and its input. */
import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { scramVerifier, urlAs } from '../../activities/database/app-credential';
import {
  aclDifference,
  defaultPrivilegeStatements,
  objectAclStatements,
  replayPlan,
  roleMapper,
} from '../../activities/database/grant-sql';
import type { AclEntry, CatalogObject, PrivilegeCatalog } from '../../activities/database/privileges';
import { summarizeRoles } from '../../activities/database/privileges';
import { missingPrivileges } from '../../activities/database/smoke-privileges';
import { checkMigrationInput, type MigrationInputDraft } from '../../contract/input';
import { buildPlan } from '../../contract/plan';
import { inventory } from '../helpers/inventory';
import { applicationAccess, mapRole } from '../../contract/roles';

const acl = (grantee: string, privileges: string, grantable = false): AclEntry[] =>
  privileges.split(',').map((privilege) => ({ grantee, privilege, grantable }));
const ALL_TABLE = 'DELETE,INSERT,REFERENCES,SELECT,TRIGGER,TRUNCATE,UPDATE';

const table = (over: Partial<CatalogObject> = {}): CatalogObject => ({
  kind: 'table',
  name: '"Sales"."Orders"',
  owner: 'app',
  schema: 'Sales',
  followsTable: false,
  acl: [...acl('app', ALL_TABLE), ...acl('app_worker', 'SELECT,INSERT,UPDATE,DELETE')],
  defaults: acl('app', ALL_TABLE),
  ...over,
});

describe('SCRAM-SHA-256 verifier', () => {
  it('has the form ALTER ROLE stores as given, and authenticates RFC 7677 test vector', () => {
    // RFC 7677, section 3: user "user", password "pencil", salt and nonces as there.
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    const verifier = scramVerifier('pencil', salt, 4096);
    const match = /^SCRAM-SHA-256\$4096:([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(verifier);
    expect(match).not.toBeNull();
    expect(match![1]).toBe('W22ZaJ0SNY7soEsUEjb6gQ==');
    const storedKey = Buffer.from(match![2], 'base64');
    const serverKey = Buffer.from(match![3], 'base64');
    const authMessage = [
      'n=user,r=rOprNGfwEbeRWgbNEkqO',
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    ].join(',');
    // The server's signature the RFC gives, and the client's proof checked the way a server checks it.
    expect(createHmac('sha256', serverKey).update(authMessage).digest('base64')).toBe('6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
    const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
    const signature = createHmac('sha256', storedKey).update(authMessage).digest();
    const clientKey = Buffer.from(proof.map((b, i) => b ^ signature[i]));
    expect(createHash('sha256').update(clientKey).digest().equals(storedKey)).toBe(true);
  });

  it('salts each verifier anew and refuses passwords SASLprep would change, without showing them', () => {
    expect(scramVerifier('same password')).not.toBe(scramVerifier('same password'));
    expect(() => scramVerifier('pässwörd')).toThrow(/printable ASCII \(the value is not shown\)/);
    expect(() => scramVerifier('pässwörd')).not.toThrow(/pässwörd/);
  });

  it('puts role and password into the target URL, keeping host, database and parameters', () => {
    const url = urlAs('postgres://rds_master:master@db.example.com:5432/appdb?sslmode=verify-full', 'shop app', 'p@ss/word');
    const parsed = new URL(url);
    expect(decodeURIComponent(parsed.username)).toBe('shop app');
    expect(decodeURIComponent(parsed.password)).toBe('p@ss/word');
    expect(`${parsed.host}${parsed.pathname}${parsed.search}`).toBe('db.example.com:5432/appdb?sslmode=verify-full');
  });
});

describe('replay statements', () => {
  const map = roleMapper({ app: 'shop_app', app_worker: 'shop_worker' });

  it('grants what the source added to the owner defaults and revokes what it took away', () => {
    expect(aclDifference(table().acl, table().defaults)).toEqual({ grants: acl('app_worker', 'SELECT,INSERT,UPDATE,DELETE'), revokes: [] });
    const fn = table({
      kind: 'function',
      name: '"Sales".order_count()',
      acl: [...acl('app', 'EXECUTE'), ...acl('app_reader', 'EXECUTE', true)],
      defaults: [...acl('PUBLIC', 'EXECUTE'), ...acl('app', 'EXECUTE')],
    });
    expect(objectAclStatements(fn, map)).toEqual([
      'GRANT EXECUTE ON ROUTINE "Sales".order_count() TO "app_reader" WITH GRANT OPTION',
      'REVOKE EXECUTE ON ROUTINE "Sales".order_count() FROM PUBLIC',
    ]);
  });

  it('maps owners and grantees, groups privileges, skips sequences that follow their table, quotes names', () => {
    const catalog: PrivilegeCatalog = {
      database: {
        owner: 'app',
        acl: [...acl('app', 'CONNECT,CREATE,TEMPORARY'), ...acl('PUBLIC', 'CONNECT,TEMPORARY')],
        defaults: [...acl('app', 'CONNECT,CREATE,TEMPORARY'), ...acl('PUBLIC', 'CONNECT,TEMPORARY')],
      },
      objects: [
        table(),
        table({
          kind: 'sequence',
          name: '"Sales"."Orders_id_seq"',
          followsTable: true,
          acl: acl('app', 'SELECT,UPDATE,USAGE'),
          defaults: acl('app', 'SELECT,UPDATE,USAGE'),
        }),
        table({
          kind: 'schema',
          name: 'public',
          owner: 'pg_database_owner',
          schema: null,
          acl: [...acl('pg_database_owner', 'CREATE,USAGE'), ...acl('PUBLIC', 'USAGE')],
          defaults: acl('pg_database_owner', 'CREATE,USAGE'),
        }),
        table({
          kind: 'large object',
          name: '16401',
          schema: null,
          acl: [...acl('app', 'SELECT,UPDATE'), ...acl('app_reader', 'SELECT')],
          defaults: acl('app', 'SELECT,UPDATE'),
        }),
      ],
      columns: [{ table: 'public.notes', column: 'body', acl: acl('app_worker', 'UPDATE') }],
      defaultPrivileges: [],
    };
    const plan = replayPlan(catalog, map, 'tgt');
    expect(plan.owners).toEqual([
      'ALTER TABLE "Sales"."Orders" OWNER TO "shop_app"',
      'ALTER SCHEMA public OWNER TO "pg_database_owner"',
      'ALTER LARGE OBJECT 16401 OWNER TO "shop_app"',
    ]);
    expect(plan.privileges).toEqual([
      'GRANT ALL ON DATABASE "tgt" TO "shop_app"',
      'GRANT ALL ON SCHEMA public TO "shop_app"',
      'GRANT DELETE, INSERT, SELECT, UPDATE ON TABLE "Sales"."Orders" TO "shop_worker"',
      'GRANT USAGE ON SCHEMA public TO PUBLIC',
      'GRANT SELECT ON LARGE OBJECT 16401 TO "app_reader"',
      'GRANT UPDATE (body) ON TABLE public.notes TO "shop_worker"',
    ]);
    expect(plan.roles).toEqual(['app_reader', 'pg_database_owner', 'shop_app', 'shop_worker']);
    expect(plan.owningRoles).toEqual(['pg_database_owner', 'shop_app']);
  });

  it('default privileges: per schema only add; everywhere-entries also revoke what the built-in defaults gave', () => {
    expect(
      defaultPrivilegeStatements(
        { role: 'app', schema: 'Sales', objectType: 'TABLES', acl: acl('app_reader', 'SELECT'), defaults: [] },
        map,
      ),
    ).toEqual(['ALTER DEFAULT PRIVILEGES FOR ROLE "shop_app" IN SCHEMA "Sales" GRANT SELECT ON TABLES TO "app_reader"']);
    expect(
      defaultPrivilegeStatements(
        {
          role: 'app',
          schema: null,
          objectType: 'FUNCTIONS',
          acl: [...acl('app', 'EXECUTE'), ...acl('app_reader', 'EXECUTE')],
          defaults: [...acl('PUBLIC', 'EXECUTE'), ...acl('app', 'EXECUTE')],
        },
        map,
      ),
    ).toEqual([
      'ALTER DEFAULT PRIVILEGES FOR ROLE "shop_app" GRANT EXECUTE ON FUNCTIONS TO "app_reader"',
      'ALTER DEFAULT PRIVILEGES FOR ROLE "shop_app" REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC',
    ]);
  });

  it('the plan lists each role with what it owns and is granted, the application marked', () => {
    const roles = summarizeRoles(
      {
        database: { owner: 'app', acl: acl('app', 'CONNECT'), defaults: acl('app', 'CONNECT') },
        objects: [table()],
        columns: [],
        defaultPrivileges: [{ role: 'app', schema: null, objectType: 'TABLES', acl: acl('app_reader', 'SELECT'), defaults: [] }],
      },
      'app',
    );
    expect(roles.map((r) => [r.name, r.application, r.owns.tables, r.granted.tables, r.defaultPrivileges])).toEqual([
      ['app', true, 1, 0, 1],
      ['app_reader', false, 0, 0, 1],
      ['app_worker', false, 0, 1, 0],
    ]);
  });
});

describe('roles input', () => {
  const base: MigrationInputDraft = {
    source: { url: { env: 'SRC' } },
    target: { url: { env: 'TGT' } },
    configSink: { type: 'env-file', path: '/tmp/app.env' },
  };
  const problems = (draft: MigrationInputDraft) => {
    const checked = checkMigrationInput(draft);
    return checked.ok ? [] : checked.problems.map((p) => `${p.field}: ${p.message}`);
  };

  it('defaults to the application keeping its own role, names kept', () => {
    const checked = checkMigrationInput(base);
    expect(checked.ok && checked.input.roles).toEqual({ map: {}, application: 'own' });
    expect(checked.ok && applicationAccess(checked.input, 'app')).toEqual({ mode: 'own', sourceRole: 'app', role: 'app' });
    expect(mapRole({ app: 'shop' }, 'app')).toBe('shop');
    expect(mapRole({ app: 'shop' }, 'constructor')).toBe('constructor');
  });

  it('refuses target names that are not roles, naming the field', () => {
    expect(problems({ ...base, roles: { map: { app: 'PUBLIC', worker: 'pg_monitor', x: '' } } })).toEqual([
      expect.stringMatching(/^roles\.map\.app: "PUBLIC" is a keyword/),
      expect.stringMatching(/^roles\.map\.worker: names beginning with pg_ are reserved/),
      expect.stringMatching(/^roles\.map\.x: must be a role name/),
    ]);
  });

  it('refuses a password where the application does not get its own role; target.appUrl still wins', () => {
    expect(problems({ ...base, roles: { application: 'master', appPassword: { env: 'PW' } } })).toEqual([
      expect.stringMatching(/^roles\.appPassword: roles\.application is "master"/),
    ]);
    const withAppUrl = { ...base, target: { url: { env: 'TGT' }, appUrl: { env: 'APP' } } };
    expect(problems({ ...withAppUrl, roles: { appPassword: { env: 'PW' } } })).toEqual([
      expect.stringMatching(/^roles\.appPassword: target\.appUrl/),
    ]);
    const checked = checkMigrationInput(withAppUrl);
    expect(checked.ok && applicationAccess(checked.input, 'app')).toEqual({ mode: 'app-url' });
  });
});

describe('the application role in the plan and the smoke test', () => {
  const input = (draft: Partial<MigrationInputDraft> = {}) => {
    const checked = checkMigrationInput({
      source: { url: { env: 'SRC' } },
      target: { url: { env: 'TGT' } },
      configSink: { type: 'env-file', path: '/tmp/app.env' },
      ...draft,
    });
    if (!checked.ok) throw new Error(JSON.stringify(checked.problems));
    return checked.input;
  };
  const source = inventory({ currentUser: 'app' });
  const target = inventory({ currentUser: 'rds_master' });

  it('warns that an application role found on the target gets a new password', () => {
    const plan = buildPlan(input({ roles: { map: { app: 'shop' } } }), source, target, { applicationRoleExists: true });
    expect(plan.application).toEqual({ mode: 'own', sourceRole: 'app', role: 'shop' });
    expect(plan.warnings).toContainEqual(expect.stringMatching(/^role "shop" exists on the target already: .* new password/));
  });

  it('warns about roles.map entries for roles the source database does not know', () => {
    const counts = { schemas: 0, tables: 1, sequences: 0, functions: 0, types: 0, largeObjects: 0 };
    const withRoles = inventory({
      currentUser: 'app',
      roles: [{ name: 'app', application: true, owns: counts, granted: counts, columnGrants: 0, defaultPrivileges: 0 }],
    });
    const plan = buildPlan(input({ roles: { map: { app: 'shop', ap_worker: 'worker' } } }), withRoles, target);
    expect(plan.warnings).toContainEqual('roles.map: "ap_worker" owns nothing and is granted nothing in database "db": a typo?');
  });

  it("never replaces the master user's password: an application role named like it is the master", () => {
    const plan = buildPlan(input({ roles: { map: { app: 'rds_master' } } }), source, target);
    expect(plan.application).toEqual({ mode: 'master' });
    expect(plan.blockers).toEqual([]);
  });

  it('names each privilege held on the source and missing on the target', () => {
    const held = [
      { kind: 'table' as const, name: '"Sales"."Orders"', privilege: 'INSERT', relkind: 'r' },
      { kind: 'large object' as const, name: '16401', privilege: 'SELECT' },
    ];
    expect(missingPrivileges(held, held.slice(0, 1))).toEqual(['large object 16401: SELECT']);
    expect(missingPrivileges(held, held)).toEqual([]);
  });
});
