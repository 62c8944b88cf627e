/**
 * Failure types the activities report as *retryable* although a quick retry seldom helps: the
 * database refused the credentials or the login, its host name does not resolve, a secret reference
 * resolves to nothing (or not to a URL) on this worker. Whether they are retried is the caller's
 * decision, made in one place, its retry policy:
 *
 * - forward steps list them in `retry.nonRetryableErrorTypes`: fail at once, then compensate;
 * - undos do not: a rollback that gives up leaves the world half-changed (a target left with 11
 *   tables), while a password rotated back, a pg_hba entry or a DNS record restored, or a worker that
 *   has the secret lets it finish. The undo profile's attempts bound how long it keeps trying.
 *
 * Preflight checks its connections itself (`unreachableForMs`) and fails for good at once on these.
 */
export const ACCESS_FAILURE_TYPES = ['ConnectionRejected', 'HostNotFound', 'SecretNotFound', 'SecretNotUrl'];
