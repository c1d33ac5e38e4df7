/**
 * Verifying any C2SP checkpoint, from Keytrail or another log (sum.golang.org, Sigsum, Tessera
 * logs, the Pixel binary-transparency log with its Armored Witness cosigners): C2SP
 * signed-note v1.0.0, tlog-checkpoint v1.0.0 and tlog-cosignature v1.0.1.
 *
 * Log keys may be Ed25519 (type 0x01) or, for logs that predate it such as the Pixel log, ECDSA
 * P-256 with SHA-256 (type 0x02 as transparency-dev/witness defines it: a DER signature over the
 * note text, key ID = SHA-256(DER SPKI)[:4]), verified with `node:crypto`. Witness keys are
 * `cosignature/v1` (type 0x04) vkeys; an Ed25519 (0x01) vkey given as a witness is converted,
 * since witnesses such as the Armored Witness publish their key as 0x01 while their
 * cosignature lines carry the 0x04 key ID of the same key.
 * @module
 */
import { createHash, createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { bytes, checkpoint, cosignature, note } from '@keytrail/core';
import { AuditError } from './errors.ts';

/** Signature type of ECDSA P-256/SHA-256 note signatures (transparency-dev/witness). */
export const ECDSA_P256_TYPE = 0x02;

/** What a checkpoint must satisfy. */
export interface AnyCheckpointPolicy {
  /** Log verifier keys (0x01 or 0x02); at least one must have signed. */
  readonly keys: readonly string[];
  /** Witness verifier keys (0x04, or 0x01 converted). */
  readonly witnesses?: readonly string[];
  /** Witnesses needed (default: all of them). */
  readonly quorum?: number;
  /** Maximum age of the quorum's cosignatures, in seconds (needs `now`). */
  readonly maxAgeSeconds?: number;
  /** Current POSIX time in seconds. */
  readonly now?: number;
}

/** A verified checkpoint. */
export interface AnyCheckpointResult {
  readonly origin: string;
  readonly size: number;
  readonly root: string;
  readonly extensions: readonly string[];
  /** Log keys whose signatures verified. */
  readonly signedBy: readonly { readonly name: string; readonly keyId: string }[];
  /** Witnesses counted towards the quorum. */
  readonly cosigners: readonly {
    readonly name: string;
    readonly keyId: string;
    readonly timestamp: number;
  }[];
  /** Signature lines from keys not given (ignored, as signed-note requires). */
  readonly ignored: number;
  /** Notes about key conversions made. */
  readonly notes: readonly string[];
}

function usage(message: string, cause?: unknown): AuditError {
  return new AuditError('ERR_AUDIT_USAGE', message, { cause });
}

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

/** Splits a vkey into name, key ID and `type || key`, without checking the key ID. */
function splitVkey(vkey: string): { name: string; id: number; raw: Uint8Array } {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey);
  if (!m) throw usage(`malformed verifier key: ${vkey}`);
  let raw: Uint8Array;
  try {
    raw = bytes.fromBase64(m[3] as string);
  } catch (e) {
    throw usage(`malformed verifier key: ${vkey}`, e);
  }
  if (raw.length < 2) throw usage(`malformed verifier key: ${vkey}`);
  return { name: m[1] as string, id: parseInt(m[2] as string, 16), raw };
}

