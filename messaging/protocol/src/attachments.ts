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
 *   per-chunk hashes are independent, so they can be computed beside the AEAD.
 *
 * The key K (random per attachment), the digest and the sizes travel inside the ratchet in an
 * {@link AttachmentPointer}. Reordering (index in the nonce), truncation at a chunk boundary
 * (no final chunk), extension (data after the final chunk) and splicing chunks of another
 * attachment (other K and salt) all fail authentication. Plaintext is released chunk by chunk,
 * each chunk authenticated; a consumer must discard what it received if the stream then fails.
 *
 * When the provider offers a {@link ChunkOffload} (the Node provider's worker threads), the
 * streaming functions hand each chunk's AEAD and hash to it as one job and keep a bounded window
 * of jobs in flight, consuming the results strictly in chunk order: the index, the final flag,
 * the size checks and the digest are all decided on the calling thread, exactly as on one thread.
 * @module
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { seal } from './aead.ts';
import { Writer, decodeStrict } from './codec.ts';
import { MalformedError, VerificationError } from './errors.ts';
import { LABELS, label } from './kdf.ts';
import { equalBytes } from './bytes.ts';
import { type ChunkOffload, getCryptoProvider } from './provider.ts';

/** Plaintext bytes per chunk: 256 KiB. */
export const ATTACHMENT_CHUNK_SIZE: number = 256 * 1024;
const CHUNK_LOG2 = 18;
const TAG = 16;
const SEALED_CHUNK = ATTACHMENT_CHUNK_SIZE + TAG;
/** Length of the stream header. */
export const ATTACHMENT_HEADER_SIZE: number = 2 + 1 + 16;
/** Largest attachment (2^40 bytes, 4 Mi chunks). */
export const MAX_ATTACHMENT_SIZE: number = 2 ** 40;
/** Most chunks a stream keeps in flight on an offloading provider (each ≤ 2 × 256 KiB). */
const MAX_WINDOW = 16;

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

/** Accumulates the digest: label ‖ header ‖ per-chunk hashes, in chunk order. */
class DigestBuilder {
  private readonly outer = sha256.create();
  constructor(header: Uint8Array) {
    this.outer.update(label(LABELS.attachmentDigest)).update(header);
  }
  add(chunkHash: Uint8Array): void {
    this.outer.update(chunkHash);
  }
  digest(): Uint8Array {
    return this.outer.digest();
  }
}

/** The provider's offload and the window to use with it, or `undefined` for one thread. */
function offloadWindow(): { offload: ChunkOffload; window: number } | undefined {
  const offload = getCryptoProvider().chunkOffload;
  if (offload === undefined) return undefined;
  const w = Math.floor(offload.window);
  return { offload, window: Math.min(MAX_WINDOW, Number.isFinite(w) && w > 1 ? w : 1) };
}

/**
 * A chunk job whose result is applied later, in chunk order: the promise settles off the calling
 * thread, the function it yields does the stateful part (digest, size checks) when called.
 */
type ChunkJob<T = Uint8Array> = Promise<() => T>;

/**
 * The chunk jobs a stream has in flight, consumed in chunk order. Jobs settle in any order; one
 * abandoned after an earlier failure is marked handled, so it is no unhandled rejection.
 */
class InOrder<T> {
  private readonly jobs: { job: ChunkJob<T>; settled: boolean }[] = [];
  private readonly offload: ChunkOffload;

  constructor(offload: ChunkOffload) {
    this.offload = offload;
  }

  get length(): number {
    return this.jobs.length;
  }

  push(job: ChunkJob<T>): void {
    const entry = { job, settled: false };
    const settle = (): void => {
      entry.settled = true;
    };
    job.then(settle, settle);
    this.jobs.push(entry);
  }

  /** The oldest job's result; rather than wait for it idle, first runs a job still queued. */
  async next(): Promise<T> {
    const entry = this.jobs.shift();
    if (entry === undefined) throw new TypeError('no chunk in flight');
    if (!entry.settled) this.offload.help?.();
    return (await entry.job)();
  }
}

/**
 * Chunk-by-chunk encryption for callers that do their own I/O: write {@link header} first, then
 * the result of {@link encryptChunk} for each 256 KiB of plaintext (the last call with
 * `final = true`), then send the pointer from {@link finish} inside the ratchet. Everything runs
 * on the calling thread.
 */
export class AttachmentEncryptor {
  /** The stream header (the first ciphertext bytes). */
  readonly header: Uint8Array;
  private readonly key: Uint8Array;
  private readonly salt: Uint8Array;
  private index = 0;
  private hashed = 0;
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
    this.digest = new DigestBuilder(this.header);
  }

  /**
   * Encrypts one chunk: exactly 256 KiB unless `final`.
   * @throws RangeError on a wrong chunk length or a chunk after the final one
   */
  encryptChunk(plaintext: Uint8Array, final: boolean): Uint8Array {
    const sealed = seal(this.key, this.nextNonce(plaintext, final), plaintext, this.header);
    this.addHash(getCryptoProvider().sha256(sealed));
    return sealed;
  }

  /**
   * @internal Hands one chunk to `offload`. The job's function must be called in chunk order;
   * it folds the chunk's hash into the digest and returns the sealed chunk, in one or two parts
   * (ciphertext and tag) to be sent in turn.
   * @throws RangeError as {@link encryptChunk}
   */
  encryptChunkWith(
    offload: ChunkOffload,
    plaintext: Uint8Array,
    final: boolean,
  ): ChunkJob<Uint8Array[]> {
    const nonce = this.nextNonce(plaintext, final);
    return offload.seal(this.key, nonce, plaintext, this.header).then((r) => () => {
      if (r.sealed.length !== plaintext.length + (r.tag === undefined ? TAG : 0)) {
        throw new TypeError('chunk offload returned a sealed chunk of the wrong length');
      }
      if (r.tag !== undefined && r.tag.length !== TAG) {
        throw new TypeError('chunk offload returned a tag of the wrong length');
      }
      this.addHash(r.sha256);
      return r.tag === undefined ? [r.sealed] : [r.sealed, r.tag];
    });
  }

  /** Checks a chunk's length, takes its index and returns its nonce. */
  private nextNonce(plaintext: Uint8Array, final: boolean): Uint8Array {
    if (this.done) throw new RangeError('attachment already finished');
    if (
      final ? plaintext.length > ATTACHMENT_CHUNK_SIZE : plaintext.length !== ATTACHMENT_CHUNK_SIZE
    ) {
      throw new RangeError('attachment chunk has the wrong length');
    }
    const nonce = chunkNonce(this.salt, this.index, final);
    this.index++;
    this.plaintextSize += plaintext.length;
    this.done = final;
    return nonce;
  }

  private addHash(chunkHash: Uint8Array): void {
    this.digest.add(chunkHash);
    this.hashed++;
  }

  /**
   * The pointer, after the final chunk.
   * @throws RangeError before the final chunk
   */
  finish(): AttachmentPointer {
    // `hashed` lags `index` only while offloaded jobs are outstanding: a caller bug.
    if (!this.done || this.hashed !== this.index) {
      throw new RangeError('attachment not finished: the last chunk must be final');
    }
    return {
      key: this.key,
      digest: this.digest.digest(),
      plaintextSize: this.plaintextSize,
      ciphertextSize: ciphertextSizeOf(this.plaintextSize),
    };
  }
}

