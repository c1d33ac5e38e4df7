/**
 * Streaming attachment encryption: XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03) over 256 KiB
 * chunks in the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, "Online
 * Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015), as age's
 * payload format uses it:
 *
 * - stream = header ‖ chunk_0 ‖ … ‖ chunk_{n−1}; header (wire type `attachmentHeader` 0x0c) =
 *   version ‖ type ‖ u8 log2(chunk size) = 18 ‖ salt (16 random bytes);
 * - chunk_i = XChaCha20-Poly1305(K, nonce = salt ‖ u56 i ‖ final flag, plaintext_i,
 *   ad = header); every chunk but the last carries exactly 256 KiB of plaintext, the last carries
 *   0 … 256 KiB and has final flag 1 (an empty attachment is one empty final chunk);
 * - digest = SHA-256(`Keytrail_AttachmentDigest_v1` ‖ header ‖ SHA-256(chunk_0) ‖ … ‖
 *   SHA-256(chunk_{n−1})): collision-resistant over the whole ciphertext (a hash list), so a
 *   sender cannot make one pointer open to different contents for different recipients, and its
 *   per-chunk hashes can run in parallel with encryption.
 *
 * The key K (random per attachment), the digest and the sizes travel inside the ratchet in an
 * {@link AttachmentPointer}. Reordering (index in the nonce), truncation at a chunk boundary
 * (no final chunk), extension (data after the final chunk) and splicing chunks of another
 * attachment (other K and salt) all fail authentication. Plaintext is released chunk by chunk,
 * each chunk authenticated; a consumer must discard what it received if the stream then fails.
 * @module
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { seal } from './aead.ts';
import { Writer, decodeStrict } from './codec.ts';
import { MalformedError, VerificationError } from './errors.ts';
import { LABELS, label } from './kdf.ts';
import { equalBytes } from './bytes.ts';
import { getCryptoProvider } from './provider.ts';

/** Plaintext bytes per chunk: 256 KiB. */
export const ATTACHMENT_CHUNK_SIZE: number = 256 * 1024;
const CHUNK_LOG2 = 18;
const TAG = 16;
const SEALED_CHUNK = ATTACHMENT_CHUNK_SIZE + TAG;
/** Length of the stream header. */
export const ATTACHMENT_HEADER_SIZE: number = 2 + 1 + 16;
/** Largest attachment (2^40 bytes, 4 Mi chunks). */
export const MAX_ATTACHMENT_SIZE: number = 2 ** 40;

/** What the sender puts inside the ratchet message (wire type `attachmentPointer` 0x0b). */
export interface AttachmentPointer {
  readonly key: Uint8Array;
  readonly digest: Uint8Array;
  readonly plaintextSize: number;
  readonly ciphertextSize: number;
}

/** Encodes a pointer. */
export function encodeAttachmentPointer(p: AttachmentPointer): Uint8Array {
  return new Writer(82)
    .header('attachmentPointer')
    .fixed(p.key, 32)
    .fixed(p.digest, 32)
    .u64(p.plaintextSize)
    .u64(p.ciphertextSize)
    .finish();
}

/**
 * Decodes a pointer; checks that the two sizes agree.
 * @throws MalformedError `ERR_ENCODING_*`
 */
export function decodeAttachmentPointer(bytes: Uint8Array): AttachmentPointer {
  return decodeStrict(bytes, 128, (r) => {
    r.header('attachmentPointer');
    const p = {
      key: r.fixed(32),
      digest: r.fixed(32),
      plaintextSize: r.u64(),
      ciphertextSize: r.u64(),
    };
    if (
      p.plaintextSize > MAX_ATTACHMENT_SIZE ||
      ciphertextSizeOf(p.plaintextSize) !== p.ciphertextSize
    ) {
      throw new MalformedError('ERR_ENCODING_MALFORMED', 'attachment sizes inconsistent');
    }
    return p;
  });
}

/** The ciphertext length of an attachment of `plaintextSize` bytes. */
export function ciphertextSizeOf(plaintextSize: number): number {
  const chunks = Math.max(1, Math.ceil(plaintextSize / ATTACHMENT_CHUNK_SIZE));
  return ATTACHMENT_HEADER_SIZE + plaintextSize + chunks * TAG;
}

