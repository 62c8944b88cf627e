/** Catalogs of ownership and privileges compared across source and target (role mapping applied). */
import type { AclEntry, PrivilegeCatalog } from '../../activities/database/privileges';

/** Each object's owner and privileges as "kind name: owner" / "kind name: grantee PRIV[*]", source roles mapped. */
export function describeCatalog(catalog: PrivilegeCatalog, mapRole: (r: string) => string): string[] {
  const entry = (e: AclEntry) => `${e.grantee === 'PUBLIC' ? 'PUBLIC' : mapRole(e.grantee)} ${e.privilege}${e.grantable ? '*' : ''}`;
  return [
    ...catalog.objects.flatMap((o) => [
      `${o.kind} ${o.name}: owner ${mapRole(o.owner)}`,
      ...o.acl.map((e) => `${o.kind} ${o.name}: ${entry(e)}`),
    ]),
    ...catalog.columns.flatMap((c) => c.acl.map((e) => `column ${c.table}.${c.column}: ${entry(e)}`)),
    ...catalog.defaultPrivileges.flatMap((d) =>
      d.acl.map((e) => `default ${mapRole(d.role)} ${d.schema ?? '*'} ${d.objectType}: ${entry(e)}`),
    ),
  ].sort();
}
