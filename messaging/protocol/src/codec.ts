/**
 * The canonical binary codec behind every Keytrail messaging wire format (documented byte by
 * byte in `messaging/PROTOCOL.md`): big-endian fixed-width integers, fixed-length byte strings and
 * length-prefixed byte strings in the style of TLS presentation language (RFC 8446 §3).
 *
 * Decoding is strict: short input is `ERR_ENCODING_MALFORMED`, a length prefix above the field's
 * limit is `ERR_ENCODING_TOO_LARGE`, and bytes left over are `ERR_ENCODING_TRAILING_BYTES`, so each
 * value has exactly one accepted encoding.
 * @module
 */
import { MalformedError } from './errors.ts';

/** The version byte that opens every Keytrail messaging wire object. */
export const WIRE_VERSION = 1;

/**
 * The type byte that follows the version byte, one per wire object. Storage records use the same
 * registry so that a byte string can never be read as the wrong object.
 */
export const WIRE_TYPE = {
  preKeyBundle: 0x01,
  preKeyMessage: 0x02,
  ratchetMessage: 0x03,
  ratchetMessageEncryptedHeader: 0x04,
  resetRequest: 0x05,
  sealedSender: 0x06,
  senderCertificate: 0x07,
  groupMessage: 0x08,
  senderKeyDistribution: 0x09,
  content: 0x0a,
  attachmentPointer: 0x0b,
  attachmentHeader: 0x0c,
  deviceRecord: 0x10,
  senderKeyRecord: 0x11,
} as const;

/** A name from {@link WIRE_TYPE}. */
export type WireTypeName = keyof typeof WIRE_TYPE;

/** Appends fields to a growing buffer. */
export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;

  constructor(initialCapacity = 256) {
    this.buf = new Uint8Array(initialCapacity);
    this.view = new DataView(this.buf.buffer);
  }

  private reserve(n: number): number {
    const need = this.len + n;
    if (need > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < need) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.buf.subarray(0, this.len));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.len;
    this.len = need;
    return at;
  }

  /** Writes the version and type bytes of a wire object. */
  header(type: WireTypeName): this {
    return this.u8(WIRE_VERSION).u8(WIRE_TYPE[type]);
  }

  /** An unsigned 8-bit integer. */
  u8(v: number): this {
    checkUint(v, 0xff, 'u8');
    const at = this.reserve(1);
    this.buf[at] = v;
    return this;
  }

  /** An unsigned 16-bit big-endian integer. */
  u16(v: number): this {
    checkUint(v, 0xffff, 'u16');
    const at = this.reserve(2);
    this.view.setUint16(at, v);
    return this;
  }

  /** An unsigned 32-bit big-endian integer. */
  u32(v: number): this {
    checkUint(v, 0xffffffff, 'u32');
    const at = this.reserve(4);
    this.view.setUint32(at, v);
    return this;
  }

  /** An unsigned 64-bit big-endian integer holding a safe JavaScript integer. */
  u64(v: number): this {
    checkUint(v, Number.MAX_SAFE_INTEGER, 'u64');
    const at = this.reserve(8);
    this.view.setUint32(at, Math.floor(v / 0x100000000));
    this.view.setUint32(at + 4, v >>> 0);
    return this;
  }

  /** Bytes written as they are (a fixed-length field: the reader knows the length). */
  bytes(b: Uint8Array): this {
    // Reserve first: it may replace this.buf.
    const at = this.reserve(b.length);
    this.buf.set(b, at);
    return this;
  }

  /** A fixed-length field of exactly `n` bytes. */
  fixed(b: Uint8Array, n: number): this {
    if (b.length !== n) throw new RangeError(`fixed: expected ${n} bytes, got ${b.length}`);
    return this.bytes(b);
  }

  /** Bytes with a 1-byte length prefix. */
  opaque8(b: Uint8Array): this {
    return this.u8(b.length).bytes(b);
  }

  /** Bytes with a 2-byte length prefix. */
  opaque16(b: Uint8Array): this {
    return this.u16(b.length).bytes(b);
  }

  /** Bytes with a 4-byte length prefix. */
  opaque32(b: Uint8Array): this {
    return this.u32(b.length).bytes(b);
  }

  /** The encoded bytes (a copy of exactly the written length). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function checkUint(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new RangeError(`${what}: ${String(v)} out of range`);
  }
}

/** Reads fields from attacker-controlled bytes; every read is bounds-checked. */
export class Reader {
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  private pos = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** Bytes not yet read. */
  get remaining(): number {
    return this.buf.length - this.pos;
  }

