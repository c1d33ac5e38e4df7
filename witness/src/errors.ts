/**
 * Typed errors of `@keytrail/witness`, one per outcome of C2SP tlog-witness v1.0.0
 * `add-checkpoint` plus configuration and key-file problems.
 *
 * The three failure kinds stay apart (STYLE §4): a request that does not parse
 * (`ERR_WITNESS_MALFORMED`, `ERR_WITNESS_OLD_SIZE_TOO_LARGE`) is not a signature that does not
 * verify (`ERR_WITNESS_BAD_SIGNATURE`), and neither is a log that contradicts what the witness
 * already cosigned (`ERR_WITNESS_ROOT_MISMATCH`, kept with its evidence). The HTTP status of
 * each code is fixed by {@link WITNESS_ERROR_STATUS}, the one mapping the routes use.
 * @module
 */

/** Stable error codes. Callers branch on these, never on messages. */
export type WitnessErrorCode =
  | 'ERR_WITNESS_MALFORMED'
  | 'ERR_WITNESS_OLD_SIZE_TOO_LARGE'
  | 'ERR_WITNESS_BAD_SIGNATURE'
  | 'ERR_WITNESS_UNKNOWN_LOG'
  | 'ERR_WITNESS_SIZE_CONFLICT'
  | 'ERR_WITNESS_ROOT_MISMATCH'
  | 'ERR_WITNESS_PROOF_INVALID'
  | 'ERR_WITNESS_PROOF_NOT_EMPTY'
  | 'ERR_WITNESS_CONFIG'
  | 'ERR_WITNESS_KEY_FILE';

/**
 * HTTP status of every code, as C2SP tlog-witness v1.0.0 requires. `ERR_WITNESS_ROOT_MISMATCH`
 * (same size, different root) is 409 *without* the `text/x.tlog.size` body, as in v1.0.0; the
 * unreleased C2SP `main` turns it into 422.
 */
export const WITNESS_ERROR_STATUS: Readonly<Record<WitnessErrorCode, number>> = Object.freeze({
  ERR_WITNESS_MALFORMED: 400,
  ERR_WITNESS_OLD_SIZE_TOO_LARGE: 400,
  ERR_WITNESS_BAD_SIGNATURE: 403,
  ERR_WITNESS_UNKNOWN_LOG: 404,
  ERR_WITNESS_SIZE_CONFLICT: 409,
  ERR_WITNESS_ROOT_MISMATCH: 409,
  ERR_WITNESS_PROOF_INVALID: 422,
  ERR_WITNESS_PROOF_NOT_EMPTY: 422,
  ERR_WITNESS_CONFIG: 500,
  ERR_WITNESS_KEY_FILE: 500,
});

/** Base class of every error thrown by `@keytrail/witness`. */
export class WitnessError extends Error {
  readonly code: WitnessErrorCode;
  constructor(code: WitnessErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** The HTTP status for this error's code. */
  get status(): number {
    return WITNESS_ERROR_STATUS[this.code];
  }
}

/**
 * The request's old size is not the size the witness holds for the log: the client must retry
 * from {@link SizeConflictError.knownSize} (answered as 409 with a `text/x.tlog.size` body).
 */
export class SizeConflictError extends WitnessError {
  /** The size of the latest checkpoint the witness cosigned for the origin (0 if none). */
  readonly knownSize: number;
  constructor(knownSize: number) {
    super('ERR_WITNESS_SIZE_CONFLICT', 'old size does not match the latest cosigned size');
    this.knownSize = knownSize;
  }
}
