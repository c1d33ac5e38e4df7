/**
 * Canonical binary encoding in the style of the TLS presentation language (RFC 8446 §3), as
 * IETF KEYTRANS (draft-ietf-keytrans-protocol §4) uses for every structure that is hashed,
 * signed or committed to.
 *
 * - Integers are big-endian: `uint8`, `uint16`, `uint32`, `uint64`.
 * - `opaque x[n]` is written as the `n` bytes themselves ({@link Writer.fixed}).
 * - `opaque x<0..2^8-1>`, `<0..2^16-1>`, `<0..2^32-1>` are written as a 1-, 2- or 4-byte
 *   big-endian length followed by the bytes ({@link Writer.opaque8} and friends).
 *
 * Decoding is strict: every read checks that the input is long enough, every variable-length
 * read can be given a maximum, and {@link Reader.end} rejects trailing bytes, so each value has
 * exactly one accepted encoding.
 *
 * @example
 * ```ts
 * const w = new Writer();
 * w.u8(1).u32(7).opaque8(utf8('alice'));
 * const r = new Reader(w.finish());
 * const version = r.u8();
 * const counter = r.u32();
 * const label = r.opaque8({ max: 64 });
 * r.end();
 * ```
 * @module
 */
import { MalformedError } from './errors.ts';

/** Largest value of `uint64` as a bigint. */
export const MAX_UINT64: bigint = 0xffff_ffff_ffff_ffffn;
/** Largest value of `uint32`. */
export const MAX_UINT32 = 0xffff_ffff;

/** Options for a variable-length read. */
export interface OpaqueOptions {
  /**
   * Largest accepted length in bytes (inclusive). A length prefix above it throws
   * `ERR_ENCODING_TOO_LARGE` before anything is copied, so attacker-chosen prefixes cannot
   * make the reader allocate.
   */
  readonly max?: number;
  /** Smallest accepted length in bytes (inclusive); a shorter value is `ERR_ENCODING_MALFORMED`. */
  readonly min?: number;
}

function checkUint(value: number, bits: 8 | 16 | 32, name: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 2 ** bits - 1) {
    throw new RangeError(`${name}: ${String(value)} is not a uint${bits}`);
  }
}

/**
 * Appends canonical encodings to a growing buffer. Methods return `this` so calls chain.
 *
 * Numbers out of range for their type are caller bugs and throw `RangeError`. Byte strings
 * too long for their length prefix throw {@link MalformedError} `ERR_ENCODING_TOO_LARGE`
 * (they may come from untrusted input, so a service can answer 400).
 */
export class Writer {
  #buf: Uint8Array;
  #len = 0;

  /** @param initialCapacity - starting buffer size in bytes; the buffer grows as needed. */
  constructor(initialCapacity = 256) {
    this.#buf = new Uint8Array(Math.max(16, initialCapacity));
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#len;
  }

  #reserve(n: number): number {
    const need = this.#len + n;
    if (need > this.#buf.length) {
      let cap = this.#buf.length * 2;
      while (cap < need) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
    }
    const at = this.#len;
    this.#len = need;
    return at;
  }

  /** Writes a `uint8`. @throws RangeError if `value` is not an integer in 0..255. */
  u8(value: number): this {
    checkUint(value, 8, 'u8');
    const at = this.#reserve(1);
    this.#buf[at] = value;
    return this;
  }

  /** Writes a big-endian `uint16`. @throws RangeError if out of range. */
  u16(value: number): this {
    checkUint(value, 16, 'u16');
    const at = this.#reserve(2);
    this.#buf[at] = value >>> 8;
    this.#buf[at + 1] = value & 0xff;
    return this;
  }

  /** Writes a big-endian `uint32`. @throws RangeError if out of range. */
  u32(value: number): this {
    checkUint(value, 32, 'u32');
    const at = this.#reserve(4);
    this.#buf[at] = value >>> 24;
    this.#buf[at + 1] = (value >>> 16) & 0xff;
    this.#buf[at + 2] = (value >>> 8) & 0xff;
    this.#buf[at + 3] = value & 0xff;
    return this;
  }

  /**
   * Writes a big-endian `uint64` from a bigint, or from a number that is a safe integer.
   * @throws RangeError if negative, above 2^64-1, or a number that is not a safe integer.
   */
  u64(value: number | bigint): this {
    let v: bigint;
    if (typeof value === 'number') {
      if (!Number.isSafeInteger(value) || value < 0) {
        throw new RangeError(`u64: ${String(value)} is not a non-negative safe integer`);
      }
      v = BigInt(value);
    } else {
      if (value < 0n || value > MAX_UINT64) throw new RangeError('u64: value out of range');
      v = value;
    }
    const hi = Number(v >> 32n);
    const lo = Number(v & 0xffff_ffffn);
    return this.u32(hi).u32(lo);
  }

  /** Writes bytes as they are (`opaque x[n]` where the length is implied by the structure). */
  bytes(data: Uint8Array): this {
    const at = this.#reserve(data.length);
    this.#buf.set(data, at);
    return this;
  }

  /**
   * Writes exactly `length` bytes (`opaque x[length]`).
   * @throws RangeError if `data` does not have that length.
   */
  fixed(data: Uint8Array, length: number): this {
    if (data.length !== length) {
      throw new RangeError(`fixed: expected ${length} bytes, got ${data.length}`);
    }
    return this.bytes(data);
  }

  /** Writes `opaque x<0..2^8-1>`. @throws MalformedError `ERR_ENCODING_TOO_LARGE` */
  opaque8(data: Uint8Array): this {
    return this.#opaque(data, 1);
  }

  /** Writes `opaque x<0..2^16-1>`. @throws MalformedError `ERR_ENCODING_TOO_LARGE` */
  opaque16(data: Uint8Array): this {
    return this.#opaque(data, 2);
  }

  /** Writes `opaque x<0..2^32-1>`. @throws MalformedError `ERR_ENCODING_TOO_LARGE` */
  opaque32(data: Uint8Array): this {
    return this.#opaque(data, 4);
  }

  #opaque(data: Uint8Array, prefix: 1 | 2 | 4): this {
    const max = 2 ** (8 * prefix) - 1;
    if (data.length > max) {
      throw new MalformedError(
        'ERR_ENCODING_TOO_LARGE',
        `value of ${data.length} bytes does not fit a ${prefix}-byte length prefix`,
      );
    }
    if (prefix === 1) this.u8(data.length);
    else if (prefix === 2) this.u16(data.length);
    else this.u32(data.length);
    return this.bytes(data);
  }

  /** Returns a copy of the bytes written so far. The writer stays usable. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/**
 * Reads canonical encodings from a byte string, front to back. Every method checks bounds
 * first: input that is too short throws {@link MalformedError} `ERR_ENCODING_MALFORMED`, a
 * length above the caller's limit `ERR_ENCODING_TOO_LARGE`, and {@link Reader.end} with
 * bytes left over `ERR_ENCODING_TRAILING_BYTES`. Returned byte strings are copies.
 */
