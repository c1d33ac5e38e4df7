/**
 * The KEYTRANS binary ladder (draft-ietf-keytrans-protocol §6.2) and the probe sets: known
 * answers, and the property that makes owner monitoring complete: for any t < t′, the lookup
 * of t′ shows present a version that the owner's history of t shows absent.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { fullLadder, lookupProbes, historyProbes } from '../src/ladder.ts';

const fmt = (ps: { version: number; included: boolean }[]): string[] =>
  ps.map((p) => `${p.version}${p.included ? '+' : '-'}`);

describe('binary ladder', () => {
  it('known answers', () => {
    expect(fmt(fullLadder(-1))).toEqual(['0-']);
    expect(fmt(fullLadder(0))).toEqual(['0+', '1-']);
    expect(fmt(fullLadder(1))).toEqual(['0+', '1+', '3-', '2-']);
    expect(fmt(fullLadder(2))).toEqual(['0+', '1+', '3-', '2+']);
    expect(fmt(fullLadder(3))).toEqual(['0+', '1+', '3+', '7-', '5-', '4-']);
    expect(fmt(fullLadder(10))).toEqual(['0+', '1+', '3+', '7+', '15-', '11-', '9+', '10+']);
    expect(fmt(lookupProbes(3))).toEqual(['0+', '1+', '3+', '4-']);
    expect(fmt(lookupProbes(2))).toEqual(['0+', '1+', '2+', '3-']);
    expect(fmt(historyProbes([0, 1, 2, 3]))).toEqual(['0+', '1+', '2+', '3+', '4-', '5-', '7-']);
    expect(() => fullLadder(-2)).toThrow(RangeError);
    expect(() => fullLadder(0xffff_ffff)).toThrow(RangeError);
  });

  it('every ladder ends on t present and t + 1 absent', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff_fffe }), (t) => {
        const l = fullLadder(t);
        expect(l.find((p) => p.version === t)?.included).toBe(true);
        expect(l.find((p) => p.version === t + 1)?.included).toBe(false);
        for (const p of l) expect(p.included).toBe(p.version <= t);
      }),
      { numRuns: 2000 },
    );
  });

  it('a viewer lookup of any t′ ≠ t conflicts with the owner history of t', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: -1, max: 5000 }), (a, b) => {
        fc.pre(a !== b);
        const [t, viewer] = [Math.min(a, b), Math.max(a, b)];
        const owner = historyProbes(Array.from({ length: t + 1 }, (_, i) => i));
        const seen = lookupProbes(viewer);
        const conflict = seen.some(
          (p) => p.included && owner.some((o) => o.version === p.version && !o.included),
        );
        expect(conflict).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });
});