function chunkNonce(salt: Uint8Array, index: number, final: boolean): Uint8Array {
  const n = new Uint8Array(24);
  n.set(salt, 0);
  // u56 big-endian index in bytes 16..22 (index < 2^53 always).
  let v = index;
  for (let i = 22; i >= 16; i--) {
    n[i] = v % 256;
    v = Math.floor(v / 256);
  }
  n[23] = final ? 1 : 0;
  return n;
}

/** The per-chunk hash, on the provider (async where it can run off-thread). */
type ChunkHasher = (sealed: Uint8Array) => Uint8Array | Promise<Uint8Array>;

function chunkHasher(useAsync: boolean): ChunkHasher {
  const p = getCryptoProvider();
  const asyncHash = p.sha256Async?.bind(p);
  if (useAsync && asyncHash !== undefined) return asyncHash;
  return (b) => p.sha256(b);
}

/** Accumulates the digest: label ‖ header ‖ per-chunk hashes, in chunk order. */
class DigestBuilder {
  private readonly outer = sha256.create();
  private readonly pending: Promise<Uint8Array>[] = [];
  private readonly hash: ChunkHasher;
  constructor(header: Uint8Array, hash: ChunkHasher) {
    this.hash = hash;
    this.outer.update(label(LABELS.attachmentDigest)).update(header);
  }
  /**
   * Adds a chunk. Synchronous hashes are folded in at once; asynchronous ones are queued, and a
   * promise is returned when the window of pending hashes is full (back-pressure).
   */
  add(sealed: Uint8Array): Promise<void> | undefined {
    const h = this.hash(sealed);
    if (h instanceof Uint8Array && this.pending.length === 0) {
      this.outer.update(h);
      return undefined;
    }
    this.pending.push(Promise.resolve(h));
    return this.pending.length > 4 ? this.drain(4) : undefined;
  }
  private async drain(keep: number): Promise<void> {
    while (this.pending.length > keep) {
      const h = this.pending.shift();
      if (h !== undefined) this.outer.update(await h);
    }
  }
  /** Adds a chunk with a synchronous hasher. */
  addSync(sealed: Uint8Array): void {
    const h = this.hash(sealed);
    if (!(h instanceof Uint8Array) || this.pending.length !== 0) {
      throw new TypeError('addSync with an async hasher');
    }
    this.outer.update(h);
  }
  async digest(): Promise<Uint8Array> {
    await this.drain(0);
    return this.outer.digest();
  }
  digestSync(): Uint8Array {
    if (this.pending.length !== 0) throw new TypeError('digestSync with pending async hashes');
    return this.outer.digest();
  }
}

/**
 * Chunk-by-chunk encryption for callers that do their own I/O: write {@link header} first, then
 * the result of {@link encryptChunk} for each 256 KiB of plaintext (the last call with
 * `final = true`), then send the pointer from {@link finish} inside the ratchet.
 */
export class AttachmentEncryptor {
  /** The stream header (the first ciphertext bytes). */
  readonly header: Uint8Array;
  private readonly key: Uint8Array;
  private readonly salt: Uint8Array;
  private index = 0;
  private plaintextSize = 0;
  private done = false;
  private readonly digest: DigestBuilder;

  constructor(options: { key?: Uint8Array } = {}) {
    const p = getCryptoProvider();
    this.key = options.key ?? p.randomBytes(32);
    if (this.key.length !== 32) throw new RangeError('attachment key must be 32 bytes');
    this.salt = p.randomBytes(16);
    this.header = new Writer(ATTACHMENT_HEADER_SIZE)
      .header('attachmentHeader')
      .u8(CHUNK_LOG2)
      .fixed(this.salt, 16)
      .finish();
    this.digest = new DigestBuilder(this.header, chunkHasher(false));
  }

  /**
   * Encrypts one chunk: exactly 256 KiB unless `final`.
   * @throws RangeError on a wrong chunk length or a chunk after the final one
   */
  encryptChunk(plaintext: Uint8Array, final: boolean): Uint8Array {
    const sealed = this.sealChunk(plaintext, final);
    this.digest.addSync(sealed);
    return sealed;
  }

