/**
 * DMS's own failures: input refused before AWS is called, and the DMS error codes no retry can fix
 * (on top of the ones every AWS service shares, see aws/failure.ts).
 */
import { ApplicationFailure } from '@temporalio/common';
import { awsFailure, type AwsErrorCodes } from '../../aws/failure';
import { redact } from '../../secrets';

/** Input no retry can fix, refused before anything is created. */
export function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(redact(message), 'DmsInvalidInput');
}

/** DMS codes meaning the input, the account's permissions or its quota are wrong, with what to check. */
const DMS_NON_RETRYABLE: AwsErrorCodes = {
  AccessDeniedFault:
    'check the worker role (dms:* on pgmig-* resources, iam:PassRole) and that the account has the dms-vpc-role (and dms-cloudwatch-logs-role for task logs)',
  ResourceNotFoundFault: null,
  ResourceQuotaExceededFault: "the account's DMS quota is used up; delete unused replication instances or endpoints, or raise the quota",
  StorageQuotaExceededFault: null,
  InvalidSubnet: 'the replication subnet group must name subnets of one VPC in at least two availability zones',
  ReplicationSubnetGroupDoesNotCoverEnoughAZs: null,
  UpgradeDependencyFailureFault: null,
  InvalidCertificateFault: null,
  KMSKeyNotAccessibleFault: null,
  KMSAccessDeniedFault: null,
  KMSDisabledFault: null,
  KMSInvalidStateFault: null,
  KMSNotFoundFault: null,
  S3AccessDeniedFault: null,
};

/**
 * An SDK error of a DMS (or its CloudWatch metrics) call as an ApplicationFailure naming the action:
 * non-retryable for errors no retry can fix, retryable otherwise; the type is the AWS error code.
 */
export function dmsFailure(action: string, err: unknown): ApplicationFailure {
  return awsFailure(action, err, DMS_NON_RETRYABLE);
}
