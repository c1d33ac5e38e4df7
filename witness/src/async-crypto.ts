/**
 * Ed25519 on the libuv thread pool: `node:crypto` one-shot `sign`/`verify` with a callback run
 * off the event loop, so the two signature operations of every `add-checkpoint` (verify the
 * log's signature, sign the cosignature) use the machine's other cores instead of queueing
 * behind request parsing on the main thread.
 *
 * Verification is exactly as strict as the synchronous path `@keytrail/core` uses in Node
 * (server-kit's `NODE_CRYPTO_BACKEND`, RFC 8032): a 64-byte signature, canonical encodings of
 * the public key and of R (y < 2^255 − 19) checked here, s < L checked by OpenSSL. A test
 * compares both on random and mutated inputs.
 * @module
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

// p = 2^255 − 19 little-endian with the sign bit on top: y ≥ p only when every bit of y is set
// except low ones of byte 0 (≥ 0xed).
function isCanonicalY(enc: Uint8Array): boolean {
  if (((enc[31] ?? 0) & 0x7f) !== 0x7f) return true;
  for (let i = 30; i >= 1; i--) if (enc[i] !== 0xff) return true;
  return (enc[0] ?? 0) < 0xed;
}

/** An Ed25519 public key prepared for {@link verifyAsync}; undefined if it can never verify. */
export function ed25519PublicKey(publicKey: Uint8Array): KeyObject | undefined {
  if (publicKey.length !== 32 || !isCanonicalY(publicKey)) return undefined;
  try {
    return createPublicKey({
      key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') },
      format: 'jwk',
    });
  } catch {
    return undefined;
  }
}

/** Strict Ed25519 verification on the thread pool; false for any invalid input. */
export function verifyAsync(
  key: KeyObject | undefined,
  message: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  if (!key || signature.length !== 64 || !isCanonicalY(signature.subarray(0, 32))) {
    return Promise.resolve(false);
  }
  return new Promise((resolve) => {
    try {
      verify(null, message, key, signature, (err, ok) => {
        resolve(!err && ok);
      });
    } catch {
      resolve(false);
    }
  });
}

/** Ed25519 signing on the thread pool. */
export function signAsync(key: KeyObject, message: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    sign(null, message, key, (err, sig) => {
      if (err) reject(err);
      else resolve(new Uint8Array(sig));
    });
  });
}