  /** @internal Seals without hashing (the async stream hashes off-thread). */
  sealChunk(plaintext: Uint8Array, final: boolean): Uint8Array {
    if (this.done) throw new RangeError('attachment already finished');
    if (
      final ? plaintext.length > ATTACHMENT_CHUNK_SIZE : plaintext.length !== ATTACHMENT_CHUNK_SIZE
    ) {
      throw new RangeError('attachment chunk has the wrong length');
    }
    const sealed = seal(this.key, chunkNonce(this.salt, this.index, final), plaintext, this.header);
    this.index++;
    this.plaintextSize += plaintext.length;
    this.done = final;
    return sealed;
  }

  /** @internal The pointer, given the digest. */
  pointerWith(digest: Uint8Array): AttachmentPointer {
    if (!this.done) throw new RangeError('attachment not finished: the last chunk must be final');
    return {
      key: this.key,
      digest,
      plaintextSize: this.plaintextSize,
      ciphertextSize: ciphertextSizeOf(this.plaintextSize),
    };
  }

  /** The pointer, after the final chunk. */
  finish(): AttachmentPointer {
    return this.pointerWith(this.digest.digestSync());
  }
}

async function* iterate(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  for await (const piece of source) yield piece;
}

/**
 * Encrypts a plaintext stream of any piece sizes without holding more than one chunk. Returns
 * the ciphertext stream and a promise of the pointer that resolves when the stream has been
 * consumed to its end. Pieces of the source must not be modified after they are yielded.
 *
 * @example
 * ```ts
 * const { stream, pointer } = encryptAttachment(fileChunks);
 * for await (const part of stream) await upload(part);
 * const body = encodeAttachmentPointer(await pointer); // send inside the ratchet
 * ```
 */
export function encryptAttachment(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options: { key?: Uint8Array } = {},
): { stream: AsyncIterable<Uint8Array>; pointer: Promise<AttachmentPointer> } {
  let resolve: (p: AttachmentPointer) => void = () => undefined;
  let reject: (e: unknown) => void = () => undefined;
  const pointer = new Promise<AttachmentPointer>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // An unobserved failure must not become an unhandled rejection: the stream throws it too.
  pointer.catch(() => undefined);
  async function* run(): AsyncGenerator<Uint8Array> {
    try {
      const enc = new AttachmentEncryptor(options);
      const digest = new DigestBuilder(enc.header, chunkHasher(true));
      yield enc.header;
      let total = 0;
      let held: Uint8Array | undefined;
      let partial = new Uint8Array(ATTACHMENT_CHUNK_SIZE);
      let fill = 0;
      const emit = async (pt: Uint8Array, final: boolean): Promise<Uint8Array> => {
        const sealed = enc.sealChunk(pt, final);
        const wait = digest.add(sealed);
        if (wait !== undefined) await wait;
        return sealed;
      };
      for await (const piece of iterate(source)) {
        total += piece.length;
        if (total > MAX_ATTACHMENT_SIZE) throw new RangeError('attachment too large');
        let off = 0;
        while (off < piece.length) {
          // More plaintext follows, so a held full chunk is not the last one.
          if (held !== undefined) {
            yield await emit(held, false);
            held = undefined;
          }
          if (fill === 0 && piece.length - off >= ATTACHMENT_CHUNK_SIZE) {
            held = piece.subarray(off, off + ATTACHMENT_CHUNK_SIZE); // no copy
            off += ATTACHMENT_CHUNK_SIZE;
            continue;
          }
          const n = Math.min(ATTACHMENT_CHUNK_SIZE - fill, piece.length - off);
          partial.set(piece.subarray(off, off + n), fill);
          fill += n;
          off += n;
          if (fill === ATTACHMENT_CHUNK_SIZE) {
            held = partial;
            partial = new Uint8Array(ATTACHMENT_CHUNK_SIZE);
            fill = 0;
          }
        }
      }
      yield await emit(held ?? partial.subarray(0, fill), true);
      resolve(enc.pointerWith(await digest.digest()));
    } catch (e) {
      reject(e);
      throw e;
    }
  }
  return { stream: run(), pointer };
}

