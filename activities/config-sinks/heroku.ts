/**
 * Heroku config vars through the Platform API.
 *
 * On Heroku, DATABASE_URL normally belongs to the Postgres add-on's attachment named DATABASE: the
 * API refuses to set it (422), and the add-on's credential rotation rewrites it later. So the swap is:
 *   1. find the attachment named DATABASE (GET /apps/{app}/addon-attachments);
 *   2. attach the same add-on again under the rollback name PGMIG_ROLLBACK_<ID> (POST /addon-attachments):
 *      the old database stays reachable as PGMIG_ROLLBACK_<ID>_URL, and its credentials keep rotating;
 *   3. delete the DATABASE attachment (DELETE /addon-attachments/{id}): from now on no rotation can
 *      revert DATABASE_URL (Heroku refuses to delete an add-on's last attachment to its billing app,
 *      which is why step 2 comes first);
 *   4. set DATABASE_URL to the new URL (PATCH /apps/{app}/config-vars).
 * Restore reverses it: unset DATABASE_URL, attach the add-on as DATABASE again (which sets DATABASE_URL
 * to the add-on's *current* credential, rotated or not), delete the rollback attachment. The previous
 * value is kept by reference (the add-on), never copied.
 *
 * When DATABASE_URL is a plain config var (no attachment of that name), the previous value has to be
 * copied. Where it is kept: ONE durable place that survives a swap whose receipt never reached history
 * (activity died before returning) and a worker that is replaced, so neither the receipt nor a file on
 * the worker host: a config var of the app itself, PGMIG_<ID>_PREVIOUS_DATABASE_URL, holding the value
 * sealed with AES-256-GCM under the worker's PGMIG_SECRET_KEY (which the app does not have). It is
 * written in the same PATCH as the new DATABASE_URL (one atomic change, one release) and removed in the
 * same PATCH that puts the old value back. The receipt names the config var and holds no ciphertext.
 * Without PGMIG_SECRET_KEY the swap refuses before changing anything.
 */
import { ApplicationFailure } from '@temporalio/common';
import { ACCESS_FAILURE_TYPES } from '../../contract/failures';
import type { ConfigSink } from '../../contract/input';
import { appPath, openHerokuClient, type HerokuAttachment, type HerokuClient } from '../heroku/platform-api';
import { fitName } from '../names';
import { rememberSecret } from '../secrets';
import { fingerprint, type ConfigSinkClients, type ConfigSinkDriver, type RestoreReceipt, type SwapReceipt } from './driver';
import { upperId } from './names';
import { loadSecretKey, seal, unseal } from './sealed';

export type HerokuSinkConfig = Extract<ConfigSink, { type: 'heroku' }>;

/** Name of the attachment that keeps the old database reachable after the swap. */
export function rollbackAttachmentName(migrationId: string): string {
  const id = upperId(migrationId);
  const short = fitName(id, 20, { id: migrationId, separator: '_', hashLength: 6 }).toUpperCase();
  return `PGMIG_ROLLBACK_${short}`;
}

/** Config var holding the sealed previous value when the key was a plain config var. */
export function backupConfigVar(migrationId: string, key: string): string {
  return `PGMIG_${upperId(migrationId)}_PREVIOUS_${key}`;
}

interface Backup {
  present: boolean;
  value?: string;
}

export class HerokuConfigSink implements ConfigSinkDriver {
  private client: HerokuClient | undefined;
  readonly key: string;

  constructor(
    private readonly sink: HerokuSinkConfig,
    private readonly clients: ConfigSinkClients,
  ) {
    this.key = `${sink.attachmentName}_URL`;
  }

  describe(): string {
    return `heroku ${this.sink.app} (${this.key})`;
  }

  private async api(): Promise<HerokuClient> {
    this.client ??= await openHerokuClient(this.sink, this.clients, 'configSink.token');
    return this.client;
  }

  private async attachments(): Promise<HerokuAttachment[]> {
    return (await this.api()).get<HerokuAttachment[]>(appPath(this.sink.app, '/addon-attachments'));
  }