export class Reader {
  readonly #data: Uint8Array;
  #pos = 0;

  /** @param data - the input; it is not copied, so do not modify it while reading. */
  constructor(data: Uint8Array) {
    this.#data = data;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.#data.length - this.#pos;
  }

  /** Bytes read so far. */
  get offset(): number {
    return this.#pos;
  }

  #take(n: number): number {
    // n is at most 2^32-1 from a length prefix; compare before moving so a huge prefix
    // cannot overflow the position.
    if (n > this.#data.length - this.#pos) {
      throw new MalformedError('ERR_ENCODING_MALFORMED', 'input is truncated');
    }
    const at = this.#pos;
    this.#pos += n;
    return at;
  }

  #byte(i: number): number {
    return this.#data[i] as number;
  }

  /** Reads a `uint8`. @throws MalformedError `ERR_ENCODING_MALFORMED` */
  u8(): number {
    return this.#byte(this.#take(1));
  }

  /** Reads a big-endian `uint16`. @throws MalformedError `ERR_ENCODING_MALFORMED` */
  u16(): number {
    const at = this.#take(2);
    return (this.#byte(at) << 8) | this.#byte(at + 1);
  }

  /** Reads a big-endian `uint32`. @throws MalformedError `ERR_ENCODING_MALFORMED` */
  u32(): number {
    const at = this.#take(4);
    return (
      this.#byte(at) * 0x100_0000 +
      ((this.#byte(at + 1) << 16) | (this.#byte(at + 2) << 8) | this.#byte(at + 3))
    );
  }

  /** Reads a big-endian `uint64` as a bigint. @throws MalformedError `ERR_ENCODING_MALFORMED` */
  u64(): bigint {
    const hi = this.u32();
    const lo = this.u32();
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  /**
   * Reads a big-endian `uint64` that must be a safe integer (at most 2^53-1), as a number.
   * @throws MalformedError `ERR_ENCODING_MALFORMED` (truncated), `ERR_ENCODING_TOO_LARGE`
   */
  u64Number(): number {
    const hi = this.u32();
    const lo = this.u32();
    if (hi > 0x1f_ffff) {
      throw new MalformedError('ERR_ENCODING_TOO_LARGE', 'uint64 exceeds 2^53-1');
    }
    return hi * 0x1_0000_0000 + lo;
  }

  /** Reads exactly `length` bytes (`opaque x[length]`). @throws MalformedError `ERR_ENCODING_MALFORMED` */
  fixed(length: number): Uint8Array {
    if (!Number.isInteger(length) || length < 0) throw new RangeError('fixed: bad length');
    const at = this.#take(length);
    return this.#data.slice(at, at + length);
  }

  /**
   * Reads `opaque x<0..2^8-1>`.
   * @throws MalformedError `ERR_ENCODING_MALFORMED`, `ERR_ENCODING_TOO_LARGE`
   */
  opaque8(options: OpaqueOptions = {}): Uint8Array {
    return this.#opaque(this.u8(), options);
  }

  /**
   * Reads `opaque x<0..2^16-1>`.
   * @throws MalformedError `ERR_ENCODING_MALFORMED`, `ERR_ENCODING_TOO_LARGE`
   */
  opaque16(options: OpaqueOptions = {}): Uint8Array {
    return this.#opaque(this.u16(), options);
  }

  /**
   * Reads `opaque x<0..2^32-1>`. Give a `max`: without one a 4-byte prefix is only bounded
   * by the input length.
   * @throws MalformedError `ERR_ENCODING_MALFORMED`, `ERR_ENCODING_TOO_LARGE`
   */
  opaque32(options: OpaqueOptions = {}): Uint8Array {
    return this.#opaque(this.u32(), options);
  }

  #opaque(length: number, { max, min }: OpaqueOptions): Uint8Array {
    if (max !== undefined && length > max) {
      throw new MalformedError('ERR_ENCODING_TOO_LARGE', `length ${length} exceeds ${max}`);
    }
    if (min !== undefined && length < min) {
      throw new MalformedError('ERR_ENCODING_MALFORMED', `length ${length} is below ${min}`);
    }
    return this.fixed(length);
  }

  /** Requires that the whole input was read. @throws MalformedError `ERR_ENCODING_TRAILING_BYTES` */
  end(): void {
    if (this.#pos !== this.#data.length) {
      throw new MalformedError(
        'ERR_ENCODING_TRAILING_BYTES',
        `${this.#data.length - this.#pos} unexpected trailing bytes`,
      );
    }
  }
}
