/**
 * Internal helpers of the C2SP signed-note v1.0.0 implementation shared by `signed-note.ts` and
 * `cosignature.ts`: key-name rules, key IDs, verifier-key strings and text checks. Not exported
 * from the package.
 * @module
 */
import { fromBase64, utf8 } from './bytes.ts';
import { sha256 } from './crypto.ts';
import { MalformedError } from './errors.ts';

// Go's unicode.IsSpace: ASCII/Latin-1 spaces plus the Unicode White_Space property.
const SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;

/** No lone UTF-16 surrogates (they cannot be encoded as UTF-8). */
export function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      return false;
    }
  }
  return true;
}

/**
 * Whether `name` is a valid key name (signed-note §Format): non-empty, well-formed, without
 * Unicode spaces (Go's `unicode.IsSpace`) and without `+`.
 */
export function isValidName(name: string): boolean {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    isWellFormed(name) &&
    !SPACE.test(name) &&
    !name.includes('+')
  );
}

/** Valid note content: well-formed, no control characters other than newline. */
export function isCleanText(s: string): boolean {
  if (!isWellFormed(s)) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) return false;
  }
  return true;
}

/** Eight lowercase hex digits of a uint32. */
export function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

/** Big-endian uint32 from the first four bytes (at least four must exist). */
export function readU32(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
}

/** Big-endian encoding of a uint32. */
export function u32Bytes(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/**
 * The recommended key ID: the first four bytes, big-endian, of
 * `SHA-256(name || 0x0A || type || publicKey)`.
 * @throws TypeError if `name` is not a valid key name; RangeError if `type` is not a byte.
 */
export function keyId(name: string, type: number, publicKey: Uint8Array): number {
  if (!isValidName(name)) throw new TypeError('keyId: invalid key name');
  if (!Number.isInteger(type) || type < 0 || type > 255) {
    throw new RangeError('keyId: type must be a byte');
  }
  const n = utf8(name);
  const input = new Uint8Array(n.length + 2 + publicKey.length);
  input.set(n, 0);
  input[n.length] = 0x0a;
  input[n.length + 1] = type;
  input.set(publicKey, n.length + 2);
  return readU32(sha256(input));
}

/** Splits at the first `+`, as Go's `chop` does. */
export function chop(s: string): [string, string] | undefined {
  const i = s.indexOf('+');
  return i < 0 ? undefined : [s.slice(0, i), s.slice(i + 1)];
}

/** Exactly eight hex digits (either case, as Go's `strconv.ParseUint`) as a uint32. */
export function parseHex8(s: string): number | undefined {
  return /^[0-9a-fA-F]{8}$/.test(s) ? parseInt(s, 16) >>> 0 : undefined;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * Base64 as Go's `base64.StdEncoding` decodes it: padding required, but non-zero padding bits
 * in the last symbol are ignored (RFC 4648 §3.5 lets decoders accept or reject them). Used for
 * signature lines, so that a tampered line from a known key is an invalid signature, as in Go,
 * rather than a malformed note. Undefined if not base64.
 */
export function decodeBase64Lenient(b64: string): Uint8Array | undefined {
  const pad = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  const at = b64.length - pad - 1;
  const v = pad === 0 || at < 0 ? -1 : B64.indexOf(b64.charAt(at));
  if (v < 0) return decodeBase64(b64);
  // With two '=' the last symbol carries 4 unused bits, with one '=' it carries 2.
  const canonical = B64.charAt(v & (pad === 2 ? 0x30 : 0x3c));
  return decodeBase64(b64.slice(0, at) + canonical + b64.slice(at + 1));
}

/** Strict base64, or undefined. */
export function decodeBase64(b64: string): Uint8Array | undefined {
  try {
    return fromBase64(b64);
  } catch {
    return undefined;
  }
}

/**
 * Parses a `<name>+<hex8 key ID>+<base64(type || key)>` string for one signature type and key
 * length. The type is checked before the key ID because the ID rule depends on the type (type
 * 0x02 hashes a DER SPKI), then the key length, then the key ID against the name and key.
 * @throws MalformedError `ERR_VKEY_MALFORMED`, `ERR_VKEY_UNSUPPORTED_TYPE`
 */
export function parseKeyString(
  vkey: string,
  type: number,
  keyLength: number,
): { name: string; id: number; key: Uint8Array } {
  const bad = (message: string): MalformedError =>
    new MalformedError('ERR_VKEY_MALFORMED', message);
  if (typeof vkey !== 'string') throw bad('verifier key is not a string');
  const a = chop(vkey);
  const b = a && chop(a[1]);
  const name = a?.[0] ?? '';
  const id = b && parseHex8(b[0]);
  const raw = b && decodeBase64(b[1]);
  if (!isValidName(name) || id === undefined || raw === undefined || raw.length === 0) {
    throw bad('malformed verifier key');
  }
  if (raw[0] !== type) {
    throw new MalformedError('ERR_VKEY_UNSUPPORTED_TYPE', 'unsupported verifier key type');
  }
  const key = raw.slice(1);
  if (key.length !== keyLength) throw bad('verifier key has the wrong length');
  if (keyId(name, type, key) !== id) throw bad('verifier key ID does not match the key');
  return { name, id, key };
}
