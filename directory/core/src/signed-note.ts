/**
 * Signed notes, C2SP signed-note v1.0.0 (`c2sp.org/signed-note@v1.0.0`), byte-compatible with
 * Go's `golang.org/x/mod/sumdb/note`: parsing and formatting, key IDs, verifier keys (vkeys),
 * Go signer keys (`PRIVATE+KEY+…`), Ed25519 (type 0x01) signing and verification, and
 * {@link open} with the specification's verification rules:
 *
 * - the text is valid UTF-8 without control characters other than newline, ends in a newline,
 *   and is separated from the signature lines by the **last** blank line;
 * - signature lines are `— <name> <base64(key ID[4] || signature)>\n`; names are non-empty and
 *   contain no Unicode spaces and no `+`;
 * - lines from unknown keys are ignored (even if they share the name *or* the ID of a known
 *   key); a line that matches a known key by name *and* ID must verify, or the whole note is
 *   rejected; at least one known key must verify; repeated lines for the same key are dropped
 *   (as Go does, the repeats are not verified); two configured verifiers with the same name and
 *   ID make a matching line an "ambiguous key" error;
 * - limits: notes up to {@link MAX_NOTE_SIZE} bytes and {@link MAX_SIGNATURES} signature lines
 *   (Go's limit; the specification asks verifiers to accept at least 16).
 *
 * Only Ed25519 (0x01) verifier keys are supported here; witness cosignatures (0x04) live in
 * `cosignature.ts`. Lines of any other type (Pixel's ECDSA 0x02, RFC 6962 0x05, ML-DSA 0x06)
 * are simply unknown keys and therefore ignored.
 *
 * Base64 is RFC 4648 §4 with padding. Verifier and signer keys are decoded strictly; signature
 * lines are decoded as Go decodes them (non-zero padding bits ignored), so that a tampered line
 * from a known key is rejected as an invalid signature, exactly as Go (and litewitness) do.
 * @module
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { fromUtf8, toBase64, utf8 } from './bytes.ts';
import { ed25519Verify } from './crypto.ts';
import { MalformedError, VerificationError } from './errors.ts';
import {
  chop,
  decodeBase64,
  decodeBase64Lenient,
  hex8,
  isCleanText,
  isValidName,
  keyId,
  parseHex8,
  parseKeyString,
  readU32,
  u32Bytes,
} from './signed-note-keys.ts';

export { isValidName, keyId };

/** Signature type byte of Ed25519 note signatures (signed-note §Signature types). */
export const ED25519_TYPE = 0x01;
/** Largest note accepted by {@link parse} and {@link open}, in UTF-8 bytes (1 MiB). */
export const MAX_NOTE_SIZE: number = 1 << 20;
/** Most signature lines accepted in one note (Go's `note.Open` limit). */
export const MAX_SIGNATURES = 100;

/** One signature line. */
export interface NoteSignature {
  /** Key name. */
  name: string;
  /** Key ID, an unsigned 32-bit integer. */
  keyId: number;
  /** The signature bytes after the 4-byte key ID. */
  signature: Uint8Array;
}

/** A parsed note: text (with its final newline) and signature lines in order. */
export interface Note {
  text: string;
  signatures: NoteSignature[];
}

/** Something that verifies signatures of one key. */
export interface Verifier {
  name: string;
  keyId: number;
  /** Verifies `sig` (the bytes after the key ID) over `msg` (the UTF-8 note text). */
  verify(msg: Uint8Array, sig: Uint8Array): boolean;
}

/** Something that signs with one key. */
export interface Signer {
  name: string;
  keyId: number;
  /** Signs `msg`, returning the signature bytes that follow the key ID. */
  sign(msg: Uint8Array): Uint8Array;
}

/** An Ed25519 signing function, so that Node callers can plug in `node:crypto`. */
export type Ed25519SignFn = (message: Uint8Array, secretKey: Uint8Array) => Uint8Array;

/** Result of {@link open}. */
export interface OpenedNote {
  /** The verified text, including its final newline. */
  text: string;
  /** Signatures from known keys, all verified, in note order, one per key. */
  verified: NoteSignature[];
  /** Signatures from unknown keys (not verified), in note order, duplicates dropped. */
  unverified: NoteSignature[];
}

const SIG_PREFIX = '\u2014 ';

