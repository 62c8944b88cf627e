/**
 * What clients send a running migration: the payload of `approve` / `reject` (as Updates and as
 * Signals) and of `rollback`, bounded in shape and size. The workflow's Update validators and Signal
 * handlers and the CLI use the same check, so a payload the workflow would refuse is refused before it
 * is sent, and nothing a client sends can grow history, the memo, status or search attributes without
 * bound: an Update refused by its validator never reaches history; a refused Signal (already in history,
 * where the server's blob size limit bounds it) is recorded in status as clipped text, the last
 * MAX_REFUSED_DECISIONS of them.
 *
 * Pure module (bundled into workflow code).
 */
import { z } from 'zod';
import { ApproverName, GATES, MAX_APPROVER_CHARS } from './input';

export { MAX_APPROVER_CHARS };
/** A decision's or a rollback's `reason`: recorded in history, status, the memo and the result. */
export const MAX_REASON_CHARS = 2000;
/** Refused Signals kept in status: the most recent ones. */
export const MAX_REFUSED_DECISIONS = 20;
/** Text of a refused payload kept in status, per field. */
export const MAX_RECORDED_CHARS = 200;
/** A refusal's text (a validator's answer, a refused signal's reason). */
export const MAX_PROBLEM_CHARS = 500;

/** Control characters other than tab and line breaks: no place in a reason. */
// eslint-disable-next-line no-control-regex
const REASON_CONTROL_CHARACTERS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/u;

/** `text` cut to `max` characters, saying how long it was; control characters shown as U+FFFD. */
export function clip(text: string, max = MAX_RECORDED_CHARS): string {
  // eslint-disable-next-line no-control-regex
  const shown = (text.length > max ? text.slice(0, max) : text).replace(/[\u0000-\u001F\u007F-\u009F]/g, '\uFFFD');
  return text.length > max ? `${shown}... (${text.length} characters)` : shown;
}

/** A client-chosen name quoted in a message only when it is short and plain. */
function quoted(value: string): string {
  return /^[A-Za-z0-9_.-]{1,40}$/.test(value) ? `"${value}"` : '(not shown)';
}

const Reason = z
  .string({ error: 'must be a string' })
  .superRefine((v, ctx) => {
    if (v.length > MAX_REASON_CHARS)
      ctx.addIssue({ code: 'custom', message: `must be at most ${MAX_REASON_CHARS} characters (got ${v.length})` });
    else if (REASON_CONTROL_CHARACTERS.test(v))
      ctx.addIssue({ code: 'custom', message: 'must not contain control characters other than tabs and line breaks' });
  })
  .meta({ maxLength: MAX_REASON_CHARS });

const Gate = z
  .string({ error: `must be a gate name, one of: ${GATES.join(', ')}` })
  .superRefine((v, ctx) => {
    if (!(GATES as readonly string[]).includes(v))
      ctx.addIssue({ code: 'custom', message: `unknown gate ${quoted(v)}; the gates are: ${GATES.join(', ')}` });
  })
  .meta({ enum: [...GATES] });

function payloadObject<S extends z.ZodRawShape>(shape: S, what: string) {
  const fields = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys')
        return `unknown field(s) ${iss.keys.slice(0, 3).map(quoted).join(', ')}; ${what} has: ${fields}`;
      if (iss.code === 'invalid_type') return `must be an object with: ${fields}`;
      return undefined;
    },
  });
}

/** `approve` / `reject`: who decides, for which gate (default: the open one), and why. Absent and null are the same. */
export const DecisionPayload = payloadObject(
  {
    approver: ApproverName.describe(`Who decides (at most ${MAX_APPROVER_CHARS} characters, no control characters).`),
    gate: Gate.nullish().describe('The gate decided; default: the gate open now. Deciding ahead of time needs it.'),
    reason: Reason.nullish().describe(`Why (at most ${MAX_REASON_CHARS} characters).`),
  },
  'a decision',
);

/** `rollback` during the hold: who asks, and why. */
export const RollbackPayload = payloadObject(
  {
    approver: ApproverName.describe(`Who asks (at most ${MAX_APPROVER_CHARS} characters, no control characters).`),
    reason: Reason.nullish().describe(`Why (at most ${MAX_REASON_CHARS} characters).`),
  },
  'a rollback request',
);

export interface Decision {
  approver: string;
  gate?: string;
  reason?: string;
}
export type RollbackRequestPayload = Omit<Decision, 'gate'>;

export type MessageCheck<T> = { ok: true; payload: T } | { ok: false; problem: string };

function check<T extends object>(schema: z.ZodType<T>, raw: unknown): MessageCheck<T> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) {
    // null means absent: the workflow then treats the payload exactly like one without the field.
    const payload = Object.fromEntries(Object.entries(parsed.data).filter(([, v]) => v !== null && v !== undefined)) as T;
    return { ok: true, payload };
  }
  const problem = parsed.error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.length ? issue.path.map(String).join('.') : 'payload'}: ${issue.message}`)
    .join('; ');
  return { ok: false, problem: clip(problem, MAX_PROBLEM_CHARS) };
}

/** Checks an `approve` / `reject` payload's shape and size; the problem names the field and never repeats a long value. */
export function checkDecision(raw: unknown): MessageCheck<Decision> {
  return check(DecisionPayload as z.ZodType<Decision>, raw);
}

/** Checks a `rollback` payload's shape and size. */
export function checkRollback(raw: unknown): MessageCheck<RollbackRequestPayload> {
  return check(RollbackPayload as z.ZodType<RollbackRequestPayload>, raw);
}

/** What status keeps of a refused payload: its fields as clipped text, whatever was sent. */
export function recordedPayload(raw: unknown): Decision {
  const text = (v: unknown): string | undefined =>
    v === undefined || v === null ? undefined : clip(typeof v === 'string' ? v : `(${Array.isArray(v) ? 'array' : typeof v})`);
  const fields = raw && typeof raw === 'object' ? (raw as Record<string, unknown>) : { approver: raw };
  const approver = text(fields.approver) ?? '';
  const gate = text(fields.gate);
  const reason = text(fields.reason);
  return { approver, ...(gate !== undefined ? { gate } : {}), ...(reason !== undefined ? { reason } : {}) };
}
