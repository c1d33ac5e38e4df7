/**
 * The canonical device-list encoding: round trips, one accepted encoding per list, and exact
 * error codes for malformed input.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { bytes } from '@keytrail/core';
import { encodeDeviceList, decodeDeviceList } from '../src/device-list.ts';
import { accountLabel } from '../src/account.ts';

const device = fc.record({
  id: fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/),
  identityKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  x25519Key: fc.option(fc.uint8Array({ minLength: 32, maxLength: 32 }), { nil: undefined }),
  addedAt: fc.integer({ min: 0, max: 2 ** 45 }),
  addedBy: fc.constantFrom('device' as const, 'recovery' as const, 'admin' as const),
});

describe('device list', () => {
  it('round-trips and re-encodes identically', () => {
    fc.assert(
      fc.property(fc.uniqueArray(device, { selector: (d) => d.id, maxLength: 8 }), (list) => {
        const enc = encodeDeviceList(list);
        const dec = decodeDeviceList(enc);
        expect(bytes.toHex(encodeDeviceList(dec))).toBe(bytes.toHex(enc));
        expect(dec.map((d) => d.id)).toEqual([...list.map((d) => d.id)].sort());
      }),
      { numRuns: 300 },
    );
  });

  it('known answer', () => {
    const enc = encodeDeviceList([
      { id: 'a', identityKey: new Uint8Array(32).fill(1), addedAt: 2, addedBy: 'admin' },
    ]);
    expect(bytes.toHex(enc)).toBe(
      '01002c0161' + '01'.repeat(32) + '00' + '0000000000000002' + '03',
    );
  });

  it('rejects non-canonical and malformed encodings with ERR_VALUE_MALFORMED', () => {
    const a = { identityKey: new Uint8Array(32), addedAt: 1, addedBy: 'device' as const };
    const good = encodeDeviceList([
      { id: 'b', ...a },
      { id: 'a', ...a },
    ]);
    // Swap the two (sorted) entries: a valid structure, but not canonical.
    const entry = (good.length - 3) / 2;
    const swapped = bytes.concatBytes(
      good.subarray(0, 3),
      good.subarray(3 + entry),
      good.subarray(3, 3 + entry),
    );
    for (const bad of [
      swapped,
      good.subarray(0, good.length - 1),
      bytes.concatBytes(good, Uint8Array.of(0)),
      Uint8Array.of(2, 0, 0),
    ]) {
      expect(() => decodeDeviceList(bad)).toThrow(
        expect.objectContaining({ code: 'ERR_VALUE_MALFORMED' }),
      );
    }
    expect(() =>
      encodeDeviceList([
        { id: 'a', ...a },
        { id: 'a', ...a },
      ]),
    ).toThrow(RangeError);
  });

  it('labels bind tenant and account unambiguously', () => {
    expect(bytes.toHex(accountLabel({ tenant: 'ab', account: 'c' }))).not.toBe(
      bytes.toHex(accountLabel({ tenant: 'a', account: 'bc' })),
    );
    expect(() => accountLabel({ tenant: 'A', account: 'c' })).toThrow(RangeError);
  });
});