function noteMalformed(message: string, cause?: unknown): MalformedError {
  return new MalformedError(
    'ERR_NOTE_MALFORMED',
    message,
    cause === undefined ? undefined : { cause },
  );
}

function vkeyMalformed(message: string): MalformedError {
  return new MalformedError('ERR_VKEY_MALFORMED', message);
}

/**
 * Parses a verifier key `<name>+<hex key ID>+<base64(type || public key)>`. The key ID must be
 * the one computed from the name and key.
 * @throws MalformedError `ERR_VKEY_MALFORMED` (syntax, key ID mismatch, wrong key length),
 *   `ERR_VKEY_UNSUPPORTED_TYPE` (a type other than Ed25519 0x01; checked before the key ID,
 *   whose rule depends on the type).
 * @example
 * ```ts
 * const v = note.parseVerifierKey('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW');
 * ```
 */
export function parseVerifierKey(vkey: string): Verifier & { type: number; publicKey: Uint8Array } {
  const { name, id, key } = parseKeyString(vkey, ED25519_TYPE, 32);
  return ed25519Verifier(name, id, key);
}

function ed25519Verifier(
  name: string,
  id: number,
  publicKey: Uint8Array,
): Verifier & { type: number; publicKey: Uint8Array } {
  const key = publicKey.slice();
  return {
    name,
    keyId: id,
    type: ED25519_TYPE,
    publicKey: key,
    verify: (msg: Uint8Array, sig: Uint8Array): boolean => ed25519Verify(sig, msg, key),
  };
}

/**
 * Formats a verifier key string for `publicKey` of signature type `type`.
 * @throws TypeError if `name` is not a valid key name.
 */
export function formatVerifierKey(
  name: string,
  publicKey: Uint8Array,
  type: number = ED25519_TYPE,
): string {
  const raw = new Uint8Array(1 + publicKey.length);
  raw[0] = type;
  raw.set(publicKey, 1);
  return `${name}+${hex8(keyId(name, type, publicKey))}+${toBase64(raw)}`;
}

const nobleSign: Ed25519SignFn = (message, secretKey) => ed25519.sign(message, secretKey);

/**
 * An Ed25519 (0x01) signer for `name` from a 32-byte secret key (RFC 8032 seed).
 * @param signFn Ed25519 signing function; defaults to `@noble/curves`.
 * @throws TypeError for an invalid name; RangeError if the secret key is not 32 bytes.
 */
export function ed25519Signer(
  name: string,
  secretKey: Uint8Array,
  signFn: Ed25519SignFn = nobleSign,
): Signer & { publicKey: Uint8Array } {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) {
    throw new RangeError('ed25519Signer: secret key must be 32 bytes');
  }
  const seed = secretKey.slice();
  const publicKey = ed25519.getPublicKey(seed);
  return {
    name,
    keyId: keyId(name, ED25519_TYPE, publicKey),
    publicKey,
    sign: (msg: Uint8Array): Uint8Array => signFn(msg, seed),
  };
}

/**
 * Parses a Go signer key `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>` into a signer;
 * the key ID must match the public key derived from the seed.
 * @param signFn Ed25519 signing function; defaults to `@noble/curves`.
 * @throws MalformedError `ERR_VKEY_MALFORMED` (syntax, key ID mismatch, wrong seed length),
 *   `ERR_VKEY_UNSUPPORTED_TYPE` (not Ed25519).
 */
export function parseSignerKey(
  skey: string,
  signFn: Ed25519SignFn = nobleSign,
): Signer & { publicKey: Uint8Array } {
  if (typeof skey !== 'string' || !skey.startsWith('PRIVATE+KEY+')) {
    throw vkeyMalformed('malformed signer key');
  }
  const rest = skey.slice('PRIVATE+KEY+'.length);
  const a = chop(rest);
  const b = a && chop(a[1]);
  const name = a?.[0] ?? '';
  const id = b && parseHex8(b[0]);
  const raw = b && decodeBase64(b[1]);
  if (!isValidName(name) || id === undefined || raw === undefined || raw.length === 0) {
    throw vkeyMalformed('malformed signer key');
  }
  if (raw[0] !== ED25519_TYPE) {
    throw new MalformedError('ERR_VKEY_UNSUPPORTED_TYPE', 'unsupported signer key type');
  }
  if (raw.length !== 33) throw vkeyMalformed('Ed25519 signer key must hold a 32-byte seed');
  const signer = ed25519Signer(name, raw.subarray(1), signFn);
  if (signer.keyId !== id) throw vkeyMalformed('signer key ID does not match the key');
  return signer;
}

