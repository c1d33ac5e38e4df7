/**
 * The crypto seam. Every speed-critical primitive of the protocol (X25519, Ed25519,
 * XChaCha20-Poly1305, HMAC-SHA256, SHA-256, randomness) goes through the
 * {@link CryptoProvider} installed here. The default, {@link NOBLE_PROVIDER}, is pure
 * `@noble/*` and runs in every JavaScript engine. A Node application installs the `node:crypto`
 * provider from `@keytrail/messaging-core/node` (about 20× faster for X25519 and Ed25519 and about
 * 8× for bulk XChaCha20-Poly1305):
 *
 * ```ts
 * import { setCryptoProvider } from '@keytrail/messaging-core';
 * import { createNodeCryptoProvider } from '@keytrail/messaging-core/node';
 * setCryptoProvider(createNodeCryptoProvider());
 * ```
 *
 * A provider may also offer {@link ChunkOffload}: attachment chunks sealed or opened together
 * with their SHA-256, off the calling thread (the Node provider runs them on worker threads).
 * Attachment streams then keep a bounded window of chunks in flight and consume the results in
 * order; the bytes are the same.
 *
 * Every provider must give byte-identical results (the tests run the golden transcripts through
 * both). Algorithms: X25519 (RFC 7748 §5), Ed25519 (RFC 8032 §5.1, strict verification: canonical
 * encodings only, ZIP-215 off), XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03 §2), HMAC-SHA256
 * (RFC 2104), SHA-256 (FIPS 180-4).
 * @module
 */
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';

/** The primitives the protocol needs from its host. All inputs and outputs are raw bytes. */
export interface CryptoProvider {
  /** A short name for diagnostics and benchmarks, such as `noble` or `node`. */
  readonly name: string;
  /** `length` bytes from a cryptographically secure generator. */
  randomBytes(length: number): Uint8Array;
  /** The X25519 public key (u-coordinate) of a 32-byte private scalar (clamped per RFC 7748). */
  x25519PublicKey(privateKey: Uint8Array): Uint8Array;
  /**
   * The raw X25519 function. The protocol validates `publicKey` (canonical, not of low order)
   * before calling and rejects an all-zero result after; a provider may also throw on one.
   */
  x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  /** The Ed25519 public key of a 32-byte seed. */
  ed25519PublicKey(seed: Uint8Array): Uint8Array;
  /** A 64-byte Ed25519 signature (deterministic, RFC 8032 §5.1.6). */
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  /**
   * Strict Ed25519 verification: non-canonical point or scalar encodings are rejected (ZIP-215
   * off). Returns false for any invalid input rather than throwing.
   */
  ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
  /** HMAC-SHA256. */
  hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array;
  /** SHA-256. */
  sha256(data: Uint8Array): Uint8Array;
  /**
   * Optional: attachment chunks sealed or opened with their SHA-256 off the calling thread. The
   * streaming functions use it when present; the chunk-by-chunk classes never do.
   */
  readonly chunkOffload?: ChunkOffload;
  /** XChaCha20-Poly1305 encryption: returns ciphertext ‖ 16-byte tag. */
  xchacha20poly1305Seal(
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    associatedData: Uint8Array,
  ): Uint8Array;
  /** XChaCha20-Poly1305 decryption of ciphertext ‖ tag; `undefined` when the tag does not verify. */
  xchacha20poly1305Open(
    key: Uint8Array,
    nonce: Uint8Array,
    sealed: Uint8Array,
    associatedData: Uint8Array,
  ): Uint8Array | undefined;
}

/** A sealed attachment chunk with the SHA-256 of its bytes. */
export interface SealedChunk {
  /**
   * Ciphertext ‖ 16-byte tag, as {@link CryptoProvider.xchacha20poly1305Seal} returns it; or,
   * when {@link tag} is given, the ciphertext alone (which saves a provider a copy).
   */
  readonly sealed: Uint8Array;
  /** The 16-byte tag, when it is not at the end of `sealed`. */
  readonly tag?: Uint8Array;
  /** SHA-256 of the sealed chunk (ciphertext ‖ tag). */
  readonly sha256: Uint8Array;
}

