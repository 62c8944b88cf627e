/** AWS SDK clients pointed at the local stack's moto server, for tests. */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DatabaseMigrationServiceClient } from '@aws-sdk/client-database-migration-service';
import { RDSClient } from '@aws-sdk/client-rds';
import type { DmsClients } from '../../activities/methods/dms/aws-dms';
import type { StackEnv } from '../../stack';

export function motoConfig(env: StackEnv) {
  return {
    endpoint: env.AWS_ENDPOINT_URL,
    region: env.AWS_REGION,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
  };
}

/**
 * moto 5.2.1 writes the timestamps of DMS tasks and replication instances (ReplicationTaskCreationDate,
 * InstanceCreateTime, ...) as ISO-8601 strings without a zone; the AWS JSON 1.1 protocol carries
 * epoch seconds, and the SDK v3 rejects every task and instance answer with "TypeError: Expected real
 * number, got implicit NaN ... Deserialization error". This middleware sits between the HTTP answer
 * and the SDK's deserializer and re-encodes those values as epoch seconds (moto's clock is UTC). The
 * data is moto's own; only its encoding changes. Endpoints and CloudWatch need nothing.
 */
export function motoTimestampsAsEpochSeconds(client: DatabaseMigrationServiceClient): DatabaseMigrationServiceClient {
  client.middlewareStack.addRelativeTo(
    <Args>(next: RawResponseHandler<Args>) =>
      async (args: Args) => {
        const result = await next(args);
        const response = result.response as { body?: unknown; headers?: Record<string, string> };
        const body = response?.body as AsyncIterable<Uint8Array> | undefined;
        if (!body || typeof body[Symbol.asyncIterator] !== 'function') return result;
        const chunks: Buffer[] = [];
        for await (const chunk of body) chunks.push(Buffer.from(chunk));
        const text = Buffer.concat(chunks)
          .toString('utf8')
          .replace(
            /("[A-Za-z]+"\s*:\s*)"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)(Z|[+-]\d\d:?\d\d)?"/g,
            (_all, key: string, iso: string, zone: string | undefined) => `${key}${Date.parse(iso + (zone ?? 'Z')) / 1000}`,
          );
        const bytes = new Uint8Array(Buffer.from(text, 'utf8'));
        response.body = bytes;
        if (response.headers?.['content-length'] !== undefined) response.headers['content-length'] = String(bytes.length);
        return result;
      },
    { relation: 'after', toMiddleware: 'deserializerMiddleware', name: 'motoTimestampsAsEpochSeconds' },
  );
  return client;
}

/** What the middleware above needs of the SDK's deserialize-step handler: its answer's raw HTTP response. */
type RawResponseHandler<Args> = (args: Args) => Promise<{ response: unknown }>;

/** DMS and CloudWatch clients for moto, with the timestamp adapter above. */
export function motoDmsClients(env: StackEnv): DmsClients {
  const config = motoConfig(env);
  return { dms: motoTimestampsAsEpochSeconds(new DatabaseMigrationServiceClient(config)), cloudwatch: new CloudWatchClient(config) };
}

/** RDS client for moto (rehearsals from an RDS snapshot); the Query protocol needs no adapter. */
export function motoRdsClient(env: StackEnv): RDSClient {
  return (motoRds ??= new RDSClient(motoConfig(env)));
}
let motoRds: RDSClient | undefined;
