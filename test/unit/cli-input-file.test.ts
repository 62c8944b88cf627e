/** The CLI's input file: a JSON syntax error names the file, line and column; problems come one per line. */
import { describe, expect, it } from 'vitest';
import { parseJsonText } from '../../cli/input-file';
import { startRehearsal } from '../../cli/rehearsals';
import { createRehearsalSchedule } from '../../cli/schedules';
import { checkMigrationInput, formatProblemLines, formatProblems } from '../../contract/input';

describe('CLI input file', () => {
  it('names the file, line and column of a syntax error', () => {
    const text = '{\n  "migrationId": "m1"\n  "method": "logical"\n}\n';
    expect(() => parseJsonText(text, 'in.json')).toThrow(/^in\.json:3:3: invalid JSON: Expected ',' or '}' after property value$/);
  });

  it('places a truncated file at its end', () => {
    expect(() => parseJsonText('{\n  "a": [1,', 'cut.json')).toThrow(/^cut\.json:2:11: invalid JSON: Unexpected end of file$/);
  });

  it('parses valid JSON', () => {
    expect(parseJsonText('{"a":1}', 'ok.json')).toEqual({ a: 1 });
  });

  it('prints one problem per line with its field path; the workflow keeps its one-line message', () => {
    const checked = checkMigrationInput({ source: { url: 'postgres://app:hunter2hunter2@db/prod' }, target: {}, parallelJobs: 0 });
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    const lines = formatProblemLines(checked.problems).split('\n');
    expect(lines[0]).toBe('invalid migration input:');
    expect(lines.slice(1).every((l) => /^ {2}[\w.()]+: /.test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith('  source.url: must be a secret reference'))).toBe(true);
    expect(lines).toHaveLength(checked.problems.length + 1);
    expect(lines.join('\n')).not.toContain('hunter2');
    expect(formatProblems(checked.problems)).not.toContain('\n');
  });

  it('rehearsal starts and schedules refuse bad input the same way, before any call to Temporal', async () => {
    const bad = { migration: { source: { url: 'postgres://app:hunter2hunter2@db/prod' } }, snapshot: { type: 'nope' } };
    const noClient = {} as never;
    for (const attempt of [startRehearsal(noClient, bad), createRehearsalSchedule(noClient, { input: bad, interval: '1d' })]) {
      const message = await attempt.then(
        () => '',
        (err: Error) => err.message,
      );
      const lines = message.split('\n');
      expect(lines[0]).toBe('invalid rehearsal input:');
      expect(lines.length).toBeGreaterThan(2);
      expect(lines.slice(1).every((l) => /^ {2}[\w.()]+: /.test(l))).toBe(true);
      expect(message).not.toContain('hunter2');
    }
  });
});