async function* iterate(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  for await (const piece of source) yield piece;
}

/**
 * Cuts a plaintext stream into chunks: whole 256 KiB chunks of a piece are passed on without a
 * copy, smaller pieces are gathered into a fresh buffer per chunk. A full chunk is held back
 * until more plaintext or the end shows whether it is the final one.
 */
async function* plaintextChunks(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): AsyncGenerator<{ plaintext: Uint8Array; final: boolean }> {
  let total = 0;
  let held: Uint8Array | undefined;
  let partial = new Uint8Array(ATTACHMENT_CHUNK_SIZE);
  let fill = 0;
  for await (const piece of iterate(source)) {
    total += piece.length;
    if (total > MAX_ATTACHMENT_SIZE) throw new RangeError('attachment too large');
    let off = 0;
    while (off < piece.length) {
      // More plaintext follows, so a held full chunk is not the last one.
      if (held !== undefined) {
        yield { plaintext: held, final: false };
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
  yield { plaintext: held ?? partial.subarray(0, fill), final: true };
}

/**
 * Encrypts a plaintext stream of any piece sizes with bounded memory: one chunk being gathered,
 * plus on an offloading provider at most its window of chunks in flight (≤ 16 × 512 KiB). Returns
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
      const off = offloadWindow();
      yield enc.header;
      if (off === undefined) {
        for await (const c of plaintextChunks(source)) yield enc.encryptChunk(c.plaintext, c.final);
      } else {
        // Results are applied and yielded in chunk order.
        const inFlight = new InOrder<Uint8Array[]>(off.offload);
        for await (const c of plaintextChunks(source)) {
          inFlight.push(enc.encryptChunkWith(off.offload, c.plaintext, c.final));
          if (inFlight.length >= off.window) yield* await inFlight.next();
        }
        while (inFlight.length > 0) yield* await inFlight.next();
      }
      resolve(enc.finish());
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
 * Everything runs on the calling thread.
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

  constructor(pointer: AttachmentPointer) {
    if (pointer.key.length !== 32 || pointer.digest.length !== 32) {
      throw new RangeError('attachment pointer key and digest must be 32 bytes');
    }
    this.pointer = pointer;
  }

  /**
   * Consumes ciphertext; returns completed plaintext chunks.
   * @throws MalformedError `ERR_UNSUPPORTED_VERSION`, `ERR_UNEXPECTED_TYPE`, `ERR_ENCODING_MALFORMED`
   * @throws VerificationError `ERR_ATTACHMENT_CHUNK_INVALID`, `ERR_ATTACHMENT_TRAILING_DATA`,
   *   `ERR_ATTACHMENT_SIZE_MISMATCH`
   */
  update(piece: Uint8Array): Uint8Array[] {
    return this.takeChunks(piece).map((sealed) => this.openChunk(sealed, false));
  }

  /**
   * Ends the input: opens the final chunk and checks the size and the digest.
   * @throws VerificationError `ERR_ATTACHMENT_TRUNCATED`, `ERR_ATTACHMENT_CHUNK_INVALID`,
   *   `ERR_ATTACHMENT_SIZE_MISMATCH`, `ERR_ATTACHMENT_DIGEST_MISMATCH`
   */
  finish(): Uint8Array[] {
    const last = this.openChunk(this.takeLastChunk(), true);
    this.verifyEnd();
    return [last];
  }

  /**
   * @internal Consumes ciphertext and returns the whole sealed chunks now known not to be final
   * (bytes follow them), unopened.
   * @throws MalformedError for a bad header
   */
  takeChunks(piece: Uint8Array): Uint8Array[] {
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
      this.digest = new DigestBuilder(header);
    }
    while (off < piece.length) {
      // Bytes follow a held full chunk, so that chunk is not the final one.
      if (this.held !== undefined) {
        out.push(this.held);
        this.held = undefined;
      }
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

  /**
   * @internal Ends the input and returns the last sealed chunk, unopened.
   * @throws VerificationError `ERR_ATTACHMENT_TRUNCATED` when there is none
   */
  takeLastChunk(): Uint8Array {
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
    return sealed;
  }

  /**
   * @internal Hands the next chunk to `offload`. The job's function must be called in chunk
   * order; it applies the checks {@link update} and {@link finish} apply and returns the
   * plaintext.
   */
  openChunkWith(offload: ChunkOffload, sealed: Uint8Array, final: boolean): ChunkJob {
    const { key, nonce, header, index } = this.nextChunk(final);
    return offload.open(key, nonce, sealed, header).then((r) => () => {
      if (r.plaintext === undefined) throw this.failure(sealed, index, final);
      this.accept(r.plaintext, r.sha256);
      return r.plaintext;
    });
  }

  /**
   * @internal After the final chunk was accepted: the size must match the pointer and the
   * digest the one computed.
   * @throws VerificationError `ERR_ATTACHMENT_SIZE_MISMATCH`, `ERR_ATTACHMENT_DIGEST_MISMATCH`
   */
  verifyEnd(): void {
    if (this.plaintextSize !== this.pointer.plaintextSize) {
      throw new VerificationError(
        'ERR_ATTACHMENT_SIZE_MISMATCH',
        'attachment size differs from pointer',
      );
    }
    const digest = this.digest?.digest() ?? new Uint8Array(32);
    if (!equalBytes(digest, this.pointer.digest)) {
      throw new VerificationError('ERR_ATTACHMENT_DIGEST_MISMATCH', 'attachment digest differs');
    }
  }

  private nextChunk(final: boolean): {
    key: Uint8Array;
    nonce: Uint8Array;
    header: Uint8Array;
    index: number;
  } {
    // takeChunks and takeLastChunk hand out chunks only once the header has been read.
    if (this.header === undefined || this.salt === undefined) {
      throw new TypeError('attachment chunk before the header');
    }
    const index = this.index++;
    const nonce = chunkNonce(this.salt, index, final);
    return { key: this.pointer.key, nonce, header: this.header, index };
  }

  private openChunk(sealed: Uint8Array, final: boolean): Uint8Array {
    const { key, nonce, header, index } = this.nextChunk(final);
    const p = getCryptoProvider();
    const pt = p.xchacha20poly1305Open(key, nonce, sealed, header);
    if (pt === undefined) throw this.failure(sealed, index, final);
    this.accept(pt, p.sha256(sealed));
    return pt;
  }

  /** Counts an authentic chunk's plaintext and folds its hash into the digest. */
  private accept(plaintext: Uint8Array, chunkHash: Uint8Array): void {
    this.plaintextSize += plaintext.length;
    if (this.plaintextSize > this.pointer.plaintextSize) {
      throw new VerificationError(
        'ERR_ATTACHMENT_SIZE_MISMATCH',
        'attachment longer than announced',
      );
    }
    this.digest?.add(chunkHash);
  }

  /**
   * Names a chunk that does not authenticate (rare, so it may retry on the calling thread): a
   * middle chunk that opens as final means data after the end; a full-size final chunk that
   * opens as a middle one means the stream was cut at a chunk boundary.
   */
  private failure(sealed: Uint8Array, index: number, final: boolean): VerificationError {
    const { key } = this.pointer;
    const { header, salt } = this;
    const opensAs = (asFinal: boolean): boolean =>
      header !== undefined &&
      salt !== undefined &&
      getCryptoProvider().xchacha20poly1305Open(
        key,
        chunkNonce(salt, index, asFinal),
        sealed,
        header,
      ) !== undefined;
    if (!final && opensAs(true)) {
      return new VerificationError('ERR_ATTACHMENT_TRAILING_DATA', 'data after the final chunk');
    }
    if (final && sealed.length === SEALED_CHUNK && opensAs(false)) {
      return new VerificationError('ERR_ATTACHMENT_TRUNCATED', 'attachment truncated');
    }
    return new VerificationError(
      'ERR_ATTACHMENT_CHUNK_INVALID',
      'attachment chunk does not authenticate',
    );
  }
}

/**
 * Decrypts a ciphertext stream of any piece sizes, yielding authenticated plaintext chunks as
 * they complete; throws (typed) on reordering, truncation, extension, splicing, a size or digest
 * mismatch. Everything yielded before a throw must be discarded by the consumer. Memory is
 * bounded as in {@link encryptAttachment}; whole chunks of a piece are read in place, so pieces
 * of the source must not be modified after they are yielded.
 *
 * @example
 * ```ts
 * for await (const chunk of decryptAttachment(download(), pointer)) await file.write(chunk);
 * ```
 * @throws MalformedError `ERR_UNSUPPORTED_VERSION`, `ERR_UNEXPECTED_TYPE`, `ERR_ENCODING_MALFORMED`
 * @throws VerificationError `ERR_ATTACHMENT_CHUNK_INVALID`, `ERR_ATTACHMENT_TRUNCATED`,
 *   `ERR_ATTACHMENT_TRAILING_DATA`, `ERR_ATTACHMENT_SIZE_MISMATCH`,
 *   `ERR_ATTACHMENT_DIGEST_MISMATCH`
 */
export async function* decryptAttachment(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  pointer: AttachmentPointer,
): AsyncGenerator<Uint8Array> {
  const dec = new AttachmentDecryptor(pointer);
  const off = offloadWindow();
  if (off === undefined) {
    for await (const piece of iterate(source)) yield* dec.update(piece);
    yield* dec.finish();
    return;
  }
  // Results are checked and yielded in chunk order.
  const inFlight = new InOrder<Uint8Array>(off.offload);
  for await (const piece of iterate(source)) {
    for (const sealed of dec.takeChunks(piece)) {
      inFlight.push(dec.openChunkWith(off.offload, sealed, false));
      if (inFlight.length >= off.window) yield await inFlight.next();
    }
  }
  inFlight.push(dec.openChunkWith(off.offload, dec.takeLastChunk(), true));
  while (inFlight.length > 1) yield await inFlight.next();
  const last = await inFlight.next();
  dec.verifyEnd();
  yield last;
}
