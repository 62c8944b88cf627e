/**
 * A stand-in for the Heroku Platform API (https://devcenter.heroku.com/articles/platform-api-reference),
 * in memory, on 127.0.0.1 with an ephemeral port: the real paths, headers, status codes and error bodies
 * (`{"id": "...", "message": "..."}`) for the endpoints the product uses, and the rules that matter for a
 * cutover:
 *
 * - every request needs `Accept: application/vnd.heroku+json; version=3` (else 400 `bad_request`) and
 *   `Authorization: Bearer <token>` with a known token (else 401 `unauthorized`);
 * - config vars owned by an add-on attachment (`<NAME>_URL`) cannot be set or unset (422 `invalid_params`);
 * - an add-on's last attachment to its billing app cannot be deleted (422);
 * - attaching under a name whose `<NAME>_URL` is already set is refused (422): assumption, the product
 *   unsets it first either way;
 * - `rotateCredentials(addon)` is the add-on's credential rotation: a new URL for the add-on, written to
 *   every attachment's `<NAME>_URL`, and to nothing else;
 * - DELETE /apps/{app}/dynos restarts every dyno (recorded: count and times; formation dynos get a new
 *   `created_at`), one-off dynos (`run.N`) are listed by GET /apps/{app}/dynos.
 * Every config change counts a release, as on Heroku (where it also restarts the dynos).
 * Tests seed and inspect `state` directly; `failNext` injects one error answer.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export const HEROKU_ACCEPT = 'application/vnd.heroku+json; version=3';

export interface StandInDyno {
  id: string;
  name: string;
  type: string;
  state: 'up' | 'starting' | 'crashed' | 'idle';
  command: string;
  size: string;
  created_at: string;
  updated_at: string;
}

export interface StandInApp {
  id: string;
  name: string;
  maintenance: boolean;
  configVars: Record<string, string>;
  /** Process type -> quantity and size. */
  formation: Record<string, { quantity: number; size: string; command: string }>;
  dynos: StandInDyno[];
  restarts: { count: number; at: string[] };
  releases: number;
  /** The team that owns the app (GET /teams/{team}/apps). */
  team?: string;
}

export interface StandInAddon {
  id: string;
  name: string;
  billingApp: string;
  service: string;
  plan: string;
  /** The add-on's current credential: what every attachment's `<NAME>_URL` holds. */
  url: string;
}

export interface StandInAttachment {
  id: string;
  name: string;
  addonId: string;
  app: string;
  created_at: string;
}

export interface StandInState {
  tokens: Set<string>;
  apps: Map<string, StandInApp>;
  addons: Map<string, StandInAddon>;
  attachments: Map<string, StandInAttachment>;
  /** Every request: method, path, status (no headers, no bodies: tests assert what was asked). */
  requests: { method: string; path: string; status: number }[];
}

export interface HerokuStandIn {
  url: string;
  state: StandInState;
  seedApp(
    name: string,
    opts?: { configVars?: Record<string, string>; formation?: Record<string, number>; maintenance?: boolean; team?: string },
  ): StandInApp;
  /** A Postgres add-on billed to `app`, attached to it as `attachAs` (default DATABASE). */
  seedPostgres(app: string, opts: { url: string; attachAs?: string; name?: string; plan?: string }): StandInAddon;
  /** The add-on's credential rotation: a new URL (given or generated), rewritten into every attachment's config var. */
  rotateCredentials(addon: string, newUrl?: string): string;
  /** Starts a one-off dyno (`heroku run`), as `run.NNNN` of type `run`. */
  startOneOff(app: string, command?: string): StandInDyno;
  /** The next matching request answers with this status and body instead. */
  failNext(match: { method?: string; path?: RegExp }, status: number, body?: { id: string; message: string }): void;
  app(name: string): StandInApp;
  attachmentsOf(app: string): StandInAttachment[];
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly id: string,
    message: string,
    readonly resource?: string,
  ) {
    super(message);
  }
}

const now = () => new Date().toISOString();

