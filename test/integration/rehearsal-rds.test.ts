/**
 * A rehearsal from an RDS snapshot, against moto. moto runs RDS's control plane only: the restored
 * instance has an endpoint name but no PostgreSQL behind it. So this tests what can be tested: the
 * snapshot is restored (RestoreDBInstanceFromDBSnapshot), its URL kept in SSM for the rehearsal, the
 * rehearsal fails clearly because the restored endpoint does not answer, and the teardown still
 * deletes the instance (no final snapshot), the SSM parameter and the scratch target database.
 * Restoring real data, the migration against a restored instance and RDS timings are not verified here.
 */
import {
  CreateDBInstanceCommand,
  CreateDBSnapshotCommand,
  DeleteDBInstanceCommand,
  DescribeDBInstancesCommand,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { ApplicationFailure } from '@temporalio/common';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scratchNames } from '../../contract/rehearsal';
import { RehearsalOutcomeKey } from '../../signals/rehearsal';
import { loadStackEnv } from '../../stack';
import { openSandbox, targetTableCount, type Sandbox } from '../helpers/harness';
import { motoConfig, motoRdsClient } from '../helpers/moto';
import { leftovers, rehearsalInput, runRehearsal, scratchRefs, type RehearsalRun } from '../helpers/rehearsal';

let sandbox: Sandbox;
let rds: RDSClient;
let sourceInstance: string;
let snapshotId: string;
let run: RehearsalRun;
let config: string;

beforeAll(async () => {
  // The worker's SSM client (the restored URL is kept there) comes from the environment: point it at moto.
  const env = loadStackEnv();
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: env.AWS_ENDPOINT_URL,
    AWS_REGION: env.AWS_REGION,
    AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY,
  });
  sandbox = await openSandbox('rehearsal_rds');
  config = sandbox.configText();
  rds = motoRdsClient(sandbox.env);
  sourceInstance = `src-${sandbox.id.replace(/_/g, '-')}`;
  snapshotId = `${sourceInstance}-nightly`;
  await rds.send(
    new CreateDBInstanceCommand({
      DBInstanceIdentifier: sourceInstance,
      Engine: 'postgres',
      DBInstanceClass: 'db.t3.micro',
      MasterUsername: 'app',
      MasterUserPassword: 'not-used-by-moto',
      AllocatedStorage: 20,
    }),
  );
  await rds.send(new CreateDBSnapshotCommand({ DBInstanceIdentifier: sourceInstance, DBSnapshotIdentifier: snapshotId }));
  const reportDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'pgmig-rehearsal-rds-')), 'reports');
  const refs = scratchRefs(sandbox);
  run = await runRehearsal(
    sandbox,
    rehearsalInput(sandbox, {
      reportDir,
      extra: {
        snapshot: {
          type: 'rds-snapshot',
          dbSnapshotIdentifier: snapshotId,
          instanceClass: 'db.t3.medium',
          scratchTarget: { env: refs.target },
          reachableWithin: '3s',
          availableWithin: '1m',
        },
      },
    }),
  );
});

afterAll(async () => {
  await rds?.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: sourceInstance, SkipFinalSnapshot: true })).catch(() => undefined);
  await sandbox?.close();
});

describe('a rehearsal from an RDS snapshot (moto: control plane only)', () => {
  it('restores the snapshot, then fails clearly because the restored endpoint does not answer', async () => {
    expect((run.error?.cause as ApplicationFailure).type).toBe('RehearsalFailed');
    expect(run.summary).toMatchObject({ outcome: 'failed', verdict: 'fail' });
    const instance = scratchNames(run.report.rehearsalId).instance;
    expect(run.report.failure?.phase).toBe('snapshot');
    expect(run.report.reasons[0]).toMatch(
      new RegExp(
        `^snapshot failed: the restored instance ${instance} \\(endpoint ${instance}\\..*rds\\.amazonaws\\.com:5432\\) is not reachable from this worker within 3 s`,
      ),
    );
    expect(run.report.childWorkflowId).toBeUndefined(); // the migration never started
    expect((await run.handle.describe()).typedSearchAttributes.get(RehearsalOutcomeKey)).toBe('failed');
  });

  it('still deletes the restored instance, its SSM parameter and the scratch target database', async () => {
    const instance = scratchNames(run.report.rehearsalId).instance;
    const teardown = Object.fromEntries(run.report.teardown.map((t) => [t.step, t]));
    expect(Object.keys(teardown)).toEqual(['drop-scratch-target', 'delete-restored-instance', 'remove-staging-files']);
    expect(run.report.teardown.every((t) => t.state === 'completed')).toBe(true);
    expect(teardown['delete-restored-instance'].done).toEqual([
      `instance ${instance} deleted (no final snapshot)`,
      `parameter /pgmig/rehearsals/${run.report.rehearsalId}/source-url deleted`,
    ]);
    expect(teardown['drop-scratch-target'].done).toEqual([`database ${scratchNames(run.report.rehearsalId).targetDatabase} dropped`]);
    await expect(rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instance }))).rejects.toMatchObject({
      name: 'DBInstanceNotFoundFault',
    });
    const ssm = new SSMClient(motoConfig(sandbox.env));
    await expect(
      ssm.send(new GetParameterCommand({ Name: `/pgmig/rehearsals/${run.report.rehearsalId}/source-url` })),
    ).rejects.toMatchObject({ name: 'ParameterNotFound' });
    expect(await leftovers(sandbox.env, run.report.rehearsalId)).toEqual([]);
    // the snapshot's own instance is not the rehearsal's business
    expect((await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: sourceInstance }))).DBInstances).toHaveLength(1);
  });

  it('touches neither the real target nor the real config sink', async () => {
    expect(await targetTableCount(sandbox)).toBe(0);
    expect(sandbox.configText()).toBe(config);
  });
});
