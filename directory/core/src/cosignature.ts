/**
 * Witness cosignatures, C2SP tlog-cosignature v1.0.1 (`c2sp.org/tlog-cosignature@v1.0.1`),
 * Ed25519 `cosignature/v1`, signature type 0x04 — plus a witness policy check.
 *
 * - Key ID: `SHA-256(name || 0x0A || 0x04 || 32-byte Ed25519 public key)[:4]`, computed by the
 *   verifier itself: a witness may publish the same key as a 0x01 vkey with another ID.
 * - Signed message: `"cosignature/v1\n" || "time " || decimal(timestamp) || "\n" ||` the whole
 *   checkpoint text (extension lines included). The cosigner's name is not signed.
 * - Signature bytes on the note line: key ID (4) || u64 big-endian timestamp (8) || Ed25519
 *   signature (64) = 76 bytes; {@link NoteSignature.signature} holds the last 72.
 * - Timestamps are POSIX seconds, at most 2^63 − 1 by the specification; this implementation
 *   handles up to 2^53 − 1 (about 285 million years from now) and treats anything larger as
 *   a signature that does not verify.
 *
 * A {@link CosignatureVerifier} is a `note.Verifier`, so witness keys can be passed straight to
 * `note.open` next to the log's key; {@link verifyCheckpoint} does exactly that and then applies
 * the policy (log signature, k of n fresh cosignatures). Time is passed in (`now`); the module
 * has no clock.
 * @module
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { toBase64, utf8 } from './bytes.ts';
import { parse as parseCheckpoint, type Checkpoint } from './checkpoint.ts';
import { ed25519Verify } from './crypto.ts';
import { MalformedError, VerificationError } from './errors.ts';
import {
  open,
  type Ed25519SignFn,
  type NoteSignature,
  type Signer,
  type Verifier,
} from './signed-note.ts';
import { hex8, keyId as noteKeyId, parseKeyString, readU32 } from './signed-note-keys.ts';

/** Signature type byte of `cosignature/v1` Ed25519 cosignatures. */
export const COSIGNATURE_V1_TYPE = 0x04;
/** Length of {@link NoteSignature.signature} for a cosignature: timestamp (8) + Ed25519 (64). */
export const COSIGNATURE_V1_SIGNATURE_SIZE = 72;
/** How far in the future a cosignature timestamp may lie by default in {@link verifyCheckpoint}. */
export const DEFAULT_MAX_FUTURE_SKEW_SECONDS = 60;

/** A witness's cosignature verifier (a `note.Verifier` for its type-0x04 key). */
export interface CosignatureVerifier extends Verifier {
  readonly type: typeof COSIGNATURE_V1_TYPE;
  /** The 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
}

/** A witness policy for {@link verifyCheckpoint}. */
export interface CosignaturePolicy {
  /** The log's keys; at least one must have signed. */
  log: readonly Verifier[];
  /** The witnesses; `quorum` of them (distinct public keys) must have cosigned. */
  witnesses: readonly CosignatureVerifier[];
  /** How many witnesses must have cosigned, 0 ≤ quorum ≤ witnesses.length. */
  quorum: number;
  /** Cosignatures older than this (relative to `now`) do not count. Requires `now`. */
  maxAgeSeconds?: number;
  /** The current POSIX time in seconds; enables the freshness and future checks. */
  now?: number;
  /** Cosignatures more than this far after `now` do not count (default 60 s). */
  maxFutureSkewSeconds?: number;
}

/** One witness counted towards the quorum. */
export interface Cosigner {
  name: string;
  keyId: number;
  /** POSIX seconds. */
  timestamp: number;
}

/**
 * The `cosignature/v1` key ID of a witness key.
 * @throws TypeError if `name` is not a valid key name.
 */
export function keyId(name: string, publicKey: Uint8Array): number {
  return noteKeyId(name, COSIGNATURE_V1_TYPE, publicKey);
}

/**
 * Formats a witness's type-0x04 verifier key, `<name>+<hex key ID>+<base64(0x04 || key)>`.
 * @throws TypeError if `name` is not a valid key name.
 */
export function formatVerifierKey(name: string, publicKey: Uint8Array): string {
  const raw = new Uint8Array(1 + publicKey.length);
  raw[0] = COSIGNATURE_V1_TYPE;
  raw.set(publicKey, 1);
  return `${name}+${hex8(keyId(name, publicKey))}+${toBase64(raw)}`;
}

/**
 * Parses a witness's type-0x04 verifier key.
 * @throws MalformedError `ERR_VKEY_MALFORMED` (syntax, key ID mismatch, not 32 bytes),
 *   `ERR_VKEY_UNSUPPORTED_TYPE` (any type but 0x04).
 */
export function parseVerifierKey(vkey: string): CosignatureVerifier {
  const { name, key } = parseKeyString(vkey, COSIGNATURE_V1_TYPE, 32);
  return verifier(name, key);
}

function readTimestamp(sig: Uint8Array): number | undefined {
  const hi = readU32(sig);
  // hi ≥ 2^21 means ≥ 2^53: beyond what a number holds exactly (and beyond 2^63 − 1 if ≥ 2^31).
  if (hi >= 0x20_0000) return undefined;
  return hi * 0x1_0000_0000 + readU32(sig.subarray(4, 8));
}

function timestampBytes(timestamp: number): Uint8Array {
  const out = new Uint8Array(8);
  const hi = Math.floor(timestamp / 0x1_0000_0000);
  const lo = timestamp % 0x1_0000_0000;
  out.set([hi >>> 24, (hi >>> 16) & 0xff, (hi >>> 8) & 0xff, hi & 0xff], 0);
  out.set([lo >>> 24, (lo >>> 16) & 0xff, (lo >>> 8) & 0xff, lo & 0xff], 4);
  return out;
}

function messageBytes(checkpointBody: Uint8Array, timestamp: number): Uint8Array {
  const header = utf8(`cosignature/v1\ntime ${timestamp}\n`);
  const out = new Uint8Array(header.length + checkpointBody.length);
  out.set(header, 0);
  out.set(checkpointBody, header.length);
  return out;
}

function checkTimestamp(timestamp: number): void {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new RangeError('cosignature: timestamp must be a non-negative safe integer');
  }
}

