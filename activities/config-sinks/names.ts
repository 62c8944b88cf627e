/** Names the sinks derive from the migration id, so a retry or a compensation finds its own records again. */

/** Label of the value the application used before the swap (SSM version label, Secrets Manager staging label). */
export function previousLabel(migrationId: string): string {
  return `pgmig-${migrationId}-previous`;
}

/** Label of the value the swap wrote. */
export function swappedLabel(migrationId: string): string {
  return `pgmig-${migrationId}-swapped`;
}

/** Migration id as a config var / attachment name part: `shop-prod` -> `SHOP_PROD`. */
export function upperId(migrationId: string): string {
  return migrationId.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}
