/**
 * Discovery of a fleet through the Heroku Platform API: the apps of a team (`GET /teams/{team}/apps`) or
 * the apps listed, each app's add-ons (`GET /apps/{app}/addons`) of service heroku-postgresql billed to
 * it, their plans and attachments (`GET /addons/{addon}/addon-attachments`), and optionally each
 * database's size, measured through the template's source reference (resolved here, never returned).
 */
import { heartbeat } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { fillTemplate, type HerokuDiscovery } from '../../contract/fleet';
import type { DiscoveredDatabase } from '../../contract/fleet-state';
import { checkMigrationInput } from '../../contract/input';
import { withClient } from '../database/pg';
import { appPath, openHerokuClient, type HerokuAttachment, type HerokuClient } from '../heroku/platform-api';
import { createSecretResolver, redact, type SecretClients } from '../secrets';

interface HerokuAddon {
  id: string;
  name: string;
  addon_service: { name: string };
  plan: { name: string };
  app: { id: string; name: string };
}

/** At most this many requests or size queries at once. */
const PARALLEL = 4;

async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    }),
  );
  return out;
}

async function appsOf(client: HerokuClient, d: HerokuDiscovery): Promise<string[]> {
  if (!d.team) return d.apps!;
  const teamApps = (await client.get<{ name: string }[]>(`/teams/${encodeURIComponent(d.team)}/apps`)).map((a) => a.name);
  return d.apps ? teamApps.filter((a) => d.apps!.includes(a)) : teamApps;
}

/** The heroku-postgresql add-ons billed to `app`, with their attachments; the attachment `app` reads first. */
async function databasesOf(client: HerokuClient, app: string): Promise<DiscoveredDatabase[]> {
  const addons = await client.get<HerokuAddon[]>(appPath(app, '/addons'));
  const own = addons.filter((a) => a.addon_service.name === 'heroku-postgresql' && a.app.name === app);
  return Promise.all(
    own.map(async (addon) => {
      const attachments = await client.get<HerokuAttachment[]>(`/addons/${encodeURIComponent(addon.id)}/addon-attachments`);
      const onApp = attachments
        .filter((a) => a.app.name === app)
        .sort((a, b) => Number(b.name === 'DATABASE') - Number(a.name === 'DATABASE'));
      return {
        app,
        addon: addon.name,
        attachment: onApp[0]?.name ?? 'DATABASE',
        plan: addon.plan.name,
        attachments: attachments.map((a) => ({ app: a.app.name, name: a.name })),
      };
    }),
  );
}

export function createFleetDiscovery(deps: SecretClients & { fetch?: typeof fetch }) {
  const resolve = createSecretResolver(deps);
  return {
    async discoverFleet(args: { discovery: HerokuDiscovery; template: Record<string, unknown> }): Promise<DiscoveredDatabase[]> {
      const d = args.discovery;
      const client = await openHerokuClient({ token: d.token, apiUrl: d.apiUrl }, deps, 'discovery.token');
      const apps = await appsOf(client, d);
      heartbeat({ apps: apps.length });
      const found = (await mapLimited(apps, PARALLEL, (app) => databasesOf(client, app))).flat();
      if (!d.measureSize) return found;
      let measured = 0;
      return mapLimited(found, PARALLEL, async (db) => {
        const filled = checkMigrationInput(fillTemplate(args.template, db));
        if (!filled.ok)
          throw ApplicationFailure.nonRetryable(
            `template for ${db.app}: ${filled.problems[0].field}: ${filled.problems[0].message}`,
            'InvalidInput',
          );
        try {
          const url = await resolve(filled.input.source.url, 'template.source.url');
          const size = await withClient(url, { label: 'source', applicationName: 'pgmig-fleet-discovery' }, async (c) => {
            const res = await c.query<{ size: string }>('SELECT pg_database_size(current_database())::text AS size');
            return Number(res.rows[0].size);
          });
          heartbeat({ measured: ++measured, of: found.length });
          return { ...db, sizeBytes: size };
        } catch (err) {
          return { ...db, sizeError: redact((err as Error).message).slice(0, 300) };
        }
      });
    },
  };
}
