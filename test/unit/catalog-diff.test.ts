/**
 * The catalog comparison's diff, on hand-made catalogs: each difference named object by object,
 * states the target must keep (validated, populated) compared one way only, extensions extra on the
 * target tolerated, and owners and grants compared after the role mapping with PUBLIC kept as PUBLIC.
 */
import { describe, expect, it } from 'vitest';
import { diffCatalogs, type Catalog, type CatalogObject, type Grant } from '../../activities/database/catalog';

const object = (kind: string, name: string, props: CatalogObject['props'] = {}): CatalogObject => ({ kind, name, props });

const source: Catalog = {
  objects: [
    object('schema', '"Sales"', { comment: 'what the shop sells' }),
    object('extension', 'pgcrypto'),
    object('table', '"Sales"."Orders"', { persistence: 'permanent', 'column order': 'id, amount' }),
    object('index', '"Sales".orders_unpaid', {
      definition: 'CREATE INDEX orders_unpaid ON "Sales"."Orders" USING btree (id)',
      valid: true,
    }),
    object('constraint', 'notes_body_not_empty on public.notes', { definition: "CHECK ((body <> ''::text))", validated: false }),
    object('constraint', 'orders_amount on "Sales"."Orders"', { definition: 'CHECK ((amount > 0))', validated: true }),
    object('materialized view', '"Sales".order_totals', { definition: ' SELECT 1;', populated: true }),
    object('enum', '"Sales"."OrderStatus"', { labels: "'new', 'paid', 'shipped'" }),
    object('function', '"Sales".touch()', { definition: `CREATE OR REPLACE FUNCTION "Sales".touch()\n${'x'.repeat(200)} BEGIN old END` }),
  ],
};

describe('catalog diff', () => {
  it('finds nothing between equal catalogs', () => {
    expect(diffCatalogs(source, structuredClone(source))).toEqual([]);
  });

  it('names each difference object by object', () => {
    const target = structuredClone(source);
    const byName = (name: string) => target.objects.find((o) => o.name === name)!;
    target.objects = target.objects.filter((o) => o.name !== '"Sales".orders_unpaid' && o.kind !== 'extension');
    byName('"Sales".order_totals').props.populated = false;
    byName('orders_amount on "Sales"."Orders"').props.validated = false;
    byName('"Sales"."OrderStatus"').props.labels = "'new', 'shipped', 'paid'";
    byName('"Sales"."Orders"').props.persistence = 'unlogged';
    delete byName('"Sales"').props.comment;
    byName('"Sales".touch()').props.definition = String(byName('"Sales".touch()').props.definition).replace('old', 'new');
    target.objects.push(object('view', 'public.extra', { definition: ' SELECT 2;' }));

    expect(diffCatalogs(source, target)).toEqual([
      'schema "Sales": comment differs (source: what the shop sells; target: (none))',
      'extension pgcrypto: missing on target',
      'table "Sales"."Orders": persistence differs (source: permanent; target: unlogged)',
      'index "Sales".orders_unpaid: missing on target',
      'constraint orders_amount on "Sales"."Orders": NOT VALID on target',
      'materialized view "Sales".order_totals: not populated on target',
      `enum "Sales"."OrderStatus": labels differ (source: 'new', 'paid', 'shipped'; target: 'new', 'shipped', 'paid')`,
      // Long definitions are shown around their first difference.
      `function "Sales".touch(): definition differs (source: …${'x'.repeat(13)} BEGIN old END; target: …${'x'.repeat(13)} BEGIN new END)`,
      'view public.extra: exists only on target',
    ]);
  });

  it('accepts a constraint validated on the target only, and an extension only on the target', () => {
    const target = structuredClone(source);
    target.objects.find((o) => o.name === 'notes_body_not_empty on public.notes')!.props.validated = true;
    target.objects.push(object('extension', 'plpgsql'));
    expect(diffCatalogs(source, target)).toEqual([]);
  });

  describe('owners and grants', () => {
    const grant = (object: string, privilege: string, grantee: string | null, extra: Partial<Grant> = {}): Grant => ({
      object,
      privilege,
      grantee,
      grantable: false,
      ...extra,
    });
    const withPrivileges = (owner: string, reader: string, worker: string): Catalog => ({
      objects: [],
      privileges: {
        owners: [
          { object: 'table public.events', owner },
          { object: 'schema "Sales"', owner },
        ],
        grants: [
          grant('table public.events', 'SELECT', reader),
          grant('table public.events', 'SELECT', null),
          grant('schema "Sales"', 'USAGE', worker),
          grant('tables in schema "Sales"', 'SELECT', reader, { forRole: owner }),
        ],
      },
    });
    const mapping: Record<string, string> = { app: 'app_owner', app_reader: 'reader', app_worker: 'worker' };
    const mapRole = (r: string) => mapping[r] ?? r;

    it('compares after mapping the source roles (PUBLIC stays PUBLIC)', () => {
      expect(
        diffCatalogs(withPrivileges('app', 'app_reader', 'app_worker'), withPrivileges('app_owner', 'reader', 'worker'), mapRole),
      ).toEqual([]);
    });

    it('names a missing grant, an extra one, a missing default privilege and another owner', () => {
      const target = withPrivileges('app_owner', 'reader', 'worker');
      const p = target.privileges!;
      p.owners[0].owner = 'rds_master';
      p.grants = p.grants.filter((g) => g.privilege !== 'SELECT' || g.grantee === null);
      p.grants.push(grant('schema "Sales"', 'CREATE', 'Worker Role', { grantable: true }));
      expect(diffCatalogs(withPrivileges('app', 'app_reader', 'app_worker'), target, mapRole)).toEqual([
        'table public.events: owner differs (source: app as app_owner; target: rds_master)',
        'grant SELECT on table public.events to reader: missing on target',
        'default privilege SELECT on tables in schema "Sales" for role app_owner to reader: missing on target',
        'grant CREATE on schema "Sales" to "Worker Role" WITH GRANT OPTION: exists only on target',
      ]);
    });

    it('does not repeat grants of an object missing on the target, and skips privileges unless both sides have them', () => {
      const target = withPrivileges('app', 'app_reader', 'app_worker');
      target.privileges!.owners = target.privileges!.owners.filter((o) => o.object !== 'table public.events');
      target.privileges!.grants = target.privileges!.grants.filter((g) => g.object !== 'table public.events');
      expect(diffCatalogs(withPrivileges('app', 'app_reader', 'app_worker'), target)).toEqual([]);
      expect(diffCatalogs(withPrivileges('app', 'app_reader', 'app_worker'), { objects: [] })).toEqual([]);
    });
  });
});
