/**
 * Accepting a directory checkpoint under a trust policy: C2SP signed-note v1.0.0 (the
 * directory's Ed25519 signature), C2SP tlog-checkpoint v1.0.0 (the body and origin), C2SP
 * tlog-cosignature v1.0.1 (`cosignature/v1` from a quorum of trusted witnesses, no older than
 * the maximum age).
 *
 * Verification is staged so that a failure names the check at fault: the directory's own
 * signature first, then the origin, then the witnesses.
 * @module
 */
import { checkpoint, cosignature, note, KtError } from '@keytrail/core';
import type { CheckName } from './findings.ts';
import type { TrustPolicy } from './trust.ts';

/** A checkpoint accepted under the policy. */
export interface AcceptedCheckpoint {
  readonly note: string;
  readonly checkpoint: checkpoint.Checkpoint;
  /** The trusted witnesses whose cosignatures verified, with their timestamps (seconds). */
  readonly cosigners: readonly { name: string; keyId: number; timestamp: number }[];
}

/** Why a checkpoint was not accepted. */
export interface CheckpointProblem {
  readonly check: CheckName;
  readonly message: string;
  /** The core error code behind it, if any. */
  readonly code?: string;
}

/** Result of {@link checkDirectoryCheckpoint}. */
export type CheckpointVerdict =
  | { readonly ok: true; readonly accepted: AcceptedCheckpoint }
  | { readonly ok: false; readonly problem: CheckpointProblem };

function codeOf(e: unknown): string {
  return e instanceof KtError ? e.code : e instanceof Error ? e.name : 'error';
}

/**
 * Checks a checkpoint note against the policy at time `nowSeconds`.
 * @param nowSeconds current POSIX time, for the maximum-age check.
 */
export function checkDirectoryCheckpoint(
  noteText: string,
  policy: TrustPolicy,
  nowSeconds: number,
): CheckpointVerdict {
  const fail = (check: CheckName, message: string, e?: unknown): CheckpointVerdict => ({
    ok: false,
    problem: e === undefined ? { check, message } : { check, message, code: codeOf(e) },
  });
  let opened: note.OpenedNote;
  try {
    opened = note.open(noteText, [policy.log]);
  } catch (e) {
    return fail(
      'checkpoint-signature',
      `the checkpoint does not verify under the directory key (${codeOf(e)})`,
      e,
    );
  }
  let body: checkpoint.Checkpoint;
  try {
    body = checkpoint.parse(opened.text);
  } catch (e) {
    return fail(
      'checkpoint-signature',
      `the signed checkpoint body is malformed (${codeOf(e)})`,
      e,
    );
  }
  if (body.origin !== policy.config.origin) {
    return fail(
      'checkpoint-origin',
      `the checkpoint's origin is ${JSON.stringify(body.origin)}, expected ${JSON.stringify(policy.config.origin)}`,
    );
  }
  try {
    const r = cosignature.verifyCheckpoint(noteText, {
      log: [policy.log],
      witnesses: [...policy.witnesses],
      quorum: policy.config.quorum,
      maxAgeSeconds: policy.config.maxAgeSeconds,
      now: nowSeconds,
    });
    return {
      ok: true,
      accepted: { note: noteText, checkpoint: r.checkpoint, cosigners: r.cosigners },
    };
  } catch (e) {
    const code = codeOf(e);
    if (code === 'ERR_COSIGNATURE_QUORUM') {
      return fail(
        'witness-quorum',
        `fewer than ${policy.config.quorum} trusted witnesses cosigned the checkpoint`,
        e,
      );
    }
    if (code === 'ERR_COSIGNATURE_STALE') {
      return fail(
        'checkpoint-stale',
        `the witness quorum's newest cosignature is older than ${policy.config.maxAgeSeconds} s`,
        e,
      );
    }
    return fail(
      'witness-cosignature-invalid',
      `a trusted witness's cosignature does not verify (${code})`,
      e,
    );
  }
}
