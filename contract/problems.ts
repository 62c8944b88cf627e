/** Input validation results shared by every workflow input (migration, rehearsal): each problem names its field. */
import type { z } from 'zod';

export interface InputProblem {
  /** Dotted path of the field, or `(input)` for the whole input. */
  field: string;
  message: string;
}

export type Checked<T> = { ok: true; input: T } | { ok: false; problems: InputProblem[] };

/** Validates without throwing. Never echoes values: they may be secrets. */
export function checkWith<S extends z.ZodType>(schema: S, raw: unknown): Checked<z.output<S>> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { ok: true, input: parsed.data };
  return {
    ok: false,
    problems: parsed.error.issues.map((issue) => ({ field: issue.path.length ? issue.path.join('.') : '(input)', message: issue.message })),
  };
}

/** One line per input kind: `invalid <what> input: field: message; ...` (a workflow failure's message). */
export function formatProblems(problems: InputProblem[], what = 'migration'): string {
  return `invalid ${what} input: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`;
}

/** For a terminal: a heading, then one problem per line with its field path. */
export function formatProblemLines(problems: InputProblem[], what = 'migration'): string {
  return [`invalid ${what} input:`, ...problems.map((p) => `  ${p.field}: ${p.message}`)].join('\n');
}
