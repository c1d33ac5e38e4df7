/**
 * Secret handling for the identity service: random opaque tokens (256 bits), SHA-256 digests
 * for storage, constant-time comparison, and AES-256-GCM sealing under the server's data key
 * for the few secrets the server must be able to read back (OIDC client secrets, TOTP seeds,
 * token-signing keys). NIST SP 800-38D (GCM) with 96-bit random nonces.
 * @module
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';

/** Bytes of entropy in every opaque token (refresh tokens, flow secrets, SCIM tokens). */
export const TOKEN_BYTES = 32;

/** SHA-256 of a string (UTF-8) or bytes. */
export function sha256(data: string | Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

/** A fresh 256-bit opaque token, base64url without padding (43 characters). */
export function randomToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/** A fresh random identifier (128 bits, base64url), for rows that need unguessable ids. */
export function randomId(): string {
  return randomBytes(16).toString('base64url');
}

/** Constant-time equality of two byte strings (false, not a throw, on a length mismatch). */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return timingSafeEqual(a, b);
}

/** Constant-time equality of two strings, compared as SHA-256 digests so lengths do not leak. */
export function constantTimeEqualStrings(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Seals `plaintext` under `key` (32 bytes) with AES-256-GCM; `aad` binds the ciphertext to its
 * row (for example `"totp:" + accountId`), so a sealed value cannot be moved to another row.
 * Output: nonce(12) || ciphertext || tag(16).
 */
export function seal(key: Uint8Array, plaintext: Uint8Array, aad: string): Uint8Array {
  if (key.length !== 32) throw new RangeError('seal: key must be 32 bytes');
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([c.update(plaintext), c.final()]);
  return new Uint8Array(Buffer.concat([nonce, body, c.getAuthTag()]));
}

/** Opens a value made by {@link seal}; returns `undefined` when it does not authenticate. */
export function open(key: Uint8Array, sealed: Uint8Array, aad: string): Uint8Array | undefined {
  if (key.length !== 32) throw new RangeError('open: key must be 32 bytes');
  if (sealed.length < NONCE_BYTES + TAG_BYTES) return undefined;
  try {
    const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, NONCE_BYTES));
    d.setAAD(Buffer.from(aad, 'utf8'));
    d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const out = Buffer.concat([
      d.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)),
      d.final(),
    ]);
    return new Uint8Array(out);
  } catch {
    return undefined;
  }
}
