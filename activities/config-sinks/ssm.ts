/**
 * An SSM Parameter Store parameter (what ECS task definitions, Lambda and most AWS deploy tools read).
 *
 * The previous value is kept by reference: before overwriting, the parameter's current version gets
 * the label `pgmig-<id>-previous` (LabelParameterVersion), and restore reads `name:label` and puts that
 * value back (SSM cannot make an old version current again, so the restore is a new version with the
 * exact old value, same Type / KMS key / tier). A parameter that did not exist is created with the tag
 * `pgmig:created-by=<id>` in the same PutParameter call (atomic, so a retry can tell), and restore
 * deletes it. Nothing but versions and fingerprints reaches the receipt.
 *
 * Note for AWS: SSM keeps 100 versions; if the oldest one carries a label, PutParameter fails with
 * ParameterMaxVersionLimitExceeded. Our label sits on the version current at the swap, so this only
 * bites a parameter rewritten ~100 times during the hold.
 */
import {
  DeleteParameterCommand,
  DescribeParametersCommand,
  GetParameterCommand,
  LabelParameterVersionCommand,
  ListTagsForResourceCommand,
  PutParameterCommand,
  UnlabelParameterVersionCommand,
  type Parameter,
  type ParameterMetadata,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { ApplicationFailure } from '@temporalio/common';
import { rememberSecret } from '../secrets';
import { fingerprint, type ConfigSinkDriver, type RestoreReceipt, type SwapReceipt } from './driver';
import { previousLabel } from './names';

export const CREATED_BY_TAG = 'pgmig:created-by';

function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string }).name;
  return name === 'ParameterNotFound' || name === 'ParameterVersionNotFound' || name === 'InvalidResourceId';
}

export class SsmSink implements ConfigSinkDriver {
  constructor(
    private readonly ssm: () => SSMClient,
    private readonly name: string,
  ) {}

  describe(): string {
    return `ssm ${this.name}`;
  }

