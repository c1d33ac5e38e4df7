/**
 * Keys: X25519 key pairs (RFC 7748) for prekeys, ephemeral and ratchet keys; Ed25519 identity
 * keys (RFC 8032) whose X25519 form for X3DH and sealed sender is the birational map of RFC 7748
 * §4.1 (`toMontgomery`), so that a device publishes exactly one identity key in the directory.
 *
 * Every X25519 public key from the wire is checked before use: 32 bytes, the high bit clear and
 * u < p (one encoding per point; RFC 7748 §5 would silently mask the bit), and not one of the
 * points of small order (whose shared secret is all zeros). X3DH base keys are additionally
 * checked to lie in the prime-order subgroup (libsignal `test_bob_rejects_torsioned_basekey`),
 * because two encodings of one secret would make a replayed initial message look new. Ed25519
 * identity keys must be canonical, of large prime order and free of torsion.
 * @module
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { equalBytes, toHex } from './bytes.ts';
import { MalformedError, VerificationError } from './errors.ts';
import { getCryptoProvider } from './provider.ts';

/** An X25519 key pair. The private key is a raw 32-byte scalar. */
export interface KeyPair {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/**
 * A device's long-term identity: an Ed25519 key (published in the directory, signs prekeys,
 * certificates and reset requests) and its X25519 form (used in X3DH and sealed sender).
 */
export interface IdentityKeyPair {
  /** The 32-byte Ed25519 seed (RFC 8032 private key). */
  readonly seed: Uint8Array;
  /** The 32-byte Ed25519 public key: the identity key as published. */
  readonly publicKey: Uint8Array;
  /** The X25519 private scalar derived from the seed (RFC 8032 §5.1.5 steps 1–2). */
  readonly dhPrivateKey: Uint8Array;
  /** The X25519 public key, `toMontgomery(publicKey)`. */
  readonly dhPublicKey: Uint8Array;
}

const P = 2n ** 255n - 19n;

function leToBigint(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i] ?? 0);
  return n;
}

function bigintToLe(n: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

function modPow(b: bigint, e: bigint, m: bigint): bigint {
  let r = 1n;
  b %= m;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % m;
    b = (b * b) % m;
    e >>= 1n;
  }
  return r;
}

/**
 * The u-coordinates (canonical, u < p) of the points of order 1, 2, 4 and 8 on Curve25519 and
 * its twist that X25519 maps to all-zero output: 0, 1, p − 1 and the two order-8 points (the
 * list of cr.yp.to/ecdh.html#validate, reduced mod p).
 */
const LOW_ORDER_U: readonly bigint[] = [
  0n,
  1n,
  P - 1n,
  leToBigint(
    Uint8Array.from([
      0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4,
      0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49,
      0xb8, 0x00,
    ]),
  ),
  leToBigint(
    Uint8Array.from([
      0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef,
      0x5b, 0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f,
      0x11, 0x57,
    ]),
  ),
];

/**
 * Checks an X25519 public key from the wire: 32 bytes, canonical (high bit clear, u < p) and not
 * of small order. Returns the key itself.
 * @throws MalformedError `ERR_KEY_INVALID`, `ERR_KEY_NONCANONICAL`, `ERR_KEY_LOW_ORDER`
 */
export function checkX25519PublicKey(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== 32) throw new MalformedError('ERR_KEY_INVALID', 'X25519 key length');
  if (((publicKey[31] ?? 0) & 0x80) !== 0) {
    throw new MalformedError('ERR_KEY_NONCANONICAL', 'X25519 key has the high bit set');
  }
  const u = leToBigint(publicKey);
  if (u >= P) throw new MalformedError('ERR_KEY_NONCANONICAL', 'X25519 key not reduced mod p');
  if (LOW_ORDER_U.includes(u)) {
    throw new MalformedError('ERR_KEY_LOW_ORDER', 'X25519 key of small order');
  }
  return publicKey;
}

/**
 * The canonical encoding of an X25519 public key: high bit cleared and u reduced mod p (RFC 7748
 * §5 reads any 32 bytes that way). For callers that must hash or store keys received elsewhere;
 * the protocol itself rejects non-canonical keys instead.
 */
export function canonicalizeX25519PublicKey(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== 32) throw new MalformedError('ERR_KEY_INVALID', 'X25519 key length');
  const masked = publicKey.slice();
  masked[31] = (masked[31] ?? 0) & 0x7f;
  return bigintToLe(leToBigint(masked) % P, 32);
}

/**
 * Checks that an X25519 public key is canonical, not of small order, on the curve (not its
 * twist) and in the prime-order subgroup. Costs one scalar multiplication (pure JavaScript).
 * @throws MalformedError `ERR_KEY_INVALID`, `ERR_KEY_NONCANONICAL`, `ERR_KEY_LOW_ORDER`
 */
export function checkX25519PrimeOrder(publicKey: Uint8Array): Uint8Array {
  checkX25519PublicKey(publicKey);
  // Edwards y = (u − 1) / (u + 1); the sign of x does not change subgroup membership.
  const u = leToBigint(publicKey);
  const y = (((u - 1n + P) % P) * modPow(u + 1n, P - 2n, P)) % P;
  let point;
  try {
    point = ed25519.Point.fromBytes(bigintToLe(y, 32), false);
  } catch (cause) {
    throw new MalformedError('ERR_KEY_INVALID', 'X25519 key not on the curve', { cause });
  }
  if (!point.isTorsionFree()) {
    throw new MalformedError('ERR_KEY_LOW_ORDER', 'X25519 key has a torsion component');
  }
  return publicKey;
}