/**
 * A witness verifier for a raw 32-byte Ed25519 public key (Sigsum identifies witnesses by key).
 * @throws TypeError for an invalid name; RangeError if the key is not 32 bytes.
 */
export function verifier(name: string, publicKey: Uint8Array): CosignatureVerifier {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new RangeError('cosignature verifier: public key must be 32 bytes');
  }
  const key = publicKey.slice();
  return {
    name,
    keyId: keyId(name, key),
    type: COSIGNATURE_V1_TYPE,
    publicKey: key,
    verify(msg: Uint8Array, sig: Uint8Array): boolean {
      if (sig.length !== COSIGNATURE_V1_SIGNATURE_SIZE) return false;
      const timestamp = readTimestamp(sig);
      if (timestamp === undefined) return false;
      return ed25519Verify(sig.subarray(8), messageBytes(msg, timestamp), key);
    },
  };
}

/**
 * The `cosignature/v1` signed message for a checkpoint body (with its final newline) at
 * `timestamp` POSIX seconds.
 * @throws RangeError if the timestamp is not a non-negative safe integer.
 */
export function message(checkpointText: string, timestamp: number): Uint8Array {
  checkTimestamp(timestamp);
  return messageBytes(utf8(checkpointText), timestamp);
}

/**
 * A witness signer: Ed25519 over raw messages, with the type-0x04 key ID. Pass it to
 * {@link sign}, not to `note.sign` (which would sign the bare checkpoint).
 * @param signFn Ed25519 signing function; defaults to `@noble/curves`.
 * @throws TypeError for an invalid name; RangeError if the secret key is not 32 bytes.
 */
export function ed25519Signer(
  name: string,
  secretKey: Uint8Array,
  signFn: Ed25519SignFn = (m, k) => ed25519.sign(m, k),
): Signer & { publicKey: Uint8Array } {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) {
    throw new RangeError('cosignature signer: secret key must be 32 bytes');
  }
  const seed = secretKey.slice();
  const publicKey = ed25519.getPublicKey(seed);
  return {
    name,
    keyId: keyId(name, publicKey),
    publicKey,
    sign: (msg: Uint8Array): Uint8Array => signFn(msg, seed),
  };
}

/**
 * Cosigns a checkpoint body at `timestamp`. The result's `signature` is timestamp (8) || Ed25519
 * signature (64); add it to the note with `note.addSignatures`.
 * @throws MalformedError `ERR_CHECKPOINT_MALFORMED` if the text is not a checkpoint.
 * @throws RangeError for a bad timestamp or a signer that does not return 64 bytes.
 * @example
 * ```ts
 * const witness = cosignature.ed25519Signer('example.com/witness', seed);
 * const sig = cosignature.sign(checkpointText, Math.floor(Date.now() / 1000), witness);
 * const cosigned = note.addSignatures(signedCheckpoint, [sig]);
 * ```
 */
export function sign(checkpointText: string, timestamp: number, signer: Signer): NoteSignature {
  parseCheckpoint(checkpointText);
  const sig = signer.sign(message(checkpointText, timestamp));
  if (sig.length !== 64) throw new RangeError('cosignature signer must return 64 bytes');
  const signature = new Uint8Array(COSIGNATURE_V1_SIGNATURE_SIZE);
  signature.set(timestampBytes(timestamp), 0);
  signature.set(sig, 8);
  return { name: signer.name, keyId: signer.keyId, signature };
}

/**
 * Verifies one cosignature line over a checkpoint body and returns its timestamp.
 * @throws MalformedError `ERR_CHECKPOINT_MALFORMED` (not a checkpoint),
 *   `ERR_COSIGNATURE_MALFORMED` (not 72 bytes after the key ID, or a timestamp beyond 2^53 − 1).
 * @throws VerificationError `ERR_COSIGNATURE_INVALID` (another key's line, or a bad signature).
 */
