/**
 * Reading Route 53 weighted records: the record set group a traffic shift moves weight within.
 * The workflow reads them before anything changes and keeps their weights and TTLs in its history:
 * they are what a shift back and the TTL restore return to.
 */
import {
  ListResourceRecordSetsCommand,
  type AliasTarget,
  type ResourceRecordSet,
  type Route53Client,
  type RRType,
} from '@aws-sdk/client-route-53';
import { ApplicationFailure } from '@temporalio/common';
import { callAws } from '../aws/failure';
import { invalid, route53Failure } from './failure';

export interface Route53Clients {
  route53: Route53Client;
  /** For HTTP probes in `healthGate`; defaults to the global fetch. */
  fetch?: typeof fetch;
}

/** One weighted record set group: all records of this name and type that carry a SetIdentifier and a Weight. */
export interface WeightedRecordSpec {
  /** `Z0123...` or `/hostedzone/Z0123...` (not the zone's name). */
  hostedZoneId: string;
  /** e.g. `db.example.com` (a trailing dot is optional; case does not matter). */
  recordName: string;
  type: RRType;
}

export interface WeightedRecord {
  setIdentifier: string;
  weight: number;
  /** Absent for alias records (their TTL is the alias target's). */
  ttl?: number;
  /** The record's values (ResourceRecords), absent for alias records. */
  values?: string[];
  aliasTarget?: AliasTarget;
  healthCheckId?: string;
  /** The record set exactly as Route 53 returned it: UPSERTs send it back with one field changed. */
  recordSet: ResourceRecordSet;
}

/** Route 53 returns names in lower case, fully qualified, with `*` as `\052`. */
function normalizeName(name: string): string {
  let n = name.trim().toLowerCase().replace(/\\052/g, '*');
  if (!n.endsWith('.')) n += '.';
  return n;
}

/** How records are named in messages. */
export function zoneLabel(spec: WeightedRecordSpec): string {
  return `${spec.recordName} ${spec.type} in zone ${spec.hostedZoneId}`;
}

export function validateSpec(spec: WeightedRecordSpec): void {
  if (!spec || typeof spec.hostedZoneId !== 'string' || !/^(\/hostedzone\/)?[A-Za-z0-9]+$/.test(spec.hostedZoneId)) {
    throw invalid(`hostedZoneId must be a Route 53 zone ID such as Z0123456789ABC (got ${JSON.stringify(spec?.hostedZoneId)})`);
  }
  if (typeof spec.recordName !== 'string' || !spec.recordName.trim() || /\s/.test(spec.recordName.trim())) {
    throw invalid(`recordName must be a DNS name (got ${JSON.stringify(spec.recordName)})`);
  }
  if (typeof spec.type !== 'string' || !spec.type) throw invalid('type must be a record type such as CNAME');
}

/**
 * The weighted record sets of one name and type (those with a SetIdentifier and a Weight), in
 * Route 53's order. Pages through ListResourceRecordSets from the name, so large zones cost only
 * the pages that hold the name. An unknown zone is a non-retryable `NoSuchHostedZone`.
 */
export async function readWeightedRecords(clients: Route53Clients, spec: WeightedRecordSpec): Promise<WeightedRecord[]> {
  validateSpec(spec);
  const name = normalizeName(spec.recordName);
  const out: WeightedRecord[] = [];
  let start: { name: string; type: RRType; identifier?: string } | undefined = { name, type: spec.type };
  while (start) {
    const page = await callAws(
      `ListResourceRecordSets ${zoneLabel(spec)}`,
      () =>
        clients.route53.send(
          new ListResourceRecordSetsCommand({
            HostedZoneId: spec.hostedZoneId,
            StartRecordName: start!.name,
            StartRecordType: start!.type,
            StartRecordIdentifier: start!.identifier,
            MaxItems: 300,
          }),
        ),
      route53Failure,
    );
    let pastIt = false;
    for (const rs of page.ResourceRecordSets ?? []) {
      if (normalizeName(rs.Name ?? '') !== name || rs.Type !== spec.type) {
        pastIt = true;
        break;
      }
      if (rs.SetIdentifier === undefined || rs.Weight === undefined) continue;
      out.push({
        setIdentifier: rs.SetIdentifier,
        weight: rs.Weight,
        ...(rs.TTL !== undefined ? { ttl: rs.TTL } : {}),
        ...(rs.ResourceRecords ? { values: rs.ResourceRecords.map((r) => r.Value ?? '') } : {}),
        ...(rs.AliasTarget ? { aliasTarget: rs.AliasTarget } : {}),
        ...(rs.HealthCheckId ? { healthCheckId: rs.HealthCheckId } : {}),
        recordSet: rs,
      });
    }
    start =
      !pastIt && page.IsTruncated && page.NextRecordName && normalizeName(page.NextRecordName) === name && page.NextRecordType === spec.type
        ? { name: page.NextRecordName, type: page.NextRecordType, identifier: page.NextRecordIdentifier }
        : undefined;
  }
  return out;
}

/** Weights by set identifier. */
export function weightsOf(records: WeightedRecord[]): Record<string, number> {
  return Object.fromEntries(records.map((r) => [r.setIdentifier, r.weight]));
}

/**
 * The weighted records of `spec`, refusing (non-retryably) when there are none or when one of `ids`
 * is missing: a write would otherwise skip an identifier it cannot find without a word.
 */
export async function readRequired(clients: Route53Clients, spec: WeightedRecordSpec, ids: string[]): Promise<WeightedRecord[]> {
  const records = await readWeightedRecords(clients, spec);
  const missing = ids.filter((id) => !records.some((r) => r.setIdentifier === id));
  if (records.length === 0) {
    throw ApplicationFailure.nonRetryable(
      `${zoneLabel(spec)}: no weighted records (a record with SetIdentifier and Weight) of that name and type`,
      'Route53RecordNotFound',
    );
  }
  if (missing.length) {
    throw ApplicationFailure.nonRetryable(
      `${zoneLabel(spec)}: no weighted record with SetIdentifier ${missing.map((m) => JSON.stringify(m)).join(', ')} (there are ${records
        .map((r) => JSON.stringify(r.setIdentifier))
        .join(', ')})`,
      'Route53RecordNotFound',
    );
  }
  return records;
}
