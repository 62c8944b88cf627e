/**
 * Names derived from a migration id: distinct ids never share a name (the part that would be cut is
 * replaced by a hash of the full id), and every name that fits is exactly what it was before.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { rollbackAttachmentName } from '../../activities/config-sinks/heroku';
import { upperId } from '../../activities/config-sinks/names';
import { replicationNames } from '../../activities/methods/cdc/marker';
import { dmsResourceNames } from '../../activities/methods/dms/resources';
import { reverseNames } from '../../activities/methods/logical/reverse';
import { legacySlotName } from '../../activities/methods/pgcopydb/legacy';
import { pgcopydbAppName, snapshotAppName } from '../../activities/methods/pgcopydb/names';
import { appName, fitName, ownSessionsPrefix, shortHash } from '../../activities/names';
import { sha256Hex } from '../../contract/names';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** The derivations as they were before hashing (what in-flight migrations use). */
const legacy = {
  ownSessionsPrefix: (id: string) => `pgmig-${id}`.slice(0, 50),
  replicationBase: (id: string) => `pgmig_${id.replace(/[^a-z0-9]/g, '_')}`.slice(0, 50),
  reverseBase: (id: string) => `${legacy.replicationBase(id).slice(0, 46)}_rev`,
  pgcopydbApplicationName: (id: string) => `pgmig-${id}`.slice(0, 50) + '-pgcopydb',
  pgcopydbAdmin: (id: string, role: string) => `pgmig-${id}`.slice(0, 50) + `-pgc-${role}`,
  dmsBase: (id: string) => {
    const slug = id.toLowerCase().replace(/-+/g, '-').replace(/^-|-$/g, '');
    let base = `pgmig-${slug}`;
    if (slug !== id || base.length > 54)
      base = `pgmig-${slug.slice(0, 54 - 'pgmig-'.length - 9).replace(/-+$/, '')}-${sha(id).slice(0, 8)}`;
    return base;
  },
  herokuAttachment: (migrationId: string) => {
    const id = upperId(migrationId);
    return `PGMIG_ROLLBACK_${id.length <= 20 ? id : `${id.slice(0, 13)}_${sha(migrationId).slice(0, 6).toUpperCase()}`}`;
  },
};

/** Valid migration ids (lowercase letters, digits, dashes; at most 63) of every length. */
const ids = Array.from({ length: 63 }, (_, i) => `shop-prod-eu-west-1-orders-db-primary-2024-november-cutover-abc`.slice(0, i + 1)).filter(
  (id) => /^[a-z0-9][a-z0-9-]{0,62}$/.test(id),
);

/** Pairs of ids that agree on everything a cut keeps and differ only at the end. */
const longPairs: [string, string][] = [
  ['shop-prod-eu-west-1-orders-database-primary-a', 'shop-prod-eu-west-1-orders-database-primary-b'],
  ['a'.repeat(62) + '1', 'a'.repeat(62) + '2'],
  ['migration-of-the-billing-database-to-rds-x1', 'migration-of-the-billing-database-to-rds-x2'],
  ['x'.repeat(45), 'x'.repeat(46)],
];

describe('sha256Hex (pure, for the workflow)', () => {
  it('agrees with node:crypto across block boundaries and for non-ASCII text', () => {
    for (let n = 0; n < 200; n++) {
      const text = 'pgmig-é-'.repeat(n).slice(0, n);
      expect(sha256Hex(text)).toBe(sha(text));
    }
    expect(sha256Hex('wf-🙂-Ünïcode')).toBe(sha('wf-🙂-Ünïcode'));
    expect(shortHash('abc')).toBe(sha('abc').slice(0, 10));
  });
});

describe('fitName', () => {
  it('keeps a name that fits and replaces the cut part by a hash of the full id otherwise', () => {
    expect(fitName('pgmig-short', 50, { id: 'short', separator: '-' })).toBe('pgmig-short');
    const long = 'p'.repeat(60);
    const fitted = fitName(long, 50, { id: 'the-id', separator: '_' });
    expect(fitted).toHaveLength(50);
    expect(fitted).toBe(`${'p'.repeat(39)}_${sha('the-id').slice(0, 10)}`);
    expect(fitName('ab', 50, { id: 'AB', separator: '-', always: true, hashLength: 8 })).toBe(`ab-${sha('AB').slice(0, 8)}`);
    expect(fitName('abc--defghijklmno', 13, { id: 'x', separator: '-', hashLength: 8, trimSeparators: true })).toBe(
      `abc-${sha('x').slice(0, 8)}`,
    );
  });
});

