/**
 * AWS SDK errors as Temporal ApplicationFailures. Whether Temporal retries an activity is decided
 * by the failure alone, so the mapping must tell faults no retry can fix (bad input, permissions,
 * quota: retrying only delays the operator by the whole retry schedule) from transient ones
 * (throttling, 5xx, eventual consistency). Every message goes through `redact`: SDK errors can
 * quote the request, and a request can hold a password.
 */
import { ApplicationFailure } from '@temporalio/common';
import { redact } from '../secrets';

/**
 * Error codes no retry can fix, each with what to check (null: the code says enough). Each service
 * module passes its own codes on top of the common ones below.
 */
export type AwsErrorCodes = Readonly<Record<string, string | null>>;

/** What every AWS service answers for invalid input and for credentials or permissions that are wrong. */
const COMMON_NON_RETRYABLE: AwsErrorCodes = {
  InvalidParameterValueException: null,
  InvalidParameterCombinationException: null,
  ValidationError: null,
  ValidationException: null,
  AccessDeniedException: "check the worker role's IAM permissions",
  AccessDenied: null,
  UnauthorizedOperation: null,
  UnrecognizedClientException: null,
  InvalidClientTokenId: null,
  InvalidSignatureException: null,
  SignatureDoesNotMatch: null,
};

/**
 * The failure type of an answer the SDK could not parse. The name dates from when only the DMS
 * method called AWS; callers that recognise an emulator's missing operation by it (and tests) must
 * keep matching.
 */
export const UNPARSEABLE_ANSWER = 'DmsUnexpectedResponse';

interface AwsErrorLike {
  name?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** The AWS error code of an SDK error (`name`), for the "already exists" / "not found" cases callers handle themselves. */
export function awsErrorName(err: unknown): string {
  return (err as AwsErrorLike)?.name ?? 'Error';
}

/**
 * Maps an SDK error to an ApplicationFailure whose message names the action and holds no secret:
 * non-retryable for the common codes and the service's `codes`, retryable otherwise. The failure's
 * type is the AWS error code, so retry policies can name them.
 */
export function awsFailure(action: string, err: unknown, codes: AwsErrorCodes = {}): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  const e = (err ?? {}) as AwsErrorLike;
  const name = awsErrorName(err);
  const status = e.$metadata?.httpStatusCode;
  const first = redact(String(e.message ?? err)).split('\n')[0];
  if (/Deserialization error/.test(String(e.message))) {
    // The SDK could not parse the answer. On AWS that would be a transient fault. moto answers an HTML
    // page with HTTP 500 for operations it does not implement.
    const html = /Unexpected token '<'/.test(first);
    return ApplicationFailure.retryable(
      `${action}: the SDK could not parse the answer${status ? ` (HTTP ${status})` : ''}: ${first}` +
        (html ? ' (an HTML page, not an AWS answer: emulators such as moto answer so for operations they do not implement)' : ''),
      UNPARSEABLE_ANSWER,
    );
  }
  // Own properties only: an error named like an Object.prototype member must not count as listed.
  const listed = [codes, COMMON_NON_RETRYABLE].find((c) => Object.hasOwn(c, name));
  const hint = listed?.[name];
  const message = `${action}: ${name}${status ? ` (HTTP ${status})` : ''}: ${first}${hint ? ` (${hint})` : ''}`;
  return listed ? ApplicationFailure.nonRetryable(message, name) : ApplicationFailure.retryable(message, name);
}

/** Runs one SDK call, turning what it throws into `toFailure`'s ApplicationFailure. */
export async function callAws<T>(
  action: string,
  fn: () => Promise<T>,
  toFailure: (action: string, err: unknown) => ApplicationFailure = awsFailure,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toFailure(action, err);
  }
}
