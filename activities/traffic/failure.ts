/**
 * Route 53's own failures: input refused before AWS is called, and the Route 53 error codes no
 * retry can fix (on top of the ones every AWS service shares, see aws/failure.ts).
 */
import { ApplicationFailure } from '@temporalio/common';
import { awsFailure, type AwsErrorCodes } from '../aws/failure';
import { redact } from '../secrets';

/** Input no retry can fix, refused before anything is changed. */
export function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(redact(message), 'Route53InvalidInput');
}

/** Route 53 error codes no retry can fix, with what to check. */
const ROUTE53_NON_RETRYABLE: AwsErrorCodes = {
  NoSuchHostedZone:
    "check hostedZoneId (the zone ID such as Z0123456789ABC, not its name) and that the worker's credentials belong to the account that owns the zone",
  NoSuchHealthCheck: 'check the health check id',
  InvalidChangeBatch: 'the change batch was refused as a whole; nothing was changed',
  InvalidInput: 'a parameter is malformed',
  InvalidArgument: 'a parameter is malformed',
  InvalidDomainName: 'check recordName',
  NoSuchChange: 'the change id is unknown (Route 53 keeps change ids for a limited time)',
};

/**
 * An SDK error of a Route 53 call as an ApplicationFailure naming the action: the Route 53 codes
 * above and the common ones (access denied, validation) are non-retryable with a hint; throttling,
 * `PriorRequestNotComplete` and 5xx are retryable. The type is the AWS error code.
 */
export function route53Failure(action: string, err: unknown): ApplicationFailure {
  return awsFailure(action, err, ROUTE53_NON_RETRYABLE);
}
