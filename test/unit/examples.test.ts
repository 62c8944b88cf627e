/** The inputs in examples/ validate, and reference only secrets the local stack's env file provides. */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkMigrationInput } from '../../contract/input';
import { checkRehearsalInput } from '../../contract/rehearsal';
import { STACK_ENV_KEYS } from '../../stack/env-file';

const dir = path.join(__dirname, '../../examples');
const examples = readdirSync(dir).filter((f) => f.endsWith('.json'));

/** Every `{ "env": NAME }` in an input. */
function envRefs(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(envRefs);
  if (!value || typeof value !== 'object') return [];
  const own = typeof (value as { env?: unknown }).env === 'string' ? [(value as { env: string }).env] : [];
  return [...own, ...Object.values(value).flatMap(envRefs)];
}

describe('examples/', () => {
  it('holds a migration input for the local stack', () => {
    expect(examples).toContain('local-dump-restore.json');
  });

  it.each(examples)('%s validates and references only the stack env', (file) => {
    const raw = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Record<string, unknown>;
    const checked = 'migration' in raw ? checkRehearsalInput(raw) : checkMigrationInput(raw);
    expect(checked.ok ? [] : checked.problems).toEqual([]);
    const refs = envRefs(raw);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(STACK_ENV_KEYS).toContain(ref);
  });
});