/**
 * Formats a Go signer key for an Ed25519 seed.
 * @throws TypeError for an invalid name; RangeError if the seed is not 32 bytes.
 */
export function formatSignerKey(name: string, seed: Uint8Array): string {
  const signer = ed25519Signer(name, seed);
  const raw = new Uint8Array(33);
  raw[0] = ED25519_TYPE;
  raw.set(seed, 1);
  return `PRIVATE+KEY+${name}+${hex8(signer.keyId)}+${toBase64(raw)}`;
}

/**
 * Generates a fresh Ed25519 key pair (with `crypto.getRandomValues`) as Go key strings.
 * @throws TypeError for an invalid name.
 */
export function generateKey(name: string): { signerKey: string; verifierKey: string } {
  const seed = crypto.getRandomValues(new Uint8Array(32));
  return {
    signerKey: formatSignerKey(name, seed),
    verifierKey: formatVerifierKey(name, ed25519.getPublicKey(seed)),
  };
}

function noteText(input: string | Uint8Array): string {
  if (typeof input === 'string') {
    // A UTF-16 unit encodes to at least one byte, so this bounds the work before encoding.
    if (input.length > MAX_NOTE_SIZE) throw tooLarge();
    return input;
  }
  if (!(input instanceof Uint8Array)) throw noteMalformed('note is not text');
  if (input.length > MAX_NOTE_SIZE) throw tooLarge();
  try {
    return fromUtf8(input);
  } catch (cause) {
    throw noteMalformed('note is not valid UTF-8', cause);
  }
}

function tooLarge(): MalformedError {
  return new MalformedError('ERR_NOTE_TOO_LARGE', `note exceeds ${MAX_NOTE_SIZE} bytes`);
}

/**
 * Parses a signed note (syntax only; nothing is verified). Accepts a string or UTF-8 bytes.
 * @throws MalformedError `ERR_NOTE_MALFORMED`, `ERR_NOTE_TOO_LARGE`,
 *   `ERR_NOTE_TOO_MANY_SIGNATURES`.
 */
export function parse(input: string | Uint8Array): Note {
  const msg = noteText(input);
  if (!isCleanText(msg)) throw noteMalformed('note contains control characters or bad UTF-16');
  if (utf8(msg).length > MAX_NOTE_SIZE) throw tooLarge();
  const split = msg.lastIndexOf('\n\n');
  if (split < 0) throw noteMalformed('note has no signature block');
  const text = msg.slice(0, split + 1);
  const block = msg.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n')) throw noteMalformed('bad signature block');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) {
    throw new MalformedError('ERR_NOTE_TOO_MANY_SIGNATURES', 'too many signatures');
  }
  const signatures = lines.map(parseSignatureLine);
  return { text, signatures };
}

function parseSignatureLine(line: string): NoteSignature {
  if (!line.startsWith(SIG_PREFIX)) throw noteMalformed('bad signature line');
  const rest = line.slice(SIG_PREFIX.length);
  const space = rest.indexOf(' ');
  const name = space < 0 ? rest : rest.slice(0, space);
  const b64 = space < 0 ? '' : rest.slice(space + 1);
  const raw = b64 === '' ? undefined : decodeBase64Lenient(b64);
  if (!isValidName(name) || raw === undefined || raw.length < 5) {
    throw noteMalformed('bad signature line');
  }
  return { name, keyId: readU32(raw), signature: raw.slice(4) };
}

function signatureLine(sig: NoteSignature): string {
  if (!isValidName(sig.name)) throw new TypeError('signature line: invalid key name');
  if (!Number.isInteger(sig.keyId) || sig.keyId < 0 || sig.keyId > 0xffffffff) {
    throw new RangeError('signature line: key ID is not a uint32');
  }
  const raw = new Uint8Array(4 + sig.signature.length);
  raw.set(u32Bytes(sig.keyId), 0);
  raw.set(sig.signature, 4);
  return `${SIG_PREFIX}${sig.name} ${toBase64(raw)}\n`;
}

