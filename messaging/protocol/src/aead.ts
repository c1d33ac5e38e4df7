/**
 * AEAD: XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03 §2; RFC 8439 §2.8 with a 24-byte nonce
 * through HChaCha20) through the provider, with typed errors.
 * @module
 */
import { VerificationError, type MessagingErrorCode } from './errors.ts';
import { getCryptoProvider } from './provider.ts';

/** Key length of XChaCha20-Poly1305. */
export const AEAD_KEY_SIZE = 32;
/** Nonce length of XChaCha20-Poly1305. */
export const AEAD_NONCE_SIZE = 24;
/** Tag length of Poly1305. */
export const AEAD_TAG_SIZE = 16;

const EMPTY = new Uint8Array(0);

/** Encrypts; returns ciphertext ‖ tag. */
export function seal(
  key: Uint8Array,
  nonce: Uint8Array,
  plaintext: Uint8Array,
  associatedData: Uint8Array = EMPTY,
): Uint8Array {
  if (key.length !== AEAD_KEY_SIZE) throw new RangeError('seal: key must be 32 bytes');
  if (nonce.length !== AEAD_NONCE_SIZE) throw new RangeError('seal: nonce must be 24 bytes');
  return getCryptoProvider().xchacha20poly1305Seal(key, nonce, plaintext, associatedData);
}

/**
 * Decrypts ciphertext ‖ tag.
 * @throws VerificationError with `code` (default `ERR_DECRYPTION_FAILED`) when the tag fails
 */
export function open(
  key: Uint8Array,
  nonce: Uint8Array,
  sealed: Uint8Array,
  associatedData: Uint8Array = EMPTY,
  code: MessagingErrorCode = 'ERR_DECRYPTION_FAILED',
): Uint8Array {
  if (key.length !== AEAD_KEY_SIZE) throw new RangeError('open: key must be 32 bytes');
  if (nonce.length !== AEAD_NONCE_SIZE) throw new RangeError('open: nonce must be 24 bytes');
  const pt =
    sealed.length < AEAD_TAG_SIZE
      ? undefined
      : getCryptoProvider().xchacha20poly1305Open(key, nonce, sealed, associatedData);
  if (pt === undefined) throw new VerificationError(code, 'authentication failed');
  return pt;
}
