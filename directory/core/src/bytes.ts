/**
 * Byte-string helpers: hex and RFC 4648 §4 base64 with strict decoding, UTF-8 with strict
 * decoding, concatenation and comparison. `Uint8Array` only, no `Buffer`.
 * @module
 */
import { MalformedError } from './errors.ts';

const HEX = '0123456789abcdef';

/** Lowercase hex encoding. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += HEX.charAt(b >> 4) + HEX.charAt(b & 15);
  return out;
}

/**
 * Strict hex decoding (either case, even length, no prefix).
 * @throws MalformedError `ERR_HEX_MALFORMED`
 */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new MalformedError('ERR_HEX_MALFORMED', 'invalid hex string');
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i;

/** Standard padded base64 (RFC 4648 §4). */
export function toBase64(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n =
      ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number);
    out +=
      B64.charAt(n >> 18) +
      B64.charAt((n >> 12) & 63) +
      B64.charAt((n >> 6) & 63) +
      B64.charAt(n & 63);
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = (bytes[i] as number) << 16;
    out += B64.charAt(n >> 18) + B64.charAt((n >> 12) & 63) + '==';
  } else if (rest === 2) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8);
    out += B64.charAt(n >> 18) + B64.charAt((n >> 12) & 63) + B64.charAt((n >> 6) & 63) + '=';
  }
  return out;
}

/**
 * Strict standard base64 decoding: padding required, no whitespace, and the unused bits of
 * the last symbol must be zero (so every byte string has exactly one accepted encoding).
 * @throws MalformedError `ERR_BASE64_MALFORMED`
 */
export function fromBase64(text: string): Uint8Array {
  const bad = (): MalformedError => new MalformedError('ERR_BASE64_MALFORMED', 'invalid base64');
  if (text.length % 4 !== 0) throw bad();
  let pad = 0;
  if (text.endsWith('==')) pad = 2;
  else if (text.endsWith('=')) pad = 1;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const c = text.charCodeAt(i + j);
      // The padding symbols themselves: `pad` was counted from these very characters.
      if (last && j >= 4 - pad) continue;
      // Indexing a typed array in range always yields a number.
      const v = c < 128 ? (B64_INDEX[c] as number) : -1;
      if (v < 0) throw bad();
      n |= v << (18 - 6 * j);
    }
    if (last && pad === 2 && (n & 0xffff) !== 0) throw bad();
    if (last && pad === 1 && (n & 0xff) !== 0) throw bad();
    out[o++] = n >> 16;
    if (o < out.length) out[o++] = (n >> 8) & 0xff;
    if (o < out.length) out[o++] = n & 0xff;
  }
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
 * @throws MalformedError `ERR_UTF8_MALFORMED`
 */
export function fromUtf8(bytes: Uint8Array): string {
  try {
    return strictDecoder.decode(bytes);
  } catch (cause) {
    throw new MalformedError('ERR_UTF8_MALFORMED', 'invalid UTF-8', { cause });
  }
}

/** Concatenates byte strings. */
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

/** Equality in time independent of the contents (for secrets); length is not hidden. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/** Big-endian encoding of an unsigned integer of `size` bytes (1, 2, 4 or 8). */
export function uintBE(value: number | bigint, size: 1 | 2 | 4 | 8): Uint8Array {
  const out = new Uint8Array(size);
  let v = BigInt(value);
  if (v < 0n || v >= 1n << BigInt(8 * size)) {
    throw new RangeError(`uintBE: ${String(value)} does not fit in ${size} bytes`);
  }
  for (let i = size - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}
