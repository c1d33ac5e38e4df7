/**
 * Byte-string helpers: concatenation, constant-time comparison, hex and UTF-8 with strict
 * decoding. `Uint8Array` only, no `Buffer`.
 * @module
 */
import { MalformedError } from './errors.ts';

const HEX = '0123456789abcdef';

/** Lowercase hex encoding. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += (HEX[b >> 4] ?? '') + (HEX[b & 15] ?? '');
  return out;
}

/**
 * Strict hex decoding (either case, even length, no prefix).
 * @throws MalformedError `ERR_ENCODING_MALFORMED`
 */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new MalformedError('ERR_ENCODING_MALFORMED', 'invalid hex string');
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** UTF-8 encoding. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * Strict UTF-8 decoding.
 * @throws MalformedError `ERR_ENCODING_MALFORMED`
 */
export function fromUtf8(bytes: Uint8Array): string {
  try {
    return strictDecoder.decode(bytes);
  } catch (cause) {
    throw new MalformedError('ERR_ENCODING_MALFORMED', 'invalid UTF-8', { cause });
  }
}

/** Concatenates byte strings into a fresh array. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Equality in time independent of the contents (for secrets); the length is not hidden. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** A fresh copy (so that callers can never alias state held by this library). */
export function copyBytes(a: Uint8Array): Uint8Array {
  return a.slice();
}

/** Overwrites a secret with zeros (best effort: JavaScript engines may keep other copies). */
export function wipe(a: Uint8Array): void {
  a.fill(0);
}

/** Big-endian 32-bit unsigned integer. */
export function u32be(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value);
  return out;
}
