import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_UINT64, Reader, Writer } from '../src/encoding.ts';
import { fromHex, toHex } from '../src/bytes.ts';
import { KtError, MalformedError } from '../src/errors.ts';

function expectCode(fn: () => unknown, code: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(MalformedError);
  expect((caught as KtError).code).toBe(code);
}

describe('Writer', () => {
  it('writes big-endian integers and length-prefixed vectors', () => {
    const w = new Writer(1)
      .u8(0xab)
      .u16(0x0102)
      .u32(0xdeadbeef)
      .u64(0x0102030405060708n)
      .u64(2 ** 53 - 1)
      .fixed(fromHex('cafe'), 2)
      .bytes(fromHex('01'))
      .opaque8(fromHex('aa'))
      .opaque16(fromHex('bbbb'))
      .opaque32(new Uint8Array(0));
    expect(w.length).toBe(1 + 2 + 4 + 8 + 8 + 2 + 1 + 2 + 4 + 4);
    expect(toHex(w.finish())).toBe(
      'ab' +
        '0102' +
        'deadbeef' +
        '0102030405060708' +
        '001fffffffffffff' +
        'cafe' +
        '01' +
        '01aa' +
        '0002bbbb' +
        '00000000',
    );
  });

  it('finish returns a copy and the writer stays usable', () => {
    const w = new Writer().u8(1);
    const a = w.finish();
    w.u8(2);
    expect(toHex(a)).toBe('01');
    expect(toHex(w.finish())).toBe('0102');
  });

  it('rejects integers out of range with RangeError', () => {
    const w = new Writer();
    for (const f of [
      () => w.u8(256),
      () => w.u8(-1),
      () => w.u8(1.5),
      () => w.u16(65536),
      () => w.u32(2 ** 32),
      () => w.u32(Number.NaN),
      () => w.u64(-1),
      () => w.u64(2 ** 53),
      () => w.u64(-1n),
      () => w.u64(MAX_UINT64 + 1n),
      () => w.fixed(new Uint8Array(3), 2),
    ]) {
      expect(f).toThrow(RangeError);
    }
    expect(toHex(new Writer().u64(MAX_UINT64).finish())).toBe('ffffffffffffffff');
  });

  it('rejects byte strings too long for their prefix with ERR_ENCODING_TOO_LARGE', () => {
    expectCode(() => new Writer().opaque8(new Uint8Array(256)), 'ERR_ENCODING_TOO_LARGE');
    expectCode(() => new Writer().opaque16(new Uint8Array(65536)), 'ERR_ENCODING_TOO_LARGE');
    expect(new Writer().opaque8(new Uint8Array(255)).length).toBe(256);
    expect(new Writer().opaque16(new Uint8Array(65535)).length).toBe(65537);
  });
});

describe('Reader', () => {
  it('reads what the writer wrote', () => {
    const r = new Reader(
      fromHex('ab0102deadbeef0102030405060708ffffffffffffffffcafe01aa0002bbbb00000000'),
    );
    expect(r.u8()).toBe(0xab);
    expect(r.u16()).toBe(0x0102);
    expect(r.u32()).toBe(0xdeadbeef);
    expect(r.u64()).toBe(0x0102030405060708n);
    expect(r.u64()).toBe(MAX_UINT64);
    expect(toHex(r.fixed(2))).toBe('cafe');
    expect(toHex(r.opaque8())).toBe('aa');
    expect(r.offset).toBe(27);
    expect(toHex(r.opaque16({ max: 2 }))).toBe('bbbb');
    expect(r.opaque32({ max: 0 }).length).toBe(0);
    expect(r.remaining).toBe(0);
    r.end();
  });

  it('returns copies, not views of the input', () => {
    const input = fromHex('02aabb');
    const out = new Reader(input).opaque8();
    input[1] = 0;
    expect(toHex(out)).toBe('aabb');
  });

  it('u64Number accepts up to 2^53-1 and rejects above with ERR_ENCODING_TOO_LARGE', () => {
    expect(new Reader(fromHex('001fffffffffffff')).u64Number()).toBe(2 ** 53 - 1);
    expect(new Reader(fromHex('0000000100000000')).u64Number()).toBe(2 ** 32);
    expectCode(() => new Reader(fromHex('0020000000000000')).u64Number(), 'ERR_ENCODING_TOO_LARGE');
    expectCode(() => new Reader(fromHex('ffffffffffffffff')).u64Number(), 'ERR_ENCODING_TOO_LARGE');
  });

  it('truncated input is ERR_ENCODING_MALFORMED', () => {
    expectCode(() => new Reader(new Uint8Array(0)).u8(), 'ERR_ENCODING_MALFORMED');
    expectCode(() => new Reader(fromHex('01')).u16(), 'ERR_ENCODING_MALFORMED');
    expectCode(() => new Reader(fromHex('010203')).u32(), 'ERR_ENCODING_MALFORMED');
    expectCode(() => new Reader(fromHex('01020304050607')).u64(), 'ERR_ENCODING_MALFORMED');
    expectCode(() => new Reader(fromHex('0102')).fixed(3), 'ERR_ENCODING_MALFORMED');
    expectCode(() => new Reader(fromHex('03aabb')).opaque8(), 'ERR_ENCODING_MALFORMED');
    expectCode(() => new Reader(fromHex('0003aabb')).opaque16(), 'ERR_ENCODING_MALFORMED');
    // A huge length prefix fails on the length check, without allocating.
    expectCode(() => new Reader(fromHex('ffffffff')).opaque32(), 'ERR_ENCODING_MALFORMED');
  });

  it('lengths above the limit are ERR_ENCODING_TOO_LARGE, below the minimum MALFORMED', () => {
    expectCode(() => new Reader(fromHex('03aabbcc')).opaque8({ max: 2 }), 'ERR_ENCODING_TOO_LARGE');
    expectCode(
      () => new Reader(fromHex('ffffffff')).opaque32({ max: 1024 }),
      'ERR_ENCODING_TOO_LARGE',
    );
    expectCode(() => new Reader(fromHex('01aa')).opaque8({ min: 2 }), 'ERR_ENCODING_MALFORMED');
  });

  it('trailing bytes are ERR_ENCODING_TRAILING_BYTES', () => {
    const r = new Reader(fromHex('0102'));
    r.u8();
    expectCode(() => {
      r.end();
    }, 'ERR_ENCODING_TRAILING_BYTES');
  });

  it('fixed rejects a bad length argument with RangeError', () => {
    expect(() => new Reader(new Uint8Array(4)).fixed(-1)).toThrow(RangeError);
    expect(() => new Reader(new Uint8Array(4)).fixed(1.5)).toThrow(RangeError);
  });
});