/**
 * Chunk-by-chunk decryption for callers that do their own I/O: feed ciphertext pieces of any
 * size to {@link update}, which returns the plaintext chunks completed so far, then call
 * {@link finish} at the end of the input, which checks the final chunk, the size and the digest.
 * Whole chunks are read in place, so a piece must not be modified after it was passed in.
 */
export class AttachmentDecryptor {
  private readonly pointer: AttachmentPointer;
  private header: Uint8Array | undefined;
  private salt: Uint8Array | undefined;
  private readonly headerBuf = new Uint8Array(ATTACHMENT_HEADER_SIZE);
  private headerFill = 0;
  private held: Uint8Array | undefined;
  private buf = new Uint8Array(SEALED_CHUNK);
  private fill = 0;
  private index = 0;
  private plaintextSize = 0;
  private finished = false;
  private digest: DigestBuilder | undefined;
  private readonly hash: ChunkHasher;

  constructor(pointer: AttachmentPointer, options: { asyncHash?: boolean } = {}) {
    if (pointer.key.length !== 32 || pointer.digest.length !== 32) {
      throw new RangeError('attachment pointer key and digest must be 32 bytes');
    }
    this.pointer = pointer;
    this.hash = chunkHasher(options.asyncHash ?? false);
  }

  /** @internal The digest over everything consumed (awaiting off-thread chunk hashes). */
  computeDigest(): Promise<Uint8Array> {
    return this.digest === undefined ? Promise.resolve(new Uint8Array(32)) : this.digest.digest();
  }

  private openChunk(sealed: Uint8Array, final: boolean): Uint8Array | undefined {
    if (this.header === undefined || this.salt === undefined) return undefined;
    return getCryptoProvider().xchacha20poly1305Open(
      this.pointer.key,
      chunkNonce(this.salt, this.index, final),
      sealed,
      this.header,
    );
  }

  private accept(
    sealed: Uint8Array,
    plaintext: Uint8Array,
    out: Uint8Array[],
    pending: Promise<void>[],
  ): void {
    this.index++;
    this.plaintextSize += plaintext.length;
    if (this.plaintextSize > this.pointer.plaintextSize) {
      throw new VerificationError(
        'ERR_ATTACHMENT_SIZE_MISMATCH',
        'attachment longer than announced',
      );
    }
    const wait = this.digest?.add(sealed);
    if (wait !== undefined) pending.push(wait);
    out.push(plaintext);
  }

