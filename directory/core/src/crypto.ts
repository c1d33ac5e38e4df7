/**
 * The crypto seam: every SHA-256 and Ed25519 verification in `@keytrail/core` goes through the
 * backend installed here. The default is pure `@noble/*`, which runs everywhere; Node services
 * install a `node:crypto` backend (about 2× faster for SHA-256 on small inputs, about 10× for
 * Ed25519 verification) with {@link setCryptoBackend}. Both backends must give identical
 * results; the tests check that.
 * @module
 */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { ed25519 } from '@noble/curves/ed25519.js';

/** The primitives the protocol library needs from its host. */
export interface CryptoBackend {
  /** A short name for diagnostics and benchmarks, such as `noble` or `node`. */
  readonly name: string;
  /** SHA-256 of `data`. */
  sha256(data: Uint8Array): Uint8Array;
  /**
   * Strict RFC 8032 Ed25519 verification (non-canonical encodings rejected). Returns false
   * for any invalid input rather than throwing.
   */
  ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

/** The pure-JavaScript backend on `@noble/hashes` and `@noble/curves`. */
export const NOBLE_BACKEND: CryptoBackend = Object.freeze({
  name: 'noble',
  sha256: (data: Uint8Array): Uint8Array => nobleSha256(data),
  ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    if (signature.length !== 64 || publicKey.length !== 32) return false;
    try {
      return ed25519.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false;
    }
  },
});

let backend: CryptoBackend = NOBLE_BACKEND;

/** Installs the backend used by every later call. Returns the previous one. */
export function setCryptoBackend(next: CryptoBackend): CryptoBackend {
  const prev = backend;
  backend = next;
  return prev;
}

/** The backend currently in use. */
export function getCryptoBackend(): CryptoBackend {
  return backend;
}

/** SHA-256 through the installed backend. */
export function sha256(data: Uint8Array): Uint8Array {
  return backend.sha256(data);
}

/** Strict Ed25519 verification through the installed backend. */
export function ed25519Verify(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  return backend.ed25519Verify(signature, message, publicKey);
}