type Op =
  | { t: 'u8' | 'u16' | 'u32'; v: number }
  | { t: 'u64'; v: bigint }
  | { t: 'opaque8' | 'opaque16' | 'opaque32' | 'fixed'; v: Uint8Array };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('u8' as const), v: fc.integer({ min: 0, max: 0xff }) }),
  fc.record({ t: fc.constant('u16' as const), v: fc.integer({ min: 0, max: 0xffff }) }),
  fc.record({ t: fc.constant('u32' as const), v: fc.integer({ min: 0, max: 0xffff_ffff }) }),
  fc.record({ t: fc.constant('u64' as const), v: fc.bigInt({ min: 0n, max: MAX_UINT64 }) }),
  fc.record({ t: fc.constant('opaque8' as const), v: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({ t: fc.constant('opaque16' as const), v: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ t: fc.constant('opaque32' as const), v: fc.uint8Array({ maxLength: 40 }) }),
  fc.record({ t: fc.constant('fixed' as const), v: fc.uint8Array({ maxLength: 40 }) }),
);

function write(ops: readonly Op[]): Uint8Array {
  const w = new Writer(1);
  for (const op of ops) {
    switch (op.t) {
      case 'u64':
        w.u64(op.v);
        break;
      case 'fixed':
        w.fixed(op.v, op.v.length);
        break;
      case 'u8':
      case 'u16':
      case 'u32':
        w[op.t](op.v);
        break;
      default:
        w[op.t](op.v);
    }
  }
  return w.finish();
}

function read(bytes: Uint8Array, ops: readonly Op[]): Op[] {
  const r = new Reader(bytes);
  const out = ops.map((op): Op => {
    switch (op.t) {
      case 'u8':
      case 'u16':
      case 'u32':
        return { t: op.t, v: r[op.t]() };
      case 'u64':
        return { t: 'u64', v: r.u64() };
      case 'fixed':
        return { t: 'fixed', v: r.fixed(op.v.length) };
      default:
        return { t: op.t, v: r[op.t]() };
    }
  });
  r.end();
  return out;
}

describe('properties', () => {
  it('round-trips any sequence of fields', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 20 }), (ops) => {
        expect(read(write(ops), ops)).toEqual(ops);
      }),
      { numRuns: 500 },
    );
  });

  it('every truncation fails with ERR_ENCODING_MALFORMED and every extension with trailing bytes', () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { minLength: 1, maxLength: 8 }),
        fc.nat(),
        fc.uint8Array({ minLength: 1, maxLength: 4 }),
        (ops, cut, extra) => {
          const bytes = write(ops);
          if (bytes.length > 0) {
            const short = bytes.subarray(0, cut % bytes.length);
            expectCode(() => read(short, ops), 'ERR_ENCODING_MALFORMED');
          }
          const long = new Uint8Array(bytes.length + extra.length);
          long.set(bytes);
          long.set(extra, bytes.length);
          expectCode(() => read(long, ops), 'ERR_ENCODING_TRAILING_BYTES');
        },
      ),
      { numRuns: 300 },
    );
  });
});
