/**
 * The crypto seam: every SHA-256 and Ed25519 verification in `@keytrail/core` goes through the
 * backend installed here. The default is pure `@noble/*`, which runs everywhere; Node services
 * install a `node:crypto` backend (about 2× faster for SHA-256 on small inputs, about 10× for
 * Ed25519 verification) with {@link setCryptoBackend}. Both backends must give identical
 * results; the tests check that.
 *
 * Ed25519 verification rules (the same for every backend): RFC 8032 §5.1.7 with canonical
 * encodings of A and R, `S < L`, and the cofactorless equation `[S]B = R + [k]A` checked by
 * comparing encodings — what OpenSSL (so `node:crypto`) and Go's `crypto/ed25519` do. On top of
 * that, {@link ed25519Verify} rejects the small-order public keys for every backend, since
 * signatures under them are forgeable.
 * @module
 */
import { sha256 as nobleSha256, sha512 } from '@noble/hashes/sha2.js';
import { ed25519, ED25519_TORSION_SUBGROUP } from '@noble/curves/ed25519.js';
import { bytesToNumberLE } from '@noble/curves/utils.js';

/** The primitives the protocol library needs from its host. */
export interface CryptoBackend {
  /** A short name for diagnostics and benchmarks, such as `noble` or `node`. */
  readonly name: string;
  /** SHA-256 of `data`. */
  sha256(data: Uint8Array): Uint8Array;
  /**
   * Strict RFC 8032 Ed25519 verification: canonical A and R, S < L, cofactorless equation.
   * Returns false for any invalid input rather than throwing.
   */
  ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

const Point = ed25519.Point;
const GROUP_ORDER = Point.Fn.ORDER;

/**
 * Cofactorless strict Ed25519 verification on `@noble/curves` points. noble's own `verify` checks
 * the cofactored equation and rejects small-order keys; both differ from OpenSSL on crafted
 * signatures with torsion components, and the two backends must agree bit for bit.
 */
function nobleEd25519Verify(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  try {
    const a = Point.fromBytes(publicKey, false); // rejects y ≥ p and x = 0 with the sign bit
    const r = signature.subarray(0, 32);
    const s = bytesToNumberLE(signature.subarray(32, 64));
    if (s >= GROUP_ORDER) return false;
    const hashInput = new Uint8Array(64 + message.length);
    hashInput.set(r, 0);
    hashInput.set(publicKey, 32);
    hashInput.set(message, 64);
    const k = Point.Fn.create(bytesToNumberLE(sha512(hashInput)));
    const check = Point.BASE.multiplyUnsafe(s).subtract(a.multiplyUnsafe(k)).toBytes();
    // A non-canonical R never equals the canonical encoding computed here.
    for (let i = 0; i < 32; i++) if (check[i] !== r[i]) return false;
    return true;
  } catch {
    return false;
  }
}

/** The pure-JavaScript backend on `@noble/hashes` and `@noble/curves`. */
export const NOBLE_BACKEND: CryptoBackend = Object.freeze({
  name: 'noble',
  sha256: (data: Uint8Array): Uint8Array => nobleSha256(data),
  ed25519Verify: nobleEd25519Verify,
});

// The eight small-order points, compared without the sign bit so that the invalid "negative
// zero" encodings are caught as well.
const SMALL_ORDER = ED25519_TORSION_SUBGROUP.map((hex) => {
  const bytes = new Uint8Array(32);
  for (let i = 0; i < 32; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  bytes[31] = parseInt(hex.slice(62, 64), 16) & 0x7f;
  return bytes;
});

/** `publicKey` is 32 bytes here. */
function isSmallOrderEncoding(publicKey: Uint8Array): boolean {
  const top = (publicKey[31] as number) & 0x7f;
  return SMALL_ORDER.some((p) => {
    for (let i = 0; i < 31; i++) if (p[i] !== publicKey[i]) return false;
    return p[31] === top;
  });
}

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

/**
 * Strict Ed25519 verification through the installed backend; small-order public keys are
 * rejected first, whatever the backend.
 */
export function ed25519Verify(
  signature: Uint8Array,
  message: Uint8Array,
  publicKey: Uint8Array,
): boolean {
  if (signature.length !== 64 || publicKey.length !== 32 || isSmallOrderEncoding(publicKey)) {
    return false;
  }
  return backend.ed25519Verify(signature, message, publicKey);
}
