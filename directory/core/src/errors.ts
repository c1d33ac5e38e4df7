/**
 * Typed errors of `@keytrail/core`.
 *
 * Three failure kinds are kept apart, as libsignal's `keytrans/src/verify.rs` does:
 * - {@link MalformedError}: input that does not parse (attacker-controlled bytes or text);
 * - {@link VerificationError}: a proof or signature that does not hold;
 * - {@link InconsistencyError}: evidence that a log misbehaved. It carries the raw signed
 *   artifacts and the proof, so that an auditor can publish them.
 *
 * Every error has a stable `code` from the closed union {@link KtErrorCode}. Messages never
 * contain key material or user data.
 * @module
 */

/** Stable error codes. Callers branch on these, never on messages. */
export type KtErrorCode =
  // malformed input
  | 'ERR_ENCODING_MALFORMED'
  | 'ERR_ENCODING_TRAILING_BYTES'
  | 'ERR_ENCODING_TOO_LARGE'
  | 'ERR_BASE64_MALFORMED'
  | 'ERR_HEX_MALFORMED'
  | 'ERR_UTF8_MALFORMED'
  | 'ERR_NOTE_MALFORMED'
  | 'ERR_NOTE_TOO_LARGE'
  | 'ERR_NOTE_TOO_MANY_SIGNATURES'
  | 'ERR_VKEY_MALFORMED'
  | 'ERR_VKEY_UNSUPPORTED_TYPE'
  | 'ERR_CHECKPOINT_MALFORMED'
  | 'ERR_COSIGNATURE_MALFORMED'
  | 'ERR_PROOF_MALFORMED'
  | 'ERR_VRF_MALFORMED'
  | 'ERR_PREFIX_TREE_MALFORMED'
  | 'ERR_COMMITMENT_MALFORMED'
  | 'ERR_EPOCH_RECORD_MALFORMED'
  // failed verification
  | 'ERR_NOTE_NO_VERIFIED_SIGNATURE'
  | 'ERR_NOTE_INVALID_SIGNATURE'
  | 'ERR_NOTE_AMBIGUOUS_KEY'
  | 'ERR_COSIGNATURE_INVALID'
  | 'ERR_COSIGNATURE_QUORUM'
  | 'ERR_COSIGNATURE_STALE'
  | 'ERR_COSIGNATURE_FUTURE'
  | 'ERR_INCLUSION_PROOF_INVALID'
  | 'ERR_CONSISTENCY_PROOF_INVALID'
  | 'ERR_VRF_INVALID'
  | 'ERR_PREFIX_PROOF_INVALID'
  | 'ERR_COMMITMENT_INVALID'
  // state conflicts (the operation would break an invariant; thrown as plain KtError)
  | 'ERR_PREFIX_TREE_DUPLICATE_KEY'
  // evidence of misbehaviour
  | 'ERR_LOG_INCONSISTENT'
  | 'ERR_LOG_ROLLBACK'
  | 'ERR_LOG_FORK';

/** Base class of every error thrown by `@keytrail/core`. */
export class KtError extends Error {
  readonly code: KtErrorCode;
  constructor(code: KtErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Input that does not parse. */
export class MalformedError extends KtError {}

/** A proof or signature that does not hold. */
export class VerificationError extends KtError {}

/** Raw artifacts that prove misbehaviour, published by auditors and witnesses. */
export interface InconsistencyEvidence {
  /** Signed notes (checkpoints) involved, exactly as received. */
  readonly notes?: readonly string[];
  /** Proof hashes involved, exactly as received. */
  readonly proof?: readonly Uint8Array[];
  /** Anything else that makes the evidence checkable, as plain JSON-able values. */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

/** Evidence that a log misbehaved (a fork, a rollback, an inconsistent history). */
export class InconsistencyError extends KtError {
  readonly evidence: InconsistencyEvidence;
  constructor(
    code: KtErrorCode,
    message: string,
    evidence: InconsistencyEvidence,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.evidence = evidence;
  }
}
