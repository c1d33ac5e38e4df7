/**
 * The checks an audit runs and the findings it reports when one fails.
 *
 * Every check has a stable kebab-case name, a one-line description, and whether a failure is
 * *attributable*: whether the saved evidence is signed by the directory (a checkpoint note, and
 * epoch records or inserts bound to it by inclusion proofs and the record's inserts digest), so
 * that anyone holding the directory's verifier key can convince themselves the directory
 * misbehaved. Non-attributable findings record what the directory served, which an honest
 * directory never serves, but which carries no signature of its own.
 *
 * The checks follow ARCHITECTURE.md §Protocol 9 (audit), the AKD lesson of akd PR #495 (replay
 * every batch, never accept an existing leaf changed or a label inserted twice) and C2SP
 * tlog-checkpoint / tlog-cosignature for checkpoint acceptance.
 * @module
 */

/** Names of the checks. Findings and evidence files carry one. */
export type CheckName =
  | 'checkpoint-signature'
  | 'checkpoint-origin'
  | 'witness-cosignature-invalid'
  | 'witness-quorum'
  | 'checkpoint-stale'
  | 'checkpoint-fork'
  | 'checkpoint-rollback'
  | 'log-consistency'
  | 'log-leaves-mismatch'
  | 'epoch-record-malformed'
  | 'epoch-order'
  | 'timestamp-backwards'
  | 'cosignature-timestamp-backwards'
  | 'insert-count-mismatch'
  | 'inserts-digest-mismatch'
  | 'inserts-unsorted'
  | 'duplicate-label'
  | 'leaf-rewritten'
  | 'prefix-root-mismatch';

/** What each check establishes, and whether its evidence is signed by the directory. */
export const CHECKS: Readonly<
  Record<CheckName, { readonly what: string; readonly attributable: boolean }>
> = {
  'checkpoint-signature': {
    what: 'the checkpoint carries a valid signature from the directory key',
    attributable: false,
  },
  'checkpoint-origin': {
    what: "the checkpoint's origin is the directory's origin",
    attributable: true,
  },
  'witness-cosignature-invalid': {
    what: 'every cosignature from a trusted witness verifies',
    attributable: false,
  },
  'witness-quorum': {
    what: 'a quorum of trusted witnesses cosigned the checkpoint',
    attributable: false,
  },
  'checkpoint-stale': {
    what: 'the quorum cosigned the checkpoint within the maximum age',
    attributable: false,
  },
  'checkpoint-fork': {
    what: 'no two signed checkpoints of the same size have different roots',
    attributable: true,
  },
  'checkpoint-rollback': {
    what: 'the checkpoint is not smaller than one accepted before',
    attributable: true,
  },
  'log-consistency': {
    what: 'the checkpoint is consistent with every checkpoint accepted before',
    attributable: false,
  },
  'log-leaves-mismatch': {
    what: 'the epoch records served hash to the signed checkpoint root',
    attributable: false,
  },
  'epoch-record-malformed': {
    what: 'every epoch record in the signed log decodes',
    attributable: true,
  },
  'epoch-order': {
    what: 'leaf i of the epoch log is the record of epoch i',
    attributable: true,
  },
  'timestamp-backwards': {
    what: 'epoch timestamps never go backwards',
    attributable: true,
  },
  'cosignature-timestamp-backwards': {
    what: "a witness's cosignature timestamps never go backwards as the log grows",
    attributable: false,
  },
  'insert-count-mismatch': {
    what: "the inserts served for an epoch are as many as its record's insert_count",
    attributable: false,
  },
  'inserts-digest-mismatch': {
    what: "the inserts served for an epoch hash to its record's inserts_digest",
    attributable: false,
  },
  'inserts-unsorted': {
    what: 'the inserts served for an epoch are sorted by label',
    attributable: false,
  },
  'duplicate-label': {
    what: 'no label is inserted twice',
    attributable: true,
  },
  'leaf-rewritten': {
    what: 'no batch changes an existing leaf (the akd #495 batch-insertion bypass)',
    attributable: true,
  },
  'prefix-root-mismatch': {
    what: "an epoch's inserts replayed into the previous tree give its committed prefix root",
    attributable: true,
  },
};

/** One piece of misbehaviour found by the auditor. */
export interface Finding {
  /** The check that failed. */
  readonly check: CheckName;
  /** The epoch it concerns, or null for checkpoint-level findings. */
  readonly epoch: number | null;
  /** A human-readable explanation naming what was expected and what was seen. */
  readonly message: string;
  /** Path of the saved evidence file (re-check with `keytrail-audit verify-evidence`). */
  readonly evidenceFile: string;
}
