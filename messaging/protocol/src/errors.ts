/**
 * Typed errors of `@keytrail/messaging-core`.
 *
 * Four failure kinds are kept apart, as libsignal's `keytrans/src/verify.rs` keeps its own:
 * - {@link MalformedError}: bytes that do not parse (every wire format is attacker-controlled);
 * - {@link VerificationError}: a signature, an AEAD tag, a certificate or an identity binding that
 *   does not hold;
 * - {@link StateError}: input that is well formed and authentic-looking but cannot be accepted in
 *   the current protocol state (a replayed message, a skip past the bound, no session, a rate
 *   limit, a downgrade attempt);
 * - {@link InconsistencyError}: evidence that a server misbehaved (a relay served a prekey bundle
 *   that contradicts the directory). It carries the raw artifacts so they can be reported.
 *
 * Every error has a stable `code` from the closed union {@link MessagingErrorCode}. Messages never
 * contain key material, plaintext or user data.
 * @module
 */

/** Stable error codes. Callers branch on these, never on messages. */
export type MessagingErrorCode =
  // malformed input
  | 'ERR_ENCODING_MALFORMED'
  | 'ERR_ENCODING_TRAILING_BYTES'
  | 'ERR_ENCODING_TOO_LARGE'
  | 'ERR_UNSUPPORTED_VERSION'
  | 'ERR_UNEXPECTED_TYPE'
  | 'ERR_ADDRESS_INVALID'
  | 'ERR_KEY_INVALID'
  | 'ERR_KEY_NONCANONICAL'
  | 'ERR_KEY_LOW_ORDER'
  | 'ERR_KEM_UNSUPPORTED'
  | 'ERR_PADDING_INVALID'
  // failed verification
  | 'ERR_SIGNATURE_INVALID'
  | 'ERR_DECRYPTION_FAILED'
  | 'ERR_HEADER_DECRYPTION_FAILED'
  | 'ERR_UNTRUSTED_IDENTITY'
  | 'ERR_SENDER_CERTIFICATE_INVALID'
  | 'ERR_SENDER_CERTIFICATE_EXPIRED'
  | 'ERR_SENDER_NOT_IN_DIRECTORY'
  | 'ERR_SENDER_MISMATCH'
  | 'ERR_GROUP_SIGNATURE_INVALID'
  | 'ERR_ATTACHMENT_CHUNK_INVALID'
  | 'ERR_ATTACHMENT_TRUNCATED'
  | 'ERR_ATTACHMENT_TRAILING_DATA'
  | 'ERR_ATTACHMENT_DIGEST_MISMATCH'
  | 'ERR_ATTACHMENT_SIZE_MISMATCH'
  | 'ERR_RESET_INVALID'
  // protocol state
  | 'ERR_DUPLICATE_MESSAGE'
  | 'ERR_TOO_MANY_SKIPPED'
  | 'ERR_NO_SESSION'
  | 'ERR_NO_SENDING_CHAIN'
  | 'ERR_PREKEY_NOT_FOUND'
  | 'ERR_DEVICE_STALE'
  | 'ERR_DEVICE_UNKNOWN'
  | 'ERR_SESSION_DOWNGRADE'
  | 'ERR_RESET_RATE_LIMITED'
  | 'ERR_RESET_STALE'
  | 'ERR_NO_SENDER_KEY'
  | 'ERR_SENDER_KEY_EXHAUSTED'
  // evidence of server misbehaviour
  | 'ERR_BUNDLE_IDENTITY_MISMATCH';

/** Base class of every error thrown by `@keytrail/messaging-core`. */
export class MessagingError extends Error {
  /** The stable code. */
  readonly code: MessagingErrorCode;
  constructor(code: MessagingErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Input that does not parse. */
export class MalformedError extends MessagingError {}

/** A signature, AEAD tag, certificate or identity binding that does not hold. */
export class VerificationError extends MessagingError {}

/** Well-formed input that the current protocol state cannot accept. */
export class StateError extends MessagingError {}

/** Raw artifacts that prove a server misbehaved, for reporting. */
export interface InconsistencyEvidence {
  /** Wire objects involved, exactly as received. */
  readonly artifacts: readonly Uint8Array[];
  /** Anything else that makes the evidence checkable, as plain JSON-able values. */
  readonly details?: Readonly<Record<string, string | number | boolean>>;
}

/** Evidence that a server (relay or directory) served contradictory data. */
export class InconsistencyError extends MessagingError {
  /** The evidence, suitable for publishing. */
  readonly evidence: InconsistencyEvidence;
  constructor(
    code: MessagingErrorCode,
    message: string,
    evidence: InconsistencyEvidence,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.evidence = evidence;
  }
}