  private async configVars(): Promise<Record<string, string>> {
    const vars = await (await this.api()).get<Record<string, string | null>>(appPath(this.sink.app, '/config-vars'));
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(vars)) {
      if (typeof v !== 'string') continue;
      out[k] = v;
      if (k.endsWith('_URL')) rememberSecret(v);
    }
    return out;
  }

  private async setVars(vars: Record<string, string | null>): Promise<void> {
    await (await this.api()).patch(appPath(this.sink.app, '/config-vars'), vars);
  }

  private sealContext(migrationId: string): string {
    return `pgmig heroku config var ${this.key} migration ${migrationId}`;
  }

  private key32(purpose: string): Buffer {
    return loadSecretKey(this.clients.env, `${this.describe()}: ${purpose}`);
  }

  async read(): Promise<string | undefined> {
    return (await this.configVars())[this.key];
  }

  /**
   * The token resolves and the app's attachments can be listed; when the key is a plain config var (no
   * attachment of that name), the worker has the PGMIG_SECRET_KEY the swap needs to keep the old value.
   */
  async check(): Promise<string[]> {
    let attachments: HerokuAttachment[];
    try {
      attachments = await this.attachments();
    } catch (err) {
      if (err instanceof ApplicationFailure && (err.nonRetryable || ACCESS_FAILURE_TYPES.includes(err.type ?? ''))) {
        return [err.message.startsWith('configSink.') ? err.message : `configSink.app: ${err.message}`];
      }
      throw err;
    }
    if (attachments.some((a) => a.name === this.sink.attachmentName)) return [];
    try {
      this.key32(
        `${this.key} is a plain config var (no add-on attachment ${this.sink.attachmentName}), so its previous value must be kept encrypted`,
      );
      return [];
    } catch (err) {
      if (err instanceof ApplicationFailure) return [`configSink.attachmentName: ${err.message}`];
      throw err;
    }
  }

  async swap(migrationId: string, value: string): Promise<SwapReceipt> {
    rememberSecret(value);
    const api = await this.api();
    const rollbackName = rollbackAttachmentName(migrationId);
    const [attachments, vars] = await Promise.all([this.attachments(), this.configVars()]);
    const primary = attachments.find((a) => a.name === this.sink.attachmentName);
    const rollback = attachments.find((a) => a.name === rollbackName);
    const receipt = (previous: string | undefined, details: SwapReceipt['details']): SwapReceipt => ({
      sink: this.describe(),
      key: this.key,
      previousFingerprint: fingerprint(previous),
      newFingerprint: fingerprint(value)!,
      details,
    });

    if (primary || rollback) {
      // The add-on is the previous value: keep it attached under the rollback name, then detach DATABASE.
      const addon = (primary ?? rollback)!.addon;
      const previous = primary ? vars[this.key] : vars[`${rollbackName}_URL`];
      if (!rollback) await api.post('/addon-attachments', { addon: addon.id, app: this.sink.app, name: rollbackName });
      if (primary) await api.delete(`/addon-attachments/${encodeURIComponent(primary.id)}`);
      if (primary || vars[this.key] !== value) await this.setVars({ [this.key]: value });
      return receipt(previous, {
        mode: 'attachment',
        addonId: addon.id,
        addonName: addon.name,
        rollbackAttachment: rollbackName,
        rollbackConfigVar: `${rollbackName}_URL`,
      });
    }

    // A plain config var (or none): keep the previous value sealed in a config var of the app.
    const backupName = backupConfigVar(migrationId, this.key);
    const key = this.key32(
      `${this.key} is a plain config var (no add-on attachment ${this.sink.attachmentName}), so its previous value must be kept encrypted`,
    );
    let previous: string | undefined;
    if (vars[backupName] === undefined) {
      previous = vars[this.key];
      const backup: Backup = previous === undefined ? { present: false } : { present: true, value: previous };
      // One PATCH: the backup and the new value land together (one release), or neither does.
      await this.setVars({ [this.key]: value, [backupName]: seal(JSON.stringify(backup), key, this.sealContext(migrationId)) });
    } else {
      // An earlier attempt kept the value the application used before us.
      const backup = JSON.parse(unseal(vars[backupName], key, this.sealContext(migrationId))) as Backup;
      previous = backup.present ? backup.value : undefined;
      if (previous) rememberSecret(previous);
      if (vars[this.key] !== value) await this.setVars({ [this.key]: value });
    }
    return receipt(previous, { mode: 'config-var', backupConfigVar: backupName, encryption: 'aes-256-gcm' });
  }

  /**
   * Revokes the old add-on (the decommission gate approved it): the rollback attachment goes; when it
   * is the add-on's last attachment on this app, Heroku allows that only by destroying the add-on
   * (`addons:destroy`), so the old database is deprovisioned. A sealed backup goes too.
   */
  async release(migrationId: string): Promise<string[]> {
    const api = await this.api();
    const rollbackName = rollbackAttachmentName(migrationId);
    const [attachments, vars] = await Promise.all([this.attachments(), this.configVars()]);
    const released: string[] = [];
    const rollback = attachments.find((a) => a.name === rollbackName);
    if (rollback) {
      // Every attachment of the add-on, on any app: a database shared with another app is never destroyed.
      const all = await api.get<HerokuAttachment[]>(`/addons/${encodeURIComponent(rollback.addon.id)}/addon-attachments`);
      const others = all.filter((a) => a.id !== rollback.id);
      if (others.length === 0) {
        await api.delete(`/apps/${encodeURIComponent(this.sink.app)}/addons/${encodeURIComponent(rollback.addon.id)}`);
        released.push(`add-on ${rollback.addon.name} destroyed (its last attachment was ${rollbackName})`);
      } else {
        await api.delete(`/addon-attachments/${encodeURIComponent(rollback.id)}`);
        released.push(`attachment ${rollbackName} of add-on ${rollback.addon.name}`);
      }
    }
    const backupName = backupConfigVar(migrationId, this.key);
    if (vars[backupName] !== undefined) {
      await this.setVars({ [backupName]: null });
      released.push(`config var ${backupName}`);
    }
    return released;
  }

  async restore(migrationId: string, receipt?: SwapReceipt): Promise<RestoreReceipt> {
    const api = await this.api();
    const rollbackName = rollbackAttachmentName(migrationId);
    const [attachments, vars] = await Promise.all([this.attachments(), this.configVars()]);
    const primary = attachments.find((a) => a.name === this.sink.attachmentName);
    const rollback = attachments.find((a) => a.name === rollbackName);
    const done = async (details: RestoreReceipt['details']): Promise<RestoreReceipt> => ({
      sink: this.describe(),
      restored: true,
      fingerprint: fingerprint((await this.configVars())[this.key]),
      details,
    });
    const reattach = async (addonId: string) => {
      // Attaching as DATABASE sets DATABASE_URL: the plain value we set has to go first.
      if (vars[this.key] !== undefined) await this.setVars({ [this.key]: null });
      await api.post('/addon-attachments', { addon: addonId, app: this.sink.app, name: this.sink.attachmentName });
    };

    if (rollback) {
      if (!primary) await reattach(rollback.addon.id);
      await api.delete(`/addon-attachments/${encodeURIComponent(rollback.id)}`);
      return done({ mode: 'attachment', reattached: this.sink.attachmentName, addonId: rollback.addon.id });
    }
    const addonId = receipt?.details?.mode === 'attachment' ? receipt.details.addonId : undefined;
    if (!primary && typeof addonId === 'string' && fingerprint(vars[this.key]) === receipt!.newFingerprint) {
      // The rollback attachment was removed by hand, but our value is still set: the receipt names the add-on.
      await reattach(addonId);
      return done({ mode: 'attachment', reattached: this.sink.attachmentName, addonId, from: 'receipt' });
    }

    const backupName = backupConfigVar(migrationId, this.key);
    if (vars[backupName] !== undefined) {
      const key = this.key32(`the previous ${this.key} is sealed in ${backupName}`);
      const backup = JSON.parse(unseal(vars[backupName], key, this.sealContext(migrationId))) as Backup;
      if (backup.value) rememberSecret(backup.value);
      await this.setVars({ [this.key]: backup.present ? backup.value! : null, [backupName]: null });
      return {
        sink: this.describe(),
        restored: true,
        fingerprint: fingerprint(backup.present ? backup.value : undefined),
        details: { mode: 'config-var' },
      };
    }
    return { sink: this.describe(), restored: false, fingerprint: fingerprint(vars[this.key]) };
  }
}