describe('derived names', () => {
  it('are unchanged for every id whose name fits (in-flight migrations keep their sessions, slots and resources)', () => {
    for (const id of ids) {
      const repl = replicationNames(id);
      if (legacy.ownSessionsPrefix(id) === `pgmig-${id}`) {
        expect(ownSessionsPrefix(id)).toBe(legacy.ownSessionsPrefix(id));
        expect(pgcopydbAppName(id)).toBe(legacy.pgcopydbApplicationName(id));
        expect(snapshotAppName(id)).toBe(legacy.pgcopydbAdmin(id, 'slot'));
      }
      if (legacy.replicationBase(id).length === `pgmig_${id}`.length) expect(repl.slot).toBe(legacy.replicationBase(id));
      if (legacy.replicationBase(id).length <= 46) expect(reverseNames(id).slot).toBe(legacy.reverseBase(id));
      // DMS and the Heroku attachment hashed what they cut already: identical for every id.
      expect(dmsResourceNames({ migrationId: id }).task).toBe(`${legacy.dmsBase(id)}-task`);
      expect(rollbackAttachmentName(id)).toBe(legacy.herokuAttachment(id));
    }
    expect(ownSessionsPrefix('shop-prod')).toBe('pgmig-shop-prod');
    expect(replicationNames('shop-prod').slot).toBe('pgmig_shop_prod');
    expect(reverseNames('shop-prod').slot).toBe('pgmig_shop_prod_rev');
  });

  it('differ for distinct long ids that a cut made equal, and stay within their limits', () => {
    for (const [a, b] of longPairs) {
      const pair = [a, b].map((id) => ({
        session: ownSessionsPrefix(id),
        admin: appName(id, 'restore'),
        probe: `${appName(id, 'admin')}-probe`,
        slot: replicationNames(id).slot,
        marker: replicationNames(id).markerTable,
        reverse: reverseNames(id).slot,
        pgcopydb: pgcopydbAppName(id),
        pgcopydbLegacySlot: legacySlotName(id),
        pgcopydbAdmin: snapshotAppName(id),
        dms: dmsResourceNames({ migrationId: id }).instance,
        heroku: rollbackAttachmentName(id),
      }));
      for (const key of Object.keys(pair[0]) as (keyof (typeof pair)[0])[]) {
        expect(pair[0][key], `${key} of ${a} / ${b}`).not.toBe(pair[1][key]);
      }
      for (const names of pair) {
        expect(names.session.length).toBeLessThanOrEqual(50);
        expect(names.slot.length).toBeLessThanOrEqual(50);
        expect(names.slot).toMatch(/^[a-z0-9_]+$/);
        expect(names.reverse.length).toBeLessThanOrEqual(50);
        expect(names.reverse).toMatch(/^[a-z0-9_]+$/);
        expect(names.reverse).not.toBe(names.slot);
        // application_name is cut by the server at 63 bytes: every role suffix must survive.
        for (const n of [names.admin, names.probe, names.pgcopydb, names.pgcopydbAdmin]) expect(n.length).toBeLessThanOrEqual(63);
        expect(names.marker.length).toBeLessThanOrEqual(63);
        expect(names.dms.length).toBeLessThanOrEqual(63);
      }
    }
  });

  it('are the legacy cut where the legacy cut made two ids collide (the bug) — no longer', () => {
    const [a, b] = longPairs[0];
    expect(legacy.ownSessionsPrefix(a)).toBe(legacy.ownSessionsPrefix(b));
    expect(legacy.replicationBase(a)).toBe(legacy.replicationBase(b));
    expect(ownSessionsPrefix(a)).not.toBe(ownSessionsPrefix(b));
    expect(replicationNames(a).slot).not.toBe(replicationNames(b).slot);
  });
});