/** An ECDSA P-256/SHA-256 note verifier for a 0x02 vkey. */
function ecdsaVerifier(name: string, id: number, spki: Uint8Array): note.Verifier {
  const expected = new DataView(createHash('sha256').update(spki).digest().buffer).getUint32(0);
  if (expected !== id) throw usage(`verifier key ${name}: key ID is not SHA-256(SPKI)[:4]`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (e) {
    throw usage(`verifier key ${name}: not a DER SubjectPublicKeyInfo`, e);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw usage(`verifier key ${name}: not an ECDSA P-256 key`);
  }
  return {
    name,
    keyId: id,
    verify(msg: Uint8Array, sig: Uint8Array): boolean {
      try {
        return nodeVerify('sha256', msg, { key, dsaEncoding: 'der' }, sig);
      } catch {
        return false;
      }
    },
  };
}

/**
 * Parses a log verifier key (type 0x01 or 0x02).
 * @throws AuditError `ERR_AUDIT_USAGE`
 */
export function parseLogKey(vkey: string): note.Verifier {
  const { name, id, raw } = splitVkey(vkey);
  if (raw[0] === ECDSA_P256_TYPE) return ecdsaVerifier(name, id, raw.subarray(1));
  try {
    return note.parseVerifierKey(vkey);
  } catch (e) {
    throw usage(
      `unsupported or invalid log key ${name} (${(e as { code?: string }).code ?? 'error'})`,
      e,
    );
  }
}

/**
 * Parses a witness key: a 0x04 vkey, or a 0x01 vkey converted to its 0x04 counterpart.
 * @throws AuditError `ERR_AUDIT_USAGE`
 */
export function parseWitnessKey(vkey: string): {
  verifier: cosignature.CosignatureVerifier;
  converted: boolean;
} {
  const { name, raw } = splitVkey(vkey);
  try {
    if (raw[0] === 0x01) {
      const v = note.parseVerifierKey(vkey);
      return { verifier: cosignature.verifier(name, v.publicKey), converted: true };
    }
    return { verifier: cosignature.parseVerifierKey(vkey), converted: false };
  } catch (e) {
    throw usage(`invalid witness key ${name} (${(e as { code?: string }).code ?? 'error'})`, e);
  }
}

/**
 * Verifies a checkpoint note against log keys and, optionally, a witness quorum.
 * @throws KtError when the note does not verify (`ERR_NOTE_*`, `ERR_CHECKPOINT_MALFORMED`,
 *   `ERR_COSIGNATURE_*`).
 * @throws AuditError `ERR_AUDIT_USAGE` for unusable keys or options.
 */
export function verifyAnyCheckpoint(
  noteText: string,
  policy: AnyCheckpointPolicy,
): AnyCheckpointResult {
  if (policy.keys.length === 0) throw usage('give at least one --key');
  const log = policy.keys.map(parseLogKey);
  const conversions: string[] = [];
  const witnesses = (policy.witnesses ?? []).map((w) => {
    const { verifier, converted } = parseWitnessKey(w);
    if (converted) {
      conversions.push(
        `witness ${verifier.name}: using cosignature/v1 key ID ${hex8(verifier.keyId)} of the Ed25519 key given`,
      );
    }
    return verifier;
  });
  const quorum = policy.quorum ?? witnesses.length;
  if (!Number.isInteger(quorum) || quorum < 0 || quorum > witnesses.length) {
    throw usage(`--quorum must be between 0 and the ${witnesses.length} witnesses given`);
  }
  if (policy.maxAgeSeconds !== undefined && policy.now === undefined) {
    throw usage('--max-age needs the current time');
  }
  const opened = note.open(noteText, [...log, ...witnesses]);
  const body = checkpoint.parse(opened.text);
  const signedBy = log
    .filter((v) => opened.verified.some((s) => s.name === v.name && s.keyId === v.keyId))
    .map((v) => ({ name: v.name, keyId: hex8(v.keyId) }));
  let cosigners: AnyCheckpointResult['cosigners'] = [];
  if (witnesses.length > 0) {
    const r = cosignature.verifyCheckpoint(noteText, {
      log,
      witnesses,
      quorum,
      ...(policy.maxAgeSeconds !== undefined ? { maxAgeSeconds: policy.maxAgeSeconds } : {}),
      ...(policy.now !== undefined ? { now: policy.now } : {}),
    });
    cosigners = r.cosigners.map((c) => ({
      name: c.name,
      keyId: hex8(c.keyId),
      timestamp: c.timestamp,
    }));
  } else if (signedBy.length === 0) {
    // note.open accepted a witness line only; with no witnesses given this cannot happen.
    throw usage('no log key signed the checkpoint');
  }
  return {
    origin: body.origin,
    size: body.size,
    root: bytes.toBase64(body.root),
    extensions: body.extensions,
    signedBy,
    cosigners,
    ignored: opened.unverified.length,
    notes: conversions,
  };
}
