/**
 * An AWS Secrets Manager secret, either the URL itself or, with `jsonKey`, one key of a JSON secret
 * (RDS style `{"username":..,"password":..,"DATABASE_URL":..}`): only that key is replaced.
 *
 * The previous value is kept by reference: before the new value is written, the custom staging label
 * `pgmig-<id>-previous` is moved onto the current version (UpdateSecretVersionStage). The new value is
 * then written the way rotation does it: PutSecretValue under our own stage `pgmig-<id>-swapped`, then
 * AWSCURRENT moved to it (so a retry reuses that version instead of writing another). Restore moves
 * AWSCURRENT back onto the labelled version, which restores the exact previous secret; with `jsonKey`,
 * if other keys changed meanwhile (a password rotation, say) only our key is put back, in a new version
 * written the same two-step way.
 * Afterwards our labels are removed, so a second restore finds nothing to do.
 *
 * Values are always read by version id (the version holding AWSCURRENT per DescribeSecret), which is
 * what AWS serves by default. moto 5.2.1 gaps this design works around: PutSecretValue with AWSCURRENT
 * replaces the old current version's stages with ["AWSPREVIOUS"], dropping custom labels (AWS keeps
 * them; hence the two-step write); and UpdateSecretVersionStage does not move moto's default version, so
 * on moto a GetSecretValue *without* VersionStage keeps returning the pre-swap value (AWS returns the
 * AWSCURRENT one). Readers on moto must ask for VersionStage "AWSCURRENT" explicitly.
 */