export function verify(
  checkpointText: string,
  sig: NoteSignature,
  cosigner: CosignatureVerifier,
): { timestamp: number } {
  parseCheckpoint(checkpointText);
  if (sig.name !== cosigner.name || sig.keyId !== cosigner.keyId) {
    throw new VerificationError('ERR_COSIGNATURE_INVALID', 'signature is from another key');
  }
  if (sig.signature.length !== COSIGNATURE_V1_SIGNATURE_SIZE) {
    throw new MalformedError('ERR_COSIGNATURE_MALFORMED', 'cosignature is not 76 bytes');
  }
  const timestamp = readTimestamp(sig.signature);
  if (timestamp === undefined) {
    throw new MalformedError('ERR_COSIGNATURE_MALFORMED', 'timestamp out of range');
  }
  if (!cosigner.verify(utf8(checkpointText), sig.signature)) {
    throw new VerificationError('ERR_COSIGNATURE_INVALID', 'cosignature does not verify');
  }
  return { timestamp };
}

/**
 * Verifies a cosigned checkpoint note against a policy: the note opens under the log and
 * witness keys (signed-note rules: a known key's bad line rejects the note), a log key signed
 * it, and at least `quorum` distinct witnesses cosigned it with timestamps no older than
 * `maxAgeSeconds` and no later than `now + maxFutureSkewSeconds`. Witnesses whose timestamps
 * fail those checks are dropped before the quorum is counted. Callers still compare the
 * returned `checkpoint.origin` with the log they expect.
 * @throws MalformedError note and checkpoint errors (`ERR_NOTE_*`, `ERR_CHECKPOINT_MALFORMED`).
 * @throws VerificationError `ERR_NOTE_*` from `note.open`, `ERR_NOTE_NO_VERIFIED_SIGNATURE` if no
 *   log key signed, `ERR_COSIGNATURE_STALE` (quorum met only with too-old cosignatures),
 *   `ERR_COSIGNATURE_FUTURE` (met only with future ones), `ERR_COSIGNATURE_QUORUM` (not met).
 * @throws RangeError/TypeError for an invalid policy.
 */
export function verifyCheckpoint(
  noteText: string,
  policy: CosignaturePolicy,
): { checkpoint: Checkpoint; cosigners: Cosigner[] } {
  const { log, witnesses, quorum, maxAgeSeconds, now } = policy;
  const skew = policy.maxFutureSkewSeconds ?? DEFAULT_MAX_FUTURE_SKEW_SECONDS;
  if (!Number.isInteger(quorum) || quorum < 0 || quorum > witnesses.length) {
    throw new RangeError('verifyCheckpoint: quorum must be in [0, witnesses.length]');
  }
  if (now !== undefined && !Number.isSafeInteger(now)) {
    throw new RangeError('verifyCheckpoint: now must be a safe integer');
  }
  if (maxAgeSeconds !== undefined && now === undefined) {
    throw new TypeError('verifyCheckpoint: maxAgeSeconds needs now');
  }
  const opened = open(noteText, [...log, ...witnesses]);
  const signedBy = (v: Verifier): NoteSignature | undefined =>
    opened.verified.find((s) => s.name === v.name && s.keyId === v.keyId);
  if (!log.some((v) => signedBy(v) !== undefined)) {
    throw new VerificationError('ERR_NOTE_NO_VERIFIED_SIGNATURE', 'no log key signed the note');
  }
  const checkpoint = parseCheckpoint(opened.text);
  const fresh: Cosigner[] = [];
  let stale = 0;
  let future = 0;
  const counted = new Set<string>();
  for (const w of witnesses) {
    const sig = signedBy(w);
    // A key listed twice (under two names) is still one witness.
    if (sig === undefined || counted.has(toBase64(w.publicKey))) continue;
    counted.add(toBase64(w.publicKey));
    // Verified lines are exactly 72 bytes with a representable timestamp.
    const timestamp = readTimestamp(sig.signature) as number;
    if (now !== undefined && timestamp > now + skew) future++;
    else if (now !== undefined && maxAgeSeconds !== undefined && now - timestamp > maxAgeSeconds) {
      stale++;
    } else fresh.push({ name: w.name, keyId: w.keyId, timestamp });
  }
  if (fresh.length >= quorum) return { checkpoint, cosigners: fresh };
  if (fresh.length + stale >= quorum) {
    throw new VerificationError('ERR_COSIGNATURE_STALE', 'witness cosignatures are too old');
  }
  if (fresh.length + stale + future >= quorum) {
    throw new VerificationError('ERR_COSIGNATURE_FUTURE', 'witness cosignatures from the future');
  }
  throw new VerificationError('ERR_COSIGNATURE_QUORUM', 'not enough witnesses cosigned');
}