export async function startHerokuStandIn(opts: { tokens?: string[] } = {}): Promise<HerokuStandIn> {
  const state: StandInState = {
    tokens: new Set(opts.tokens ?? []),
    apps: new Map(),
    addons: new Map(),
    attachments: new Map(),
    requests: [],
  };
  const failures: { match: { method?: string; path?: RegExp }; status: number; body: { id: string; message: string } }[] = [];
  let runCounter = 1000 + Math.floor(Math.random() * 8000);

  const findApp = (idOrName: string): StandInApp => {
    const app = state.apps.get(idOrName) ?? [...state.apps.values()].find((a) => a.id === idOrName);
    if (!app) throw new HttpError(404, 'not_found', "Couldn't find that app.", 'app');
    return app;
  };
  const findAddon = (idOrName: string): StandInAddon => {
    const addon = state.addons.get(idOrName) ?? [...state.addons.values()].find((a) => a.name === idOrName);
    if (!addon) throw new HttpError(404, 'not_found', "Couldn't find that add on.", 'addon');
    return addon;
  };
  const attachmentsOf = (app: string) => [...state.attachments.values()].filter((a) => a.app === app);
  const attachmentVar = (att: StandInAttachment) => `${att.name}_URL`;

  const formationDynos = (app: StandInApp) => {
    const oneOffs = app.dynos.filter((d) => !(d.type in app.formation));
    const dynos: StandInDyno[] = [];
    for (const [type, f] of Object.entries(app.formation)) {
      for (let n = 1; n <= f.quantity; n++) {
        const existing = app.dynos.find((d) => d.name === `${type}.${n}`);
        dynos.push(
          existing ?? {
            id: randomUUID(),
            name: `${type}.${n}`,
            type,
            state: 'up',
            command: f.command,
            size: f.size,
            created_at: now(),
            updated_at: now(),
          },
        );
      }
    }
    app.dynos = [...dynos, ...oneOffs];
  };

  const appJson = (app: StandInApp) => ({
    id: app.id,
    name: app.name,
    maintenance: app.maintenance,
    web_url: `https://${app.name}.herokuapp.com/`,
    stack: { name: 'heroku-24' },
    region: { name: 'us' },
    updated_at: now(),
  });
  const attachmentJson = (att: StandInAttachment) => {
    const addon = state.addons.get(att.addonId)!;
    const billing = state.apps.get(addon.billingApp)!;
    const app = state.apps.get(att.app)!;
    return {
      id: att.id,
      name: att.name,
      namespace: null,
      addon: { id: addon.id, name: addon.name, app: { id: billing.id, name: billing.name } },
      app: { id: app.id, name: app.name },
      created_at: att.created_at,
      updated_at: att.created_at,
      web_url: `https://addons-sso.heroku.com/apps/${app.id}/addons/${addon.id}`,
      log_input_url: null,
    };
  };
  const formationJson = (app: StandInApp) =>
    Object.entries(app.formation).map(([type, f]) => ({
      id: `${app.id}-${type}`,
      type,
      quantity: f.quantity,
      size: f.size,
      command: f.command,
      app: { id: app.id, name: app.name },
      updated_at: now(),
    }));
  const dynoJson = (app: StandInApp, d: StandInDyno) => ({
    ...d,
    app: { id: app.id, name: app.name },
    attach_url: null,
    release: { id: randomUUID(), version: app.releases },
  });

  const attach = (app: StandInApp, addon: StandInAddon, name: string): StandInAttachment => {
    if (!/^[A-Z][A-Z0-9_]*$/.test(name))
      throw new HttpError(
        422,
        'invalid_params',
        'Name must start with a letter and can only contain uppercase letters, numbers, and underscores.',
      );
    if (attachmentsOf(app.name).some((a) => a.name === name))
      throw new HttpError(422, 'invalid_params', `Name ${name} is already taken by another attachment on ${app.name}.`);
    if (app.configVars[`${name}_URL`] !== undefined)
      throw new HttpError(422, 'invalid_params', `${name}_URL is already set on ${app.name}. Unset it first or choose another name.`);
    const att: StandInAttachment = { id: randomUUID(), name, addonId: addon.id, app: app.name, created_at: now() };
    state.attachments.set(att.id, att);
    app.configVars[attachmentVar(att)] = addon.url;
    app.releases++;
    return att;
  };

  async function handle(
    method: string,
    path: string,
    headers: http.IncomingHttpHeaders,
    body: unknown,
  ): Promise<{ status: number; json: unknown }> {
    const accept = String(headers.accept ?? '');
    if (!accept.includes('application/vnd.heroku+json') || !/version=3/.test(accept)) {
      throw new HttpError(
        400,
        'bad_request',
        `Please specify a version along with Heroku's API MIME type. For example, \`Accept: ${HEROKU_ACCEPT}\`.`,
      );
    }
    const auth = /^Bearer (.+)$/.exec(String(headers.authorization ?? ''));
    if (!auth || !state.tokens.has(auth[1])) throw new HttpError(401, 'unauthorized', 'Invalid credentials provided.');
    const failure = failures.findIndex((f) => (!f.match.method || f.match.method === method) && (!f.match.path || f.match.path.test(path)));
    if (failure >= 0) {
      const [f] = failures.splice(failure, 1);
      throw new HttpError(f.status, f.body.id, f.body.message);
    }
    const b = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
    let m: RegExpExecArray | null;

    if ((m = /^\/apps\/([^/]+)$/.exec(path))) {
      const app = findApp(decodeURIComponent(m[1]));
      if (method === 'GET') return { status: 200, json: appJson(app) };
      if (method === 'PATCH') {
        if (b.maintenance !== undefined) {
          if (typeof b.maintenance !== 'boolean') throw new HttpError(422, 'invalid_params', 'maintenance must be a boolean.');
          app.maintenance = b.maintenance;
        }
        return { status: 200, json: appJson(app) };
      }
    }
    if ((m = /^\/apps\/([^/]+)\/config-vars$/.exec(path))) {
      const app = findApp(decodeURIComponent(m[1]));
      if (method === 'GET') return { status: 200, json: { ...app.configVars } };
      if (method === 'PATCH') {
        const owned = new Set(attachmentsOf(app.name).map(attachmentVar));
        const refused = Object.keys(b).filter((k) => owned.has(k));
        if (refused.length) throw new HttpError(422, 'invalid_params', `Cannot overwrite attachment values ${refused.join(', ')}.`);
        for (const [k, v] of Object.entries(b)) {
          if (v === null) delete app.configVars[k];
          else if (typeof v === 'string') app.configVars[k] = v;
          else throw new HttpError(422, 'invalid_params', `Config var ${k} must be a string or null.`);
        }
        app.releases++;
        return { status: 200, json: { ...app.configVars } };
      }
    }
    if ((m = /^\/teams\/([^/]+)\/apps$/.exec(path)) && method === 'GET') {
      const team = decodeURIComponent(m[1]);
      const apps = [...state.apps.values()].filter((a) => a.team === team);
      if (!apps.length) throw new HttpError(404, 'not_found', "Couldn't find that team.", 'team');
      return { status: 200, json: apps.map((a) => ({ ...appJson(a), team: { name: team } })) };
    }
    if ((m = /^\/apps\/([^/]+)\/addon-attachments$/.exec(path)) && method === 'GET') {
      const app = findApp(decodeURIComponent(m[1]));
      return { status: 200, json: attachmentsOf(app.name).map(attachmentJson) };
    }
    if ((m = /^\/apps\/([^/]+)\/addons$/.exec(path)) && method === 'GET') {
      const app = findApp(decodeURIComponent(m[1]));
      const ids = new Set(attachmentsOf(app.name).map((a) => a.addonId));
      return {
        status: 200,
        json: [...ids].map((id) => {
          const addon = state.addons.get(id)!;
          return {
            id: addon.id,
            name: addon.name,
            addon_service: { name: addon.service },
            plan: { name: addon.plan },
            app: { id: state.apps.get(addon.billingApp)!.id, name: addon.billingApp },
            config_vars: attachmentsOf(addon.billingApp)
              .filter((a) => a.addonId === id)
              .map(attachmentVar),
            state: 'provisioned',
          };
        }),
      };
    }
    if (path === '/addon-attachments' && method === 'POST') {
      if (typeof b.addon !== 'string' || typeof b.app !== 'string')
        throw new HttpError(422, 'invalid_params', 'addon and app are required.');
      const addon = findAddon(b.addon);
      const app = findApp(b.app);
      const name = typeof b.name === 'string' ? b.name : addon.name.toUpperCase().replace(/-/g, '_');
      return { status: 201, json: attachmentJson(attach(app, addon, name)) };
    }
    if ((m = /^\/addons\/([^/]+)\/addon-attachments$/.exec(path)) && method === 'GET') {
      const addon = findAddon(decodeURIComponent(m[1]));
      return { status: 200, json: [...state.attachments.values()].filter((a) => a.addonId === addon.id).map(attachmentJson) };
    }
    if ((m = /^\/apps\/([^/]+)\/addons\/([^/]+)$/.exec(path)) && method === 'DELETE') {
      // addons:destroy: the add-on is deprovisioned, and every attachment (and its config var) goes with it.
      const app = findApp(decodeURIComponent(m[1]));
      const addon = findAddon(decodeURIComponent(m[2]));
      if (addon.billingApp !== app.name) throw new HttpError(422, 'invalid_params', `${addon.name} is not billed to ${app.name}.`);
      for (const att of [...state.attachments.values()].filter((a) => a.addonId === addon.id)) {
        state.attachments.delete(att.id);
        delete findApp(att.app).configVars[attachmentVar(att)];
      }
      state.addons.delete(addon.id);
      app.releases++;
      return { status: 200, json: { id: addon.id, name: addon.name, state: 'deprovisioned' } };
    }
    if ((m = /^\/addon-attachments\/([^/]+)$/.exec(path)) && method === 'DELETE') {
      const att = state.attachments.get(decodeURIComponent(m[1]));
      if (!att) throw new HttpError(404, 'not_found', "Couldn't find that add on attachment.", 'addon_attachment');
      const addon = state.addons.get(att.addonId)!;
      const onBilling = [...state.attachments.values()].filter((a) => a.addonId === addon.id && a.app === addon.billingApp);
      if (att.app === addon.billingApp && onBilling.length === 1) {
        throw new HttpError(
          422,
          'invalid_params',
          `Cannot destroy last attachment to billing app. Use \`heroku addons:destroy ${addon.name}\` to remove the add-on.`,
        );
      }
      state.attachments.delete(att.id);
      const app = findApp(att.app);
      delete app.configVars[attachmentVar(att)];
      app.releases++;
      return { status: 200, json: attachmentJson({ ...att }) };
    }
    if ((m = /^\/apps\/([^/]+)\/formation$/.exec(path))) {
      const app = findApp(decodeURIComponent(m[1]));
      if (method === 'GET') return { status: 200, json: formationJson(app) };
      if (method === 'PATCH') {
        const updates = Array.isArray(b.updates) ? (b.updates as { type?: unknown; quantity?: unknown; size?: unknown }[]) : undefined;
        if (!updates) throw new HttpError(422, 'invalid_params', 'updates is required.');
        for (const u of updates) {
          if (typeof u.type !== 'string' || !(u.type in app.formation))
            throw new HttpError(404, 'not_found', "Couldn't find that formation.", 'formation');
          if (u.quantity !== undefined && (typeof u.quantity !== 'number' || !Number.isInteger(u.quantity) || u.quantity < 0)) {
            throw new HttpError(422, 'invalid_params', 'quantity must be a non-negative integer.');
          }
        }
        for (const u of updates) {
          const f = app.formation[u.type as string];
          if (typeof u.quantity === 'number') f.quantity = u.quantity;
          if (typeof u.size === 'string') f.size = u.size;
        }
        formationDynos(app);
        const types = new Set(updates.map((u) => u.type));
        return { status: 200, json: formationJson(app).filter((f) => types.has(f.type)) };
      }
    }
    if ((m = /^\/apps\/([^/]+)\/dynos$/.exec(path))) {
      const app = findApp(decodeURIComponent(m[1]));
      if (method === 'GET') return { status: 200, json: app.dynos.map((d) => dynoJson(app, d)) };
      if (method === 'DELETE') {
        const at = now();
        app.restarts.count++;
        app.restarts.at.push(at);
        for (const d of app.dynos) {
          if (d.type in app.formation) Object.assign(d, { state: 'starting', created_at: at, updated_at: at });
        }
        return { status: 202, json: {} };
      }
    }
    throw new HttpError(
      404,
      'not_found',
      'The requested API endpoint was not found. Are you using the right HTTP verb (i.e. `GET` vs. `POST`), and did you specify your intended version with the `Accept` header?',
    );
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0];
      const method = req.method ?? 'GET';
      const reply = (status: number, json: unknown) => {
        state.requests.push({ method, path, status });
        res.writeHead(status, {
          'Content-Type': 'application/json; charset=utf-8',
          'Request-Id': randomUUID(),
          'RateLimit-Remaining': '4500',
        });
        res.end(JSON.stringify(json));
      };
      let body: unknown;
      try {
        body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      } catch {
        reply(400, { id: 'bad_request', message: 'Request body is not valid JSON.' });
        return;
      }
      handle(method, path, req.headers, body).then(
        (out) => reply(out.status, out.json),
        (err: unknown) => {
          if (err instanceof HttpError)
            reply(err.status, { id: err.id, message: err.message, ...(err.resource ? { resource: err.resource } : {}) });
          else reply(500, { id: 'internal_server_error', message: 'Internal server error.' });
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const standIn: HerokuStandIn = {
    url: `http://127.0.0.1:${port}`,
    state,
    seedApp(name, o = {}) {
      const app: StandInApp = {
        id: randomUUID(),
        name,
        maintenance: o.maintenance ?? false,
        configVars: { ...(o.configVars ?? {}) },
        formation: Object.fromEntries(
          Object.entries(o.formation ?? { web: 1 }).map(([type, quantity]) => [
            type,
            { quantity, size: 'standard-1X', command: type === 'web' ? 'bin/web' : `bin/${type}` },
          ]),
        ),
        dynos: [],
        restarts: { count: 0, at: [] },
        releases: 0,
        ...(o.team ? { team: o.team } : {}),
      };
      state.apps.set(name, app);
      formationDynos(app);
      return app;
    },
    seedPostgres(appName, o) {
      const app = findApp(appName);
      const addon: StandInAddon = {
        id: randomUUID(),
        name: o.name ?? `postgresql-${randomBytes(3).toString('hex')}-${Math.floor(Math.random() * 90000 + 10000)}`,
        billingApp: app.name,
        service: 'heroku-postgresql',
        plan: o.plan ?? 'heroku-postgresql:standard-0',
        url: o.url,
      };
      state.addons.set(addon.id, addon);
      attach(app, addon, o.attachAs ?? 'DATABASE');
      return addon;
    },
    rotateCredentials(idOrName, newUrl) {
      const addon = findAddon(idOrName);
      if (!newUrl) {
        const u = new URL(addon.url);
        u.password = randomBytes(16).toString('hex');
        newUrl = u.toString();
      }
      addon.url = newUrl;
      for (const att of state.attachments.values()) {
        if (att.addonId !== addon.id) continue;
        const app = state.apps.get(att.app)!;
        app.configVars[attachmentVar(att)] = newUrl;
        app.releases++;
      }
      return newUrl;
    },
    startOneOff(appName, command = 'bash') {
      const app = findApp(appName);
      const dyno: StandInDyno = {
        id: randomUUID(),
        name: `run.${runCounter++}`,
        type: 'run',
        state: 'up',
        command,
        size: 'standard-1X',
        created_at: now(),
        updated_at: now(),
      };
      app.dynos.push(dyno);
      return dyno;
    },
    failNext(match, status, body) {
      failures.push({
        match,
        status,
        body: body ?? {
          id: status === 429 ? 'rate_limit' : 'internal_server_error',
          message:
            status === 429
              ? 'Your account reached the API rate limit. Please wait a few minutes before making new requests.'
              : 'Internal server error.',
        },
      });
    },
    app: (name) => findApp(name),
    attachmentsOf,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
  return standIn;
}
