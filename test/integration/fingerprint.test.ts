/**
 * Table fingerprints on real clusters (source and target, as a migration sees them): the row hash
 * chosen per table is the fast by-value one only where both databases hash the same values alike,
 * equal data gives equal fingerprints under it, and one changed value shows.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Client } from 'pg';
import { rowHashes, tableFingerprint, tableKey } from '../../activities/database/fingerprint';
import { createSourceDatabase, createTargetDatabase, dropDatabase, loadStackEnv, type StackEnv } from '../../stack';
import { query } from '../helpers/harness';

let env: StackEnv;
const db = { source: `fp_src_${process.pid}`, target: `fp_tgt_${process.pid}` };
let source: Client;
let target: Client;

const SCHEMA = `
  CREATE DOMAIN "Positive" AS int CHECK (VALUE > 0);
  CREATE TABLE "Plain" (id bigint PRIMARY KEY, "Name" text, price numeric(10,2), at timestamptz, tags text[], doc jsonb,
                        qty "Positive", code char(3), ok bool, u uuid);
  CREATE TABLE with_enum (id int, state mood);
  CREATE TABLE with_json (id int, doc json);
  CREATE TABLE with_composite (id int, pair pair);
  CREATE TABLE with_enum_array (id int, states mood[]);`;

const DATA = `
  INSERT INTO "Plain" SELECT g, 'n' || g, g * 1.5, '2026-01-01'::timestamptz + g * interval '1 minute', ARRAY['a', g::text],
                             jsonb_build_object('g', g), g, 'abc', g % 2 = 0, md5(g::text)::uuid FROM generate_series(1, 1000) g;
  INSERT INTO with_enum SELECT g, (ARRAY['sad', 'ok', 'happy'])[1 + g % 3]::mood FROM generate_series(1, 100) g;
  INSERT INTO with_json SELECT g, json_build_object('g', g) FROM generate_series(1, 100) g;
  INSERT INTO with_composite SELECT g, ROW(g, 'x')::pair FROM generate_series(1, 100) g;
  INSERT INTO with_enum_array SELECT g, ARRAY['ok', 'sad']::mood[] FROM generate_series(1, 100) g;`;

const tables = ['Plain', 'with_enum', 'with_json', 'with_composite', 'with_enum_array'].map((name) => ({ schema: 'public', name }));

beforeAll(async () => {
  env = loadStackEnv();
  const sourceUrl = await createSourceDatabase(env, db.source);
  const targetUrl = await createTargetDatabase(env, db.target);
  // The enum's labels get other OIDs on the target (a type created before it takes the first ones).
  await query(sourceUrl, `CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); CREATE TYPE pair AS (a int, b text); ${SCHEMA} ${DATA}`);
  await query(
    targetUrl,
    `CREATE TYPE filler AS ENUM ('x', 'y', 'z'); CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); CREATE TYPE pair AS (a int, b text); ${SCHEMA} ${DATA}`,
  );
  source = new Client({ connectionString: sourceUrl });
  target = new Client({ connectionString: targetUrl });
  await Promise.all([source.connect(), target.connect()]);
});

afterAll(async () => {
  await Promise.all([source?.end(), target?.end()]);
  if (env) {
    await dropDatabase(env.SOURCE_ADMIN_URL, db.source);
    await dropDatabase(env.TARGET_ADMIN_URL, db.target);
  }
});

describe('table fingerprints', () => {
  test('hash rows by value only where every column type hashes its value (through domains and arrays)', async () => {
    const hashes = await rowHashes(source, target, tables);
    expect(Object.fromEntries(tables.map((t) => [t.name, hashes.get(tableKey(t.schema, t.name))]))).toEqual({
      Plain: 'record',
      with_enum: 'text',
      with_json: 'text',
      with_composite: 'text',
      with_enum_array: 'text',
    });
  });

  test('equal data gives equal fingerprints on both sides under the chosen hash, where hashing enums by value would not', async () => {
    const hashes = await rowHashes(source, target, tables);
    for (const t of tables) {
      const hash = hashes.get(tableKey(t.schema, t.name));
      const [s, d] = await Promise.all([
        tableFingerprint(source, t.schema, t.name, hash),
        tableFingerprint(target, t.schema, t.name, hash),
      ]);
      expect({ table: t.name, ...d }).toEqual({ table: t.name, ...s });
    }
    const [s, d] = await Promise.all([
      tableFingerprint(source, 'public', 'with_enum', 'record'),
      tableFingerprint(target, 'public', 'with_enum', 'record'),
    ]);
    expect(d.checksum).not.toBe(s.checksum);
  });

  test('one changed value changes the fingerprint, the row count staying the same', async () => {
    const before = await tableFingerprint(target, 'public', 'Plain', 'record');
    await target.query(`UPDATE "Plain" SET price = price + 0.01 WHERE id = 500`);
    const after = await tableFingerprint(target, 'public', 'Plain', 'record');
    expect(after.rows).toBe(before.rows);
    expect(after.checksum).not.toBe(before.checksum);
  });
});
