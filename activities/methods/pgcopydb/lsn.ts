/** LSN arithmetic: pgcopydb, the sentinel and the replication origin all report positions as text. */

export const LSN_RE = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

export function lsnToNumber(lsn: string): number {
  const [hi, lo] = lsn.split('/');
  return parseInt(hi, 16) * 2 ** 32 + parseInt(lo, 16);
}

export function maxLsn(a?: string, b?: string): string | undefined {
  if (!a) return b;
  if (!b) return a;
  return lsnToNumber(a) >= lsnToNumber(b) ? a : b;
}
