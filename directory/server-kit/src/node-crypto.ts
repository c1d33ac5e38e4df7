/**
 * The `node:crypto` backend for `@keytrail/core`'s crypto seam: native SHA-256 and Ed25519.
 * Results are identical to the noble backend; strictness matches RFC 8032 (non-canonical
 * point encodings are rejected before OpenSSL sees them, and OpenSSL rejects s ≥ L).
 * @module
 */
import { createPublicKey, hash, verify, type KeyObject } from 'node:crypto';
import { setCryptoBackend, type CryptoBackend } from '@keytrail/core/crypto';

const keyCache = new Map<string, KeyObject>();
const KEY_CACHE_MAX = 4096;

function ed25519Key(publicKey: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey).toString('base64url');
  let key = keyCache.get(id);
  if (!key) {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: id }, format: 'jwk' });
    if (keyCache.size >= KEY_CACHE_MAX) keyCache.clear();
    keyCache.set(id, key);
  }
  return key;
}

// p = 2^255 - 19, little-endian with the sign bit on top: an encoding is canonical iff y < p,
// and y ≥ p only when every bit of y is set except the low ones of byte 0 (≥ 0xed).
function isCanonicalY(enc: Uint8Array): boolean {
  if (((enc[31] ?? 0) & 0x7f) !== 0x7f) return true;
  for (let i = 30; i >= 1; i--) if (enc[i] !== 0xff) return true;
  return (enc[0] ?? 0) < 0xed;
}

/** The native backend. */
export const NODE_CRYPTO_BACKEND: CryptoBackend = Object.freeze({
  name: 'node',
  sha256: (data: Uint8Array): Uint8Array => hash('sha256', data, 'buffer'),
  ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    if (signature.length !== 64 || publicKey.length !== 32) return false;
    if (!isCanonicalY(publicKey) || !isCanonicalY(signature.subarray(0, 32))) return false;
    try {
      return verify(null, message, ed25519Key(publicKey), signature);
    } catch {
      return false;
    }
  },
});

/** Installs the native backend for the whole process. */
export function installNodeCrypto(): void {
  setCryptoBackend(NODE_CRYPTO_BACKEND);
}