import {
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  UpdateSecretVersionStageCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { ApplicationFailure } from '@temporalio/common';
import { rememberSecret } from '../secrets';
import { fingerprint, type ConfigSinkDriver, type RestoreReceipt, type SwapReceipt } from './driver';
import { previousLabel, swappedLabel } from './names';

type Stages = Record<string, string[]>;

function versionWith(stages: Stages, stage: string): string | undefined {
  return Object.entries(stages).find(([, s]) => s.includes(stage))?.[0];
}

/** JSON with sorted keys, to compare two JSON secrets by content. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

export class SecretsManagerSink implements ConfigSinkDriver {
  constructor(
    private readonly sm: () => SecretsManagerClient,
    private readonly secretId: string,
    private readonly jsonKey?: string,
  ) {}

  describe(): string {
    return `secrets-manager ${this.secretId}${this.jsonKey ? ` (key ${this.jsonKey})` : ''}`;
  }

  private async stages(): Promise<Stages> {
    const out = await this.sm().send(new DescribeSecretCommand({ SecretId: this.secretId }));
    return out.VersionIdsToStages ?? {};
  }

  private async secretString(versionId: string): Promise<string> {
    const out = await this.sm().send(new GetSecretValueCommand({ SecretId: this.secretId, VersionId: versionId }));
    if (out.SecretString === undefined) {
      throw ApplicationFailure.nonRetryable(
        `${this.describe()}: version ${versionId} holds a binary secret, not a string`,
        'ConfigSinkUnsupported',
      );
    }
    rememberSecret(out.SecretString);
    return out.SecretString;
  }

  private parse(text: string): Record<string, unknown> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      // JSON.parse's message quotes the text: never include it.
      parsed = undefined;
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw ApplicationFailure.nonRetryable(
        `${this.describe()}: the secret is not a JSON object, so jsonKey "${this.jsonKey}" cannot apply`,
        'ConfigSinkNotJson',
      );
    }
    return parsed as Record<string, unknown>;
  }

  /** The application's value inside a secret string. */
  private extract(text: string): string | undefined {
    if (!this.jsonKey) return text;
    const v = this.parse(text)[this.jsonKey];
    if (v === undefined || v === null) return undefined;
    const s = typeof v === 'string' ? v : JSON.stringify(v);
    rememberSecret(s);
    return s;
  }

  /** `base` with the application's value replaced (removed when undefined). */
  private compose(base: string, value: string | undefined): string {
    if (!this.jsonKey) return value ?? '';
    const obj = this.parse(base);
    if (value === undefined) delete obj[this.jsonKey];
    else obj[this.jsonKey] = value;
    return JSON.stringify(obj);
  }

  private current(stages: Stages): string {
    const id = versionWith(stages, 'AWSCURRENT');
    if (!id)
      throw ApplicationFailure.nonRetryable(
        `${this.describe()}: the secret has no current value (no AWSCURRENT version)`,
        'ConfigSinkNoValue',
      );
    return id;
  }

  private async moveCurrent(to: string, from: string): Promise<void> {
    if (to === from) return;
    await this.sm().send(
      new UpdateSecretVersionStageCommand({
        SecretId: this.secretId,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: to,
        RemoveFromVersionId: from,
      }),
    );
  }

  /**
   * Makes `text` the current value the way rotation does: a version under our own staging label
   * (reused when an earlier attempt wrote it), then AWSCURRENT moved onto it. Returns its id.
   */
  private async writeCurrent(text: string, stage: string, stages: Stages, current: string): Promise<string> {
    let version = versionWith(stages, stage);
    if (!version || (await this.secretString(version)) !== text) {
      const out = await this.sm().send(new PutSecretValueCommand({ SecretId: this.secretId, SecretString: text, VersionStages: [stage] }));
      version = out.VersionId!;
    }
    await this.moveCurrent(version, current);
    return version;
  }

  async read(): Promise<string | undefined> {
    return this.extract(await this.secretString(this.current(await this.stages())));
  }

  /** The secret must exist with a current value (the swap changes it, never creates it); with jsonKey, a JSON object. */
  async check(): Promise<string[]> {
    let stages: Stages;
    try {
      const out = await this.sm().send(new DescribeSecretCommand({ SecretId: this.secretId }));
      if (out.DeletedDate) return [`configSink.secretId: Secrets Manager secret ${this.secretId} is scheduled for deletion`];
      stages = out.VersionIdsToStages ?? {};
    } catch (err) {
      const name = (err as { name?: string }).name ?? 'Error';
      if (name === 'ResourceNotFoundException') {
        return [
          `configSink.secretId: Secrets Manager secret ${this.secretId} does not exist (the sink changes an existing secret: create it first)`,
        ];
      }
      if (/AccessDenied|Unauthorized|UnrecognizedClient|InvalidSignature/i.test(name)) {
        return [`configSink.secretId: this worker may not describe Secrets Manager secret ${this.secretId} (${name})`];
      }
      throw err;
    }
    const current = versionWith(stages, 'AWSCURRENT');
    if (!current) return [`configSink.secretId: secret ${this.secretId} has no current value (no AWSCURRENT version)`];
    let text: string;
    try {
      text = await this.secretString(current);
    } catch (err) {
      if (err instanceof ApplicationFailure && err.nonRetryable) return [`configSink.secretId: ${err.message}`];
      throw err;
    }
    try {
      if (this.jsonKey) this.parse(text);
      return [];
    } catch (err) {
      if (err instanceof ApplicationFailure && err.nonRetryable) return [`configSink.jsonKey: ${err.message}`];
      throw err;
    }
  }

  async swap(migrationId: string, value: string): Promise<SwapReceipt> {
    rememberSecret(value);
    const label = previousLabel(migrationId);
    const staged = swappedLabel(migrationId);
    const stages = await this.stages();
    const current = this.current(stages);
    let previous = versionWith(stages, label);
    if (!previous) {
      // First attempt: the version the application uses now is the one to come back to.
      await this.sm().send(new UpdateSecretVersionStageCommand({ SecretId: this.secretId, VersionStage: label, MoveToVersionId: current }));
      previous = current;
    }
    const previousValue = this.extract(await this.secretString(previous));
    const currentText = await this.secretString(current);
    const desired = this.compose(currentText, value);
    const newVersion = currentText === desired ? current : await this.writeCurrent(desired, staged, stages, current);
    return {
      sink: this.describe(),
      key: this.jsonKey ?? this.secretId,
      previousFingerprint: fingerprint(previousValue),
      newFingerprint: fingerprint(value)!,
      details: { label, previousVersionId: previous, newVersionId: newVersion },
    };
  }

  async release(migrationId: string): Promise<string[]> {
    const stages = await this.stages();
    const released: string[] = [];
    for (const stage of [previousLabel(migrationId), swappedLabel(migrationId)]) {
      const holder = versionWith(stages, stage);
      if (!holder) continue;
      await this.sm().send(
        new UpdateSecretVersionStageCommand({ SecretId: this.secretId, VersionStage: stage, RemoveFromVersionId: holder }),
      );
      released.push(`staging label ${stage}`);
    }
    return released;
  }

  async restore(migrationId: string, receipt?: SwapReceipt): Promise<RestoreReceipt> {
    const label = previousLabel(migrationId);
    const staged = swappedLabel(migrationId);
    const restoring = `pgmig-${migrationId}-restoring`;
    const stages = await this.stages();
    const current = this.current(stages);
    const currentText = await this.secretString(current);
    let previous = versionWith(stages, label);
    let from = `stage ${label}`;
    const receiptVersion = receipt?.details?.previousVersionId;
    if (
      !previous &&
      typeof receiptVersion === 'string' &&
      stages[receiptVersion] &&
      fingerprint(this.extract(currentText)) === receipt!.newFingerprint
    ) {
      // Our label is gone (removed by hand) but our value is still current: the receipt names the version.
      previous = receiptVersion;
      from = `version ${receiptVersion} (receipt)`;
    }
    if (!previous) return { sink: this.describe(), restored: false, fingerprint: fingerprint(this.extract(currentText)) };

    const previousText = await this.secretString(previous);
    const previousValue = this.extract(previousText);
    const desired = this.compose(currentText, previousValue);
    let restoredVersion = previous;
    if (!this.jsonKey || canonical(this.parse(desired)) === canonical(this.parse(previousText))) {
      // Nothing else changed since the swap: make the old version current again (the exact old secret).
      await this.moveCurrent(previous, current);
    } else if (desired !== currentText) {
      // Other keys changed meanwhile (rotation): put back only our key, keeping theirs.
      restoredVersion = await this.writeCurrent(desired, restoring, stages, current);
    } else {
      restoredVersion = current;
    }
    // Our labels go, so that a second restore has nothing to do and the versions age out normally.
    const after = await this.stages();
    for (const stage of [label, staged, restoring]) {
      const holder = versionWith(after, stage);
      if (holder)
        await this.sm().send(
          new UpdateSecretVersionStageCommand({ SecretId: this.secretId, VersionStage: stage, RemoveFromVersionId: holder }),
        );
    }
    return {
      sink: this.describe(),
      restored: true,
      fingerprint: fingerprint(previousValue),
      details: { restoredFrom: from, currentVersionId: restoredVersion },
    };
  }
}
