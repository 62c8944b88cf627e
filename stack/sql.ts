/**
 * SQL text the stack builds itself (role, database and subscription names, passwords in
 * ALTER ROLE: statements that take no bind parameters), and the options of its own sessions.
 */

/** The stack's own sessions stay writable on a database a migration left read-only (the rollback reference). */
export const ADMIN_SESSION_OPTIONS = '-c default_transaction_read_only=off';

/** A string literal. */
export function lit(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** A quoted identifier. */
export function ident(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}