/** An opened attachment chunk with the SHA-256 of the sealed bytes it came from. */
export interface OpenedChunk {
  /** The plaintext; `undefined` when the tag does not verify. */
  readonly plaintext: Uint8Array | undefined;
  /** SHA-256 of the sealed input (meaningless when `plaintext` is `undefined`). */
  readonly sha256: Uint8Array;
}

/**
 * XChaCha20-Poly1305 plus SHA-256 of the sealed bytes for one attachment chunk, as one job that
 * may run off the calling thread. Results must equal
 * `xchacha20poly1305Seal` / `xchacha20poly1305Open` and `sha256` byte for byte. Inputs are
 * read before the returned promise settles and must not be modified until then; they are never
 * detached or written to. A job rejects only when the host fails (a worker died, the provider was
 * closed), never for an unauthentic chunk.
 */
export interface ChunkOffload {
  /** How many chunks a stream should keep in flight (the streams cap it at 16). */
  readonly window: number;
  /** Seals one chunk and hashes the result. */
  seal(
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    associatedData: Uint8Array,
  ): Promise<SealedChunk>;
  /** Hashes one sealed chunk and opens it. */
  open(
    key: Uint8Array,
    nonce: Uint8Array,
    sealed: Uint8Array,
    associatedData: Uint8Array,
  ): Promise<OpenedChunk>;
  /**
   * Optional: runs one job that is still waiting for another thread on the calling thread, and
   * returns whether there was one. A stream calls it when the result it needs next has not
   * arrived, instead of waiting idle.
   */
  readonly help?: () => boolean;
}

function webRandomBytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  // getRandomValues fills at most 65,536 bytes per call.
  for (let off = 0; off < length; off += 65536) {
    crypto.getRandomValues(out.subarray(off, Math.min(length, off + 65536)));
  }
  return out;
}

/** The pure-JavaScript provider on `@noble/curves`, `@noble/hashes` and `@noble/ciphers`. */
export const NOBLE_PROVIDER: CryptoProvider = Object.freeze({
  name: 'noble',
  randomBytes: webRandomBytes,
  x25519PublicKey: (privateKey: Uint8Array): Uint8Array => x25519.getPublicKey(privateKey),
  x25519: (privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array =>
    x25519.getSharedSecret(privateKey, publicKey),
  ed25519PublicKey: (seed: Uint8Array): Uint8Array => ed25519.getPublicKey(seed),
  ed25519Sign: (seed: Uint8Array, message: Uint8Array): Uint8Array => ed25519.sign(message, seed),
  ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    if (signature.length !== 64 || publicKey.length !== 32) return false;
    try {
      return ed25519.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false;
    }
  },
  hmacSha256: (key: Uint8Array, data: Uint8Array): Uint8Array => hmac(sha256, key, data),
  sha256: (data: Uint8Array): Uint8Array => sha256(data),
  xchacha20poly1305Seal: (
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    associatedData: Uint8Array,
  ): Uint8Array => xchacha20poly1305(key, nonce, associatedData).encrypt(plaintext),
  xchacha20poly1305Open(
    key: Uint8Array,
    nonce: Uint8Array,
    sealed: Uint8Array,
    associatedData: Uint8Array,
  ): Uint8Array | undefined {
    if (sealed.length < 16) return undefined;
    try {
      return xchacha20poly1305(key, nonce, associatedData).decrypt(sealed);
    } catch {
      return undefined;
    }
  },
});

let provider: CryptoProvider = NOBLE_PROVIDER;

/** Installs the provider used by every later call. Returns the previous one. */
export function setCryptoProvider(next: CryptoProvider): CryptoProvider {
  const prev = provider;
  provider = next;
  return prev;
}

/** The provider currently in use. */
export function getCryptoProvider(): CryptoProvider {
  return provider;
}

/**
 * A provider identical to `base` except for its random generator: for golden transcripts and
 * reproducible tests only. Never use a deterministic generator in production.
 */
export function withRandomSource(
  base: CryptoProvider,
  randomBytes: (length: number) => Uint8Array,
): CryptoProvider {
  return Object.freeze({ ...base, name: `${base.name}+fixed-random`, randomBytes });
}