function checkText(text: string): void {
  if (typeof text !== 'string' || !text.endsWith('\n') || !isCleanText(text)) {
    throw new TypeError('note text must end in a newline and contain no control characters');
  }
}

/**
 * Formats a note: text, blank line, one line per signature. Inverse of {@link parse}.
 * @throws TypeError/RangeError for an invalid text, name or key ID.
 */
export function format(note: Note): string {
  checkText(note.text);
  if (note.signatures.length === 0) throw new TypeError('format: a note needs a signature');
  return `${note.text}\n${note.signatures.map(signatureLine).join('')}`;
}

function nameKey(name: string, id: number): string {
  return `${id}\u0000${name}`;
}

/**
 * Parses `input` and verifies it against `verifiers` with the signed-note rules (see the module
 * documentation). Accepts a string or UTF-8 bytes.
 * @throws MalformedError `ERR_NOTE_MALFORMED`, `ERR_NOTE_TOO_LARGE`,
 *   `ERR_NOTE_TOO_MANY_SIGNATURES`.
 * @throws VerificationError `ERR_NOTE_INVALID_SIGNATURE` (a known key's signature fails),
 *   `ERR_NOTE_NO_VERIFIED_SIGNATURE` (no known key signed), `ERR_NOTE_AMBIGUOUS_KEY` (a line
 *   matches two configured verifiers).
 * @example
 * ```ts
 * const { text } = note.open(signedNote, [note.parseVerifierKey(vkey)]);
 * ```
 */
export function open(input: string | Uint8Array, verifiers: readonly Verifier[]): OpenedNote {
  const parsed = parse(input);
  const known = new Map<string, Verifier[]>();
  for (const v of verifiers) {
    const k = nameKey(v.name, v.keyId >>> 0);
    const list = known.get(k);
    if (list) list.push(v);
    else known.set(k, [v]);
  }
  const msg = utf8(parsed.text);
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  const seen = new Set<string>();
  const seenUnverified = new Set<string>();
  for (const sig of parsed.signatures) {
    const k = nameKey(sig.name, sig.keyId);
    const candidates = known.get(k);
    if (candidates === undefined) {
      const line = `${k}\u0000${toBase64(sig.signature)}`;
      if (!seenUnverified.has(line)) {
        seenUnverified.add(line);
        unverified.push(sig);
      }
      continue;
    }
    if (candidates.length > 1) {
      throw new VerificationError(
        'ERR_NOTE_AMBIGUOUS_KEY',
        'two verifiers share a name and key ID',
      );
    }
    if (seen.has(k)) continue;
    seen.add(k);
    if (!(candidates[0] as Verifier).verify(msg, sig.signature)) {
      throw new VerificationError('ERR_NOTE_INVALID_SIGNATURE', "a known key's signature fails");
    }
    verified.push(sig);
  }
  if (verified.length === 0) {
    throw new VerificationError('ERR_NOTE_NO_VERIFIED_SIGNATURE', 'no known key signed the note');
  }
  return { text: parsed.text, verified, unverified };
}

/**
 * Signs `text` with every signer and returns the signed note.
 * @throws TypeError if the text does not end in a newline or has control characters, or a
 *   signer's name is invalid.
 * @example
 * ```ts
 * const signer = note.parseSignerKey(skey);
 * const signed = note.sign('hello\n', [signer]);
 * ```
 */
export function sign(text: string, signers: readonly Signer[]): string {
  checkText(text);
  const msg = utf8(text);
  const signatures = signers.map((s) => ({ name: s.name, keyId: s.keyId, signature: s.sign(msg) }));
  return format({ text, signatures });
}

/**
 * Adds signature lines to a signed note, as Go's `note.Sign` does for an opened note: existing
 * lines from the same key (name and ID) are replaced and the new lines go last. Nothing is
 * verified.
 * @throws MalformedError if `noteText` is not a note (see {@link parse}).
 */
export function addSignatures(noteText: string, sigs: readonly NoteSignature[]): string {
  const parsed = parse(noteText);
  const replaced = new Set(sigs.map((s) => nameKey(s.name, s.keyId >>> 0)));
  const kept = parsed.signatures.filter((s) => !replaced.has(nameKey(s.name, s.keyId)));
  return format({ text: parsed.text, signatures: [...kept, ...sigs] });
}
