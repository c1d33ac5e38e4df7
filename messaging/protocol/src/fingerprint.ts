/**
 * Safety numbers: Signal's numeric fingerprint (libsignal `fingerprint.rs`, version 1 display
 * format, 5,200 iterations of SHA-512), which two people compare to verify each other's keys.
 *
 * Per party: h = SHA-512(u16 0 ‖ key ‖ stable id ‖ key), then 5,199 times h = SHA-512(h ‖ key);
 * the first 30 bytes are read as six 5-byte big-endian integers, each reduced mod 100,000 and
 * written as 5 digits. The safety number is the two 30-digit strings, the smaller first.
 *
 * Keytrail accounts have several devices: {@link accountFingerprintKey} concatenates the
 * account's device identity keys in sorted order, so the number changes whenever any device is
 * added, removed or re-keyed (as WhatsApp's security code does).
 * @module
 */
import { sha512 } from '@noble/hashes/sha2.js';
import { concatBytes, toHex, utf8 } from './bytes.ts';

/** Signal's iteration count. */
export const FINGERPRINT_ITERATIONS = 5200;

function displayChunk(hash: Uint8Array): string {
  let out = '';
  for (let i = 0; i < 30; i += 5) {
    let v = 0;
    for (let j = 0; j < 5; j++) v = v * 256 + (hash[i + j] ?? 0);
    out += String(v % 100000).padStart(5, '0');
  }
  return out;
}

/** One party's 30 digits. */
export function fingerprintDigits(
  stableId: string,
  key: Uint8Array,
  iterations: number = FINGERPRINT_ITERATIONS,
): string {
  let h = concatBytes(Uint8Array.of(0, 0), key, utf8(stableId));
  for (let i = 0; i < iterations; i++) h = sha512(concatBytes(h, key));
  return displayChunk(h);
}

/** The 60-digit safety number of two parties (the same on both sides). */
export function safetyNumber(
  local: { readonly stableId: string; readonly key: Uint8Array },
  remote: { readonly stableId: string; readonly key: Uint8Array },
  iterations: number = FINGERPRINT_ITERATIONS,
): string {
  const a = fingerprintDigits(local.stableId, local.key, iterations);
  const b = fingerprintDigits(remote.stableId, remote.key, iterations);
  return a <= b ? a + b : b + a;
}

/** The fingerprint key of a multi-device account: its device identity keys, sorted, concatenated. */
export function accountFingerprintKey(deviceIdentityKeys: readonly Uint8Array[]): Uint8Array {
  const sorted = [...deviceIdentityKeys].sort((x, y) => (toHex(x) < toHex(y) ? -1 : 1));
  return concatBytes(...sorted);
}
