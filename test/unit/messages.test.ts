import { describe, expect, it } from 'vitest';
import {
  checkDecision,
  checkRollback,
  clip,
  MAX_APPROVER_CHARS,
  MAX_PROBLEM_CHARS,
  MAX_REASON_CHARS,
  recordedPayload,
} from '../../contract/messages';

describe('decision payloads (approve / reject / rollback)', () => {
  it('accepts a bounded decision and drops null fields', () => {
    expect(checkDecision({ approver: 'alice', gate: 'go-live', reason: 'smoke tests green\nship it' })).toEqual({
      ok: true,
      payload: { approver: 'alice', gate: 'go-live', reason: 'smoke tests green\nship it' },
    });
    expect(checkDecision({ approver: 'alice', gate: null, reason: null })).toEqual({ ok: true, payload: { approver: 'alice' } });
    expect(checkDecision({ approver: 'a'.repeat(MAX_APPROVER_CHARS), reason: 'r'.repeat(MAX_REASON_CHARS) }).ok).toBe(true);
  });

  it.each([
    [{ approver: 'b', reason: 'r'.repeat(1_500_000) }, /^reason: must be at most 2000 characters \(got 1500000\)$/],
    [{ approver: 'a'.repeat(10 * 1024) }, /^approver: must be at most 200 characters \(got 10240\)$/],
    [{ approver: '' }, /^approver: is required/],
    [{ approver: '   ' }, /^approver: is required/],
    [{}, /^approver: is required/],
    [{ approver: 'eve\n[ok] approved by alice' }, /^approver: must not contain control characters/],
    [{ approver: 'alice', reason: 'bell\u0007' }, /^reason: must not contain control characters/],
    [{ approver: 'alice', gate: 'launch' }, /^gate: unknown gate "launch"; the gates are: cutover, go-live, traffic, decommission$/],
    [{ approver: 'alice', gate: 'g'.repeat(5000) }, /^gate: unknown gate \(not shown\)/],
    [{ approver: 42 }, /^approver: must be a string$/],
    [{ approver: 'alice', extra: 'x'.repeat(100_000) }, /^payload: unknown field\(s\) "extra"; a decision has: approver, gate, reason$/],
    [null, /^payload: must be an object/],
    ['alice', /^payload: must be an object/],
  ])('refuses %#, naming the field', (payload, problem) => {
    const checked = checkDecision(payload);
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.problem).toMatch(problem);
    expect(checked.problem.length).toBeLessThanOrEqual(MAX_PROBLEM_CHARS + 40);
  });

  it('never repeats a long unknown field name', () => {
    const checked = checkDecision({ approver: 'alice', ['k'.repeat(10_000)]: 1 });
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.problem).toBe('payload: unknown field(s) (not shown); a decision has: approver, gate, reason');
  });

  it('checks rollback requests the same way (no gate)', () => {
    expect(checkRollback({ approver: 'alice', reason: 'p99 doubled' })).toEqual({
      ok: true,
      payload: { approver: 'alice', reason: 'p99 doubled' },
    });
    const gate = checkRollback({ approver: 'alice', gate: 'go-live' });
    expect(gate.ok).toBe(false);
    const long = checkRollback({ approver: 'alice', reason: 'x'.repeat(3000) });
    expect(long.ok ? '' : long.problem).toMatch(/^reason: must be at most 2000 characters/);
  });

  it('records what a refused signal carried as clipped text', () => {
    const recorded = recordedPayload({ approver: 'a'.repeat(10_240), gate: 'go-live', reason: 'r'.repeat(1_500_000) });
    expect(recorded.approver).toMatch(/^a{200}\.\.\. \(10240 characters\)$/);
    expect(recorded.reason).toMatch(/^r{200}\.\.\. \(1500000 characters\)$/);
    expect(recorded.gate).toBe('go-live');
    expect(recordedPayload({ approver: { nested: 'x'.repeat(1000) } })).toEqual({ approver: '(object)' });
    expect(recordedPayload('just text')).toEqual({ approver: 'just text' });
    expect(clip('a\nb')).toBe('a\uFFFDb');
  });
});
