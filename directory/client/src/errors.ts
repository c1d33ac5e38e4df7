/**
 * Typed errors of `@keytrail/client`, kept apart as the style guide asks (libsignal
 * `keytrans/src/verify.rs`): a response that does not parse ({@link MalformedResponseError}),
 * a proof or signature that does not hold ({@link ProofError}), evidence that the directory
 * misbehaved ({@link InconsistencyDetectedError}, carrying the raw artifacts), and transport or
 * service answers ({@link ServiceError}). Every error has a stable code from the closed union
 * {@link ClientErrorCode}; `cause` keeps the `@keytrail/core` error underneath, if any.
 * @module
 */

/** Stable error codes. Callers branch on these, never on messages. */
export type ClientErrorCode =
  // transport and service
  | 'ERR_TRANSPORT'
  | 'ERR_SERVICE'
  // malformed response
  | 'ERR_RESPONSE_MALFORMED'
  | 'ERR_VALUE_MALFORMED'
  // failed verification
  | 'ERR_CHECKPOINT_SIGNATURE'
  | 'ERR_CHECKPOINT_QUORUM'
  | 'ERR_CHECKPOINT_STALE'
  | 'ERR_LOG_INCLUSION'
  | 'ERR_VRF_PROOF'
  | 'ERR_PREFIX_PROOF'
  | 'ERR_LADDER'
  // evidence of misbehaviour
  | 'ERR_LOG_ROLLBACK'
  | 'ERR_LOG_INCONSISTENT'
  | 'ERR_VERSION_ROLLBACK'
  // a verified answer that is not a device list
  | 'ERR_ACCOUNT_NOT_FOUND';

/** Base class of every error thrown by `@keytrail/client`. */
export class ClientError extends Error {
  readonly code: ClientErrorCode;
  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The network failed, or the directory answered with an unexpected status. */
export class ServiceError extends ClientError {
  /** HTTP status, 0 when no answer arrived. */
  readonly status: number;
  /** The directory's `code` from its error body, when there was one. */
  readonly serviceCode: string | undefined;
  constructor(
    code: 'ERR_TRANSPORT' | 'ERR_SERVICE',
    message: string,
    status: number,
    serviceCode?: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.status = status;
    this.serviceCode = serviceCode;
  }
}

/** A response that does not parse. */
export class MalformedResponseError extends ClientError {}

/** A proof or signature that does not hold. */
export class ProofError extends ClientError {}

/** A verified statement that the account has no published device list. */
export class AccountNotFoundError extends ClientError {
  constructor(message = 'the directory proved that the account has no published device list') {
    super('ERR_ACCOUNT_NOT_FOUND', message);
  }
}

/** Raw signed artifacts proving misbehaviour, exactly as received, for publication. */
export interface ClientEvidence {
  /** Checkpoint notes involved. */
  readonly notes: readonly string[];
  /** Proof hashes involved. */
  readonly proof?: readonly Uint8Array[];
  /** Anything else that makes the evidence checkable. */
  readonly details?: Readonly<Record<string, string | number>>;
}

/** Evidence that the directory misbehaved: a rolled-back or forked log, a rolled-back account. */
export class InconsistencyDetectedError extends ClientError {
  readonly evidence: ClientEvidence;
  constructor(
    code: 'ERR_LOG_ROLLBACK' | 'ERR_LOG_INCONSISTENT' | 'ERR_VERSION_ROLLBACK',
    message: string,
    evidence: ClientEvidence,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.evidence = evidence;
  }
}