// Identity keys recur constantly (every sealed-sender envelope, every prekey message); their
// validation and conversion costs a scalar multiplication, so the result is cached by value.
const identityCache = new Map<string, Uint8Array>();
const IDENTITY_CACHE_MAX = 4096;

/**
 * Checks an Ed25519 identity public key (canonical encoding, on the curve, not of small order,
 * torsion-free) and returns its X25519 form (RFC 7748 §4.1 birational map).
 * @throws MalformedError `ERR_KEY_INVALID`, `ERR_KEY_LOW_ORDER`
 */
export function identityDhPublicKey(identityKey: Uint8Array): Uint8Array {
  if (identityKey.length !== 32) throw new MalformedError('ERR_KEY_INVALID', 'Ed25519 key length');
  const id = toHex(identityKey);
  const cached = identityCache.get(id);
  if (cached !== undefined) return cached;
  let point;
  try {
    point = ed25519.Point.fromBytes(identityKey, false);
  } catch (cause) {
    throw new MalformedError('ERR_KEY_INVALID', 'Ed25519 key does not decode', { cause });
  }
  if (point.isSmallOrder() || !point.isTorsionFree()) {
    throw new MalformedError('ERR_KEY_LOW_ORDER', 'Ed25519 key of small or mixed order');
  }
  const dh = ed25519.utils.toMontgomery(identityKey);
  checkX25519PublicKey(dh);
  if (identityCache.size >= IDENTITY_CACHE_MAX) {
    const first = identityCache.keys().next();
    if (first.done !== true) identityCache.delete(first.value);
  }
  identityCache.set(id, dh);
  return dh;
}

/** Checks an Ed25519 identity public key; returns it. See {@link identityDhPublicKey}. */
export function checkIdentityKey(identityKey: Uint8Array): Uint8Array {
  identityDhPublicKey(identityKey);
  return identityKey;
}

/** A fresh X25519 key pair from the provider's generator. */
export function generateKeyPair(): KeyPair {
  const p = getCryptoProvider();
  const privateKey = p.randomBytes(32);
  return { privateKey, publicKey: p.x25519PublicKey(privateKey) };
}

/** The key pair of a given X25519 private key. */
export function keyPairFromPrivateKey(privateKey: Uint8Array): KeyPair {
  if (privateKey.length !== 32) throw new RangeError('X25519 private key must be 32 bytes');
  return { privateKey, publicKey: getCryptoProvider().x25519PublicKey(privateKey) };
}

/** The identity key pair of a 32-byte Ed25519 seed. */
export function identityKeyPairFromSeed(seed: Uint8Array): IdentityKeyPair {
  if (seed.length !== 32) throw new RangeError('Ed25519 seed must be 32 bytes');
  const publicKey = getCryptoProvider().ed25519PublicKey(seed);
  return {
    seed,
    publicKey,
    dhPrivateKey: ed25519.utils.toMontgomerySecret(seed),
    dhPublicKey: identityDhPublicKey(publicKey),
  };
}

/** A fresh identity key pair. */
export function generateIdentityKeyPair(): IdentityKeyPair {
  return identityKeyPairFromSeed(getCryptoProvider().randomBytes(32));
}

/**
 * X25519 with a public key that has already been validated; rejects an all-zero output
 * (RFC 7748 §6.1 "check").
 * @throws VerificationError `ERR_KEY_LOW_ORDER`
 */
export function dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  let out: Uint8Array;
  try {
    out = getCryptoProvider().x25519(privateKey, publicKey);
  } catch (cause) {
    throw new VerificationError('ERR_KEY_LOW_ORDER', 'X25519 produced no shared secret', { cause });
  }
  let acc = 0;
  for (const b of out) acc |= b;
  if (acc === 0) throw new VerificationError('ERR_KEY_LOW_ORDER', 'X25519 output is all zero');
  return out;
}

/** Ed25519 signature with an identity key. */
export function sign(identity: IdentityKeyPair, message: Uint8Array): Uint8Array {
  return getCryptoProvider().ed25519Sign(identity.seed, message);
}

/**
 * Strict Ed25519 verification.
 * @throws VerificationError with the given code when the signature does not hold
 */
export function verifySignature(
  publicKey: Uint8Array,
  message: Uint8Array,
  signature: Uint8Array,
  code:
    | 'ERR_SIGNATURE_INVALID'
    | 'ERR_GROUP_SIGNATURE_INVALID'
    | 'ERR_SENDER_CERTIFICATE_INVALID'
    | 'ERR_RESET_INVALID' = 'ERR_SIGNATURE_INVALID',
): void {
  if (!getCryptoProvider().ed25519Verify(signature, message, publicKey)) {
    throw new VerificationError(code, 'signature does not verify');
  }
}

/** True when two public keys are the same bytes. */
export function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return equalBytes(a, b);
}