  /**
   * Consumes ciphertext; returns completed plaintext chunks.
   * @throws MalformedError `ERR_UNSUPPORTED_VERSION`, `ERR_UNEXPECTED_TYPE`, `ERR_ENCODING_MALFORMED`
   * @throws VerificationError `ERR_ATTACHMENT_CHUNK_INVALID`, `ERR_ATTACHMENT_TRAILING_DATA`,
   *   `ERR_ATTACHMENT_SIZE_MISMATCH`
   */
  update(piece: Uint8Array, pending: Promise<void>[] = []): Uint8Array[] {
    const out: Uint8Array[] = [];
    let off = 0;
    if (this.finished) throw new RangeError('attachment decryptor already finished');
    if (this.header === undefined) {
      const n = Math.min(ATTACHMENT_HEADER_SIZE - this.headerFill, piece.length);
      this.headerBuf.set(piece.subarray(0, n), this.headerFill);
      this.headerFill += n;
      off = n;
      if (this.headerFill < ATTACHMENT_HEADER_SIZE) return out;
      const header = this.headerBuf.slice();
      this.salt = decodeStrict(header, ATTACHMENT_HEADER_SIZE, (r) => {
        r.header('attachmentHeader');
        if (r.u8() !== CHUNK_LOG2) throw new MalformedError('ERR_ENCODING_MALFORMED', 'chunk size');
        return r.fixed(16);
      });
      this.header = header;
      this.digest = new DigestBuilder(header, this.hash);
    }
    while (off < piece.length) {
      // Bytes follow a held full chunk, so that chunk is not the final one.
      if (this.held !== undefined) this.openHeld(out, pending);
      if (this.fill === 0 && piece.length - off >= SEALED_CHUNK) {
        this.held = piece.subarray(off, off + SEALED_CHUNK); // no copy
        off += SEALED_CHUNK;
        continue;
      }
      const n = Math.min(SEALED_CHUNK - this.fill, piece.length - off);
      this.buf.set(piece.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      if (this.fill === SEALED_CHUNK) {
        this.held = this.buf;
        this.buf = new Uint8Array(SEALED_CHUNK);
        this.fill = 0;
      }
    }
    return out;
  }

  private openHeld(out: Uint8Array[], pending: Promise<void>[]): void {
    const sealed = this.held;
    if (sealed === undefined) return;
    const pt = this.openChunk(sealed, false);
    if (pt === undefined) {
      const asFinal = this.openChunk(sealed, true);
      throw new VerificationError(
        asFinal === undefined ? 'ERR_ATTACHMENT_CHUNK_INVALID' : 'ERR_ATTACHMENT_TRAILING_DATA',
        asFinal === undefined
          ? 'attachment chunk does not authenticate'
          : 'data after the final chunk',
      );
    }
    this.held = undefined;
    this.accept(sealed, pt, out, pending);
  }

  /** @internal Opens the last chunk and checks the size; the digest is checked by the caller. */
  finishChunks(pending: Promise<void>[] = []): Uint8Array[] {
    if (this.finished) throw new RangeError('attachment decryptor already finished');
    this.finished = true;
    // The last complete chunk is either held whole or assembled in the buffer.
    const sealed = this.held ?? this.buf.subarray(0, this.fill);
    if (this.header === undefined || sealed.length < TAG) {
      throw new VerificationError(
        'ERR_ATTACHMENT_TRUNCATED',
        'attachment ends before its final chunk',
      );
    }
    const pt = this.openChunk(sealed, true);
    if (pt === undefined) {
      const asMiddle = sealed.length === SEALED_CHUNK ? this.openChunk(sealed, false) : undefined;
      throw new VerificationError(
        asMiddle === undefined ? 'ERR_ATTACHMENT_CHUNK_INVALID' : 'ERR_ATTACHMENT_TRUNCATED',
        asMiddle === undefined ? 'attachment chunk does not authenticate' : 'attachment truncated',
      );
    }
    const out: Uint8Array[] = [];
    this.accept(sealed, pt, out, pending);
    if (this.plaintextSize !== this.pointer.plaintextSize) {
      throw new VerificationError(
        'ERR_ATTACHMENT_SIZE_MISMATCH',
        'attachment size differs from pointer',
      );
    }
    return out;
  }

  /** @internal Compares a computed digest with the pointer's. */
  checkDigest(digest: Uint8Array): void {
    if (!equalBytes(digest, this.pointer.digest)) {
      throw new VerificationError('ERR_ATTACHMENT_DIGEST_MISMATCH', 'attachment digest differs');
    }
  }

  /**
   * Ends the input: opens the final chunk and checks the size and the digest.
   * @throws VerificationError `ERR_ATTACHMENT_TRUNCATED`, `ERR_ATTACHMENT_CHUNK_INVALID`,
   *   `ERR_ATTACHMENT_SIZE_MISMATCH`, `ERR_ATTACHMENT_DIGEST_MISMATCH`
   */
  finish(): Uint8Array[] {
    const out = this.finishChunks();
    this.checkDigest(this.digest?.digestSync() ?? new Uint8Array(32));
    return out;
  }
}

/**
 * Decrypts a ciphertext stream of any piece sizes, yielding authenticated plaintext chunks as
 * they complete; throws (typed) on reordering, truncation, extension, splicing, a size or digest
 * mismatch. Everything yielded before a throw must be discarded by the consumer.
 *
 * @example
 * ```ts
 * for await (const chunk of decryptAttachment(download(), pointer)) await file.write(chunk);
 * ```
 */
export async function* decryptAttachment(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  pointer: AttachmentPointer,
): AsyncGenerator<Uint8Array> {
  const dec = new AttachmentDecryptor(pointer, { asyncHash: true });
  for await (const piece of iterate(source)) {
    const pending: Promise<void>[] = [];
    const chunks = dec.update(piece, pending);
    for (const w of pending) await w;
    for (const c of chunks) yield c;
  }
  const pending: Promise<void>[] = [];
  const last = dec.finishChunks(pending);
  for (const w of pending) await w;
  dec.checkDigest(await dec.computeDigest());
  for (const c of last) yield c;
}
