import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as epoch from '../src/epoch-record.ts';
import { fromHex, toHex } from '../src/bytes.ts';
import { KtError, MalformedError } from '../src/errors.ts';

function expectCode(fn: () => unknown, code: string, cls: typeof KtError = KtError): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(cls);
  expect((caught as KtError).code).toBe(code);
}

const range32 = Uint8Array.from({ length: 32 }, (_, i) => i);
const RECORD: epoch.EpochRecord = {
  epoch: 7,
  timestampMs: 1_700_000_000_123,
  prefixRoot: range32,
  insertCount: 3,
  insertsDigest: new Uint8Array(32).fill(0xee),
};
// Computed independently (Python struct packing).
const RECORD_HEX =
  '01' +
  '0000000000000007' +
  '0000018bcfe5687b' +
  '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f' +
  '00000003' +
  'ee'.repeat(32);

describe('epoch record', () => {
  it('encodes the contract struct (85 bytes)', () => {
    const bytes = epoch.encodeEpochRecord(RECORD);
    expect(bytes.length).toBe(epoch.EPOCH_RECORD_SIZE);
    expect(toHex(bytes)).toBe(RECORD_HEX);
  });

  it('decodes it back', () => {
    expect(epoch.decodeEpochRecord(fromHex(RECORD_HEX))).toEqual(RECORD);
  });

  it('rejects an unknown version', () => {
    for (const v of ['00', '02', 'ff']) {
      expectCode(
        () => epoch.decodeEpochRecord(fromHex(v + RECORD_HEX.slice(2))),
        'ERR_EPOCH_RECORD_MALFORMED',
        MalformedError,
      );
    }
  });

  it('rejects short and long input', () => {
    const bytes = fromHex(RECORD_HEX);
    for (let n = 0; n < bytes.length; n++) {
      expectCode(() => epoch.decodeEpochRecord(bytes.subarray(0, n)), 'ERR_ENCODING_MALFORMED');
    }
    expectCode(
      () => epoch.decodeEpochRecord(fromHex(RECORD_HEX + '00')),
      'ERR_ENCODING_TRAILING_BYTES',
    );
  });

  it('rejects integers above 2^53-1', () => {
    const big = '01' + '0020000000000000' + RECORD_HEX.slice(18);
    expectCode(() => epoch.decodeEpochRecord(fromHex(big)), 'ERR_ENCODING_TOO_LARGE');
    const bigTs = RECORD_HEX.slice(0, 18) + 'ffffffffffffffff' + RECORD_HEX.slice(34);
    expectCode(() => epoch.decodeEpochRecord(fromHex(bigTs)), 'ERR_ENCODING_TOO_LARGE');
  });

  it('encode rejects out-of-range fields', () => {
    expect(() => epoch.encodeEpochRecord({ ...RECORD, epoch: -1 })).toThrow(RangeError);
    expect(() => epoch.encodeEpochRecord({ ...RECORD, insertCount: 2 ** 32 })).toThrow(RangeError);
    expect(() => epoch.encodeEpochRecord({ ...RECORD, prefixRoot: new Uint8Array(31) })).toThrow(
      RangeError,
    );
  });

  it('round-trips any record', () => {
    fc.assert(
      fc.property(
        fc.record({
          epoch: fc.maxSafeNat(),
          timestampMs: fc.maxSafeNat(),
          prefixRoot: fc.uint8Array({ minLength: 32, maxLength: 32 }),
          insertCount: fc.integer({ min: 0, max: 0xffff_ffff }),
          insertsDigest: fc.uint8Array({ minLength: 32, maxLength: 32 }),
        }),
        (r) => {
          expect(epoch.decodeEpochRecord(epoch.encodeEpochRecord(r))).toEqual(r);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('insertsDigest', () => {
  const inserts = [
    { label: fromHex('80' + '00'.repeat(31)), commitment: new Uint8Array(32).fill(1) },
    { label: fromHex('01' + '00'.repeat(31)), commitment: new Uint8Array(32).fill(2) },
    { label: new Uint8Array(32).fill(0x7f), commitment: new Uint8Array(32).fill(3) },
  ];

  it('hashes label || commitment sorted by label (computed independently)', () => {
    expect(toHex(epoch.insertsDigest(inserts))).toBe(
      '79358c2fe31821a358759faf467a629ad1f353ecc0191294a0f08f5c345d9a7f',
    );
  });

  it('is SHA-256 of the empty string for an empty epoch', () => {
    expect(toHex(epoch.insertsDigest([]))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it('does not depend on the input order', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.uint8Array({ minLength: 32, maxLength: 32 }), {
          maxLength: 20,
          selector: (a) => toHex(a),
        }),
        fc.nat(),
        (labels, seed) => {
          const list = labels.map((label, i) => ({
            label,
            commitment: new Uint8Array(32).fill(i),
          }));
          const shuffled = [...list].sort(
            (a, b) => ((a.label[0]! * 31 + seed) % 97) - ((b.label[0]! * 31 + seed) % 97),
          );
          expect(toHex(epoch.insertsDigest(shuffled))).toBe(toHex(epoch.insertsDigest(list)));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('rejects a label inserted twice', () => {
    expectCode(
      () => epoch.insertsDigest([...inserts, { ...inserts[0]!, commitment: new Uint8Array(32) }]),
      'ERR_PREFIX_TREE_DUPLICATE_KEY',
    );
  });

  it('rejects wrong sizes with RangeError', () => {
    expect(() =>
      epoch.insertsDigest([{ label: new Uint8Array(31), commitment: new Uint8Array(32) }]),
    ).toThrow(RangeError);
    expect(() =>
      epoch.insertsDigest([{ label: new Uint8Array(32), commitment: new Uint8Array(33) }]),
    ).toThrow(RangeError);
  });
});