  /** Bytes already read. */
  get offset(): number {
    return this.pos;
  }

  private take(n: number): number {
    if (n > this.remaining) throw new MalformedError('ERR_ENCODING_MALFORMED', 'input too short');
    const at = this.pos;
    this.pos += n;
    return at;
  }

  /**
   * Reads and checks the version and type bytes of a wire object.
   * @throws MalformedError `ERR_UNSUPPORTED_VERSION`, `ERR_UNEXPECTED_TYPE`, `ERR_ENCODING_MALFORMED`
   */
  header(type: WireTypeName): void {
    const version = this.u8();
    if (version !== WIRE_VERSION) {
      throw new MalformedError('ERR_UNSUPPORTED_VERSION', `unsupported wire version ${version}`);
    }
    const t = this.u8();
    if (t !== WIRE_TYPE[type]) {
      throw new MalformedError('ERR_UNEXPECTED_TYPE', `expected ${type}, got type ${t}`);
    }
  }

  /** An unsigned 8-bit integer. */
  u8(): number {
    return this.buf[this.take(1)] ?? 0;
  }

  /** An unsigned 16-bit big-endian integer. */
  u16(): number {
    return this.view.getUint16(this.take(2));
  }

  /** An unsigned 32-bit big-endian integer. */
  u32(): number {
    return this.view.getUint32(this.take(4));
  }

  /**
   * An unsigned 64-bit big-endian integer; values above 2^53 − 1 are rejected.
   * @throws MalformedError `ERR_ENCODING_TOO_LARGE`
   */
  u64(): number {
    const at = this.take(8);
    const hi = this.view.getUint32(at);
    const lo = this.view.getUint32(at + 4);
    if (hi > 0x1fffff) throw new MalformedError('ERR_ENCODING_TOO_LARGE', 'u64 above 2^53');
    return hi * 0x100000000 + lo;
  }

  /** A boolean encoded as one byte 0 or 1 (anything else is malformed). */
  bool(): boolean {
    const b = this.u8();
    if (b > 1) throw new MalformedError('ERR_ENCODING_MALFORMED', 'boolean byte not 0 or 1');
    return b === 1;
  }

  /** A fixed-length field; returns a copy so that decoded values never alias the input. */
  fixed(n: number): Uint8Array {
    const at = this.take(n);
    return this.buf.slice(at, at + n);
  }

  /** A view of the next `n` bytes without copying (for large bodies that are only read). */
  view_(n: number): Uint8Array {
    const at = this.take(n);
    return this.buf.subarray(at, at + n);
  }

  private limited(len: number, max: number): Uint8Array {
    if (len > max) throw new MalformedError('ERR_ENCODING_TOO_LARGE', 'field above its limit');
    return this.fixed(len);
  }

  /** Bytes with a 1-byte length prefix, at most `max` long. */
  opaque8(max = 0xff): Uint8Array {
    return this.limited(this.u8(), max);
  }

  /** Bytes with a 2-byte length prefix, at most `max` long. */
  opaque16(max = 0xffff): Uint8Array {
    return this.limited(this.u16(), max);
  }

  /** Bytes with a 4-byte length prefix, at most `max` long. */
  opaque32(max: number): Uint8Array {
    return this.limited(this.u32(), max);
  }

  /**
   * Asserts that the input was consumed exactly.
   * @throws MalformedError `ERR_ENCODING_TRAILING_BYTES`
   */
  end(): void {
    if (this.remaining !== 0) {
      throw new MalformedError('ERR_ENCODING_TRAILING_BYTES', 'trailing bytes after object');
    }
  }
}

/**
 * Runs a decoder and turns any stray exception into `ERR_ENCODING_MALFORMED`, so that attacker
 * bytes surface only as typed errors.
 */
export function decodeStrict<T>(bytes: Uint8Array, maxSize: number, fn: (r: Reader) => T): T {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('decode: expected a Uint8Array');
  if (bytes.length > maxSize) {
    throw new MalformedError('ERR_ENCODING_TOO_LARGE', 'object above its size limit');
  }
  const r = new Reader(bytes);
  const value = fn(r);
  r.end();
  return value;
}
