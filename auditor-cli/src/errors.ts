/**
 * Typed errors of `@keytrail/auditor`, and the exit codes they map to.
 *
 * Three outcomes are kept apart, as the CLI's exit codes are:
 * - a {@link Finding} (exit 1): evidence that the directory misbehaved. It is not an error of
 *   the auditor; it travels as a {@link MisbehaviourError} so that a sync stops at the first one
 *   without advancing its state past it.
 * - an {@link AuditError} of kind `usage`, `network`, `download` or `state` (exit 2): the audit
 *   could not be carried out, nothing is claimed about the directory.
 *
 * Messages never contain key material; they name epochs, sizes and checks.
 * @module
 */
import type { Finding } from './findings.ts';

/** Stable error codes of the auditor. */
export type AuditErrorCode =
  | 'ERR_AUDIT_USAGE'
  | 'ERR_AUDIT_TRUST_FILE'
  | 'ERR_AUDIT_NOT_INITIALISED'
  | 'ERR_AUDIT_STATE_LOCKED'
  | 'ERR_AUDIT_STATE_CORRUPT'
  | 'ERR_AUDIT_NETWORK'
  | 'ERR_AUDIT_HTTP_STATUS'
  | 'ERR_AUDIT_DOWNLOAD_TRUNCATED'
  | 'ERR_AUDIT_DOWNLOAD_MALFORMED'
  | 'ERR_AUDIT_EVIDENCE_MALFORMED'
  | 'ERR_AUDIT_INTERRUPTED'
  | 'ERR_AUDIT_CLIENT_UNAVAILABLE';

/** Why an audit could not be carried out (all map to exit code 2). */
export type AuditErrorKind = 'usage' | 'network' | 'download' | 'state';

const KIND: Readonly<Record<AuditErrorCode, AuditErrorKind>> = {
  ERR_AUDIT_USAGE: 'usage',
  ERR_AUDIT_TRUST_FILE: 'usage',
  ERR_AUDIT_NOT_INITIALISED: 'usage',
  ERR_AUDIT_EVIDENCE_MALFORMED: 'usage',
  ERR_AUDIT_CLIENT_UNAVAILABLE: 'usage',
  ERR_AUDIT_STATE_LOCKED: 'state',
  ERR_AUDIT_STATE_CORRUPT: 'state',
  ERR_AUDIT_INTERRUPTED: 'state',
  ERR_AUDIT_NETWORK: 'network',
  ERR_AUDIT_HTTP_STATUS: 'network',
  ERR_AUDIT_DOWNLOAD_TRUNCATED: 'download',
  ERR_AUDIT_DOWNLOAD_MALFORMED: 'download',
};

/** Base class of every error thrown by `@keytrail/auditor`. */
export class AuditError extends Error {
  readonly code: AuditErrorCode;
  constructor(code: AuditErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** What went wrong, coarsely: usage, network, download or local state. */
  get kind(): AuditErrorKind {
    return KIND[this.code];
  }
}

/**
 * Misbehaviour found: carries the {@link Finding} (check, epoch, evidence file). Thrown by the
 * sync engine so that it stops at the first finding with its state untouched past it.
 */
export class MisbehaviourError extends Error {
  readonly finding: Finding;
  constructor(finding: Finding) {
    super(finding.message);
    this.name = 'MisbehaviourError';
    this.finding = finding;
  }
}

/** Process exit codes: everything holds, misbehaviour found, could not audit. */
export const EXIT_OK = 0;
/** Exit code when misbehaviour is found. */
export const EXIT_MISBEHAVIOUR = 1;
/** Exit code for usage, network, download or local-state errors. */
export const EXIT_ERROR = 2;