  /** The current value, or the one at a selector (`label` or version number); undefined when absent. */
  private async get(selector?: string): Promise<Parameter | undefined> {
    try {
      const out = await this.ssm().send(
        new GetParameterCommand({ Name: selector ? `${this.name}:${selector}` : this.name, WithDecryption: true }),
      );
      if (out.Parameter?.Value) rememberSecret(out.Parameter.Value);
      return out.Parameter;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async read(): Promise<string | undefined> {
    return (await this.get())?.Value;
  }

  /**
   * The parameter is described (not read): present, its Type and key are kept at the swap; absent, the
   * swap creates it. Whether this worker may write it cannot be known without writing: IAM decides at the swap.
   */
  async check(): Promise<string[]> {
    try {
      await this.metadata();
      return [];
    } catch (err) {
      const name = (err as { name?: string }).name ?? 'Error';
      if (/AccessDenied|Unauthorized|UnrecognizedClient|InvalidSignature/i.test(name)) {
        return [`configSink.name: this worker may not describe SSM parameter ${this.name} (${name})`];
      }
      throw err;
    }
  }

  private async metadata(): Promise<ParameterMetadata | undefined> {
    const out = await this.ssm().send(
      new DescribeParametersCommand({ ParameterFilters: [{ Key: 'Name', Option: 'Equals', Values: [this.name] }] }),
    );
    return out.Parameters?.[0];
  }

  private async createdBy(): Promise<string | undefined> {
    try {
      const out = await this.ssm().send(new ListTagsForResourceCommand({ ResourceType: 'Parameter', ResourceId: this.name }));
      return out.TagList?.find((t) => t.Key === CREATED_BY_TAG)?.Value;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Overwrites keeping what the parameter is: Type, KMS key, tier. Returns the new version. */
  private async overwrite(value: string): Promise<number | undefined> {
    const meta = await this.metadata();
    const type = meta?.Type ?? 'SecureString';
    const out = await this.ssm().send(
      new PutParameterCommand({
        Name: this.name,
        Value: value,
        Type: type,
        ...(type === 'SecureString' && meta?.KeyId ? { KeyId: meta.KeyId } : {}),
        ...(meta?.Tier ? { Tier: meta.Tier } : {}),
        Overwrite: true,
      }),
    );
    return out.Version;
  }

  private async label(version: number, label: string): Promise<void> {
    const out = await this.ssm().send(new LabelParameterVersionCommand({ Name: this.name, ParameterVersion: version, Labels: [label] }));
    if (out.InvalidLabels?.length) {
      throw ApplicationFailure.nonRetryable(
        `${this.describe()}: SSM refused the version label ${out.InvalidLabels.join(', ')}`,
        'ConfigSinkLabelRefused',
      );
    }
  }

  async swap(migrationId: string, value: string): Promise<SwapReceipt> {
    rememberSecret(value);
    const label = previousLabel(migrationId);
    const current = await this.get();
    const kept = await this.get(label);
    let previousVersion: number | null = null;
    let previousValue: string | undefined;
    let created = false;
    let newVersion: number | undefined;
    if (kept) {
      // An earlier attempt labelled the value the application used before us: keep it.
      previousVersion = kept.Version ?? null;
      previousValue = kept.Value;
    } else if (!current) {
      // Absent before: create it, tagged in the same call so that a retry (and restore) know it is ours.
      const out = await this.ssm().send(
        new PutParameterCommand({
          Name: this.name,
          Value: value,
          Type: 'SecureString',
          Tags: [{ Key: CREATED_BY_TAG, Value: migrationId }],
        }),
      );
      created = true;
      newVersion = out.Version;
    } else if ((await this.createdBy()) === migrationId) {
      created = true; // an earlier attempt created it
    } else {
      previousVersion = current.Version!;
      previousValue = current.Value;
      await this.label(previousVersion, label);
    }
    if (newVersion === undefined) {
      newVersion = current?.Value === value ? current.Version : await this.overwrite(value);
    }
    return {
      sink: this.describe(),
      key: this.name,
      previousFingerprint: fingerprint(previousValue),
      newFingerprint: fingerprint(value)!,
      details: { label, previousVersion, newVersion: newVersion ?? null, createdBySwap: created },
    };
  }

  async release(migrationId: string): Promise<string[]> {
    const label = previousLabel(migrationId);
    const previous = await this.get(label);
    if (!previous?.Version) return [];
    await this.ssm().send(new UnlabelParameterVersionCommand({ Name: this.name, ParameterVersion: previous.Version, Labels: [label] }));
    return [`version label ${label}`];
  }

  async restore(migrationId: string, receipt?: SwapReceipt): Promise<RestoreReceipt> {
    const label = previousLabel(migrationId);
    let previous = await this.get(label);
    let from = `label ${label}`;
    const current = await this.get();
    if (
      !previous &&
      typeof receipt?.details?.previousVersion === 'number' &&
      current &&
      fingerprint(current.Value) === receipt.newFingerprint
    ) {
      // The label is gone (removed by hand) but our value is still current: the receipt names the version.
      previous = await this.get(String(receipt.details.previousVersion));
      from = `version ${receipt.details.previousVersion} (receipt)`;
    }
    if (previous?.Value !== undefined) {
      const version = current?.Value === previous.Value ? current.Version : await this.overwrite(previous.Value);
      if (from.startsWith('label')) {
        await this.ssm().send(
          new UnlabelParameterVersionCommand({ Name: this.name, ParameterVersion: previous.Version!, Labels: [label] }),
        );
      }
      return {
        sink: this.describe(),
        restored: true,
        fingerprint: fingerprint(previous.Value),
        details: { restoredFrom: from, restoredVersion: previous.Version ?? null, currentVersion: version ?? null },
      };
    }
    if (current && (await this.createdBy()) === migrationId) {
      try {
        await this.ssm().send(new DeleteParameterCommand({ Name: this.name }));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      return { sink: this.describe(), restored: true, fingerprint: null, details: { deleted: true } };
    }
    return { sink: this.describe(), restored: false, fingerprint: fingerprint(current?.Value) };
  }
}
