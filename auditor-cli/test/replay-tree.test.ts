/**
 * The auditor's replay tree and pruned tree against `@keytrail/core`'s PrefixTree (the one the
 * directory uses) and against each other: same roots for any key set, any batch split and any
 * insertion order; duplicates reported, never applied.
 * @module
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomFillSync } from 'node:crypto';
import { bytes, prefixTree } from '@keytrail/core';
import { installNodeCrypto } from '@keytrail/server-kit';
import { ReplayTree } from '../src/replay-tree.ts';
import { PartialTree } from '../src/partial-tree.ts';
import { AuditError } from '../src/errors.ts';
import { HashPool } from '../src/hash-pool.ts';

installNodeCrypto();

const hex = (b: Uint8Array | null | undefined): string => (b ? bytes.toHex(b) : String(b));
const entry = (key: Uint8Array, commitment: Uint8Array): Uint8Array =>
  bytes.concatBytes(key, commitment);

/** Keys with shared prefixes, so that long parent chains and deep splits occur. */
const keyArb = fc
  .tuple(
    fc.uint8Array({ minLength: 32, maxLength: 32 }),
    fc.integer({ min: 0, max: 255 }),
    fc.integer({ min: 0, max: 3 }),
  )
  .map(([k, shared, variant]) => {
    const out = k.slice();
    if (variant > 0) {
      // Force a long common prefix with a fixed pattern: up to `shared` leading bits zero.
      for (let i = 0; i < shared >> 3; i++) out[i] = 0;
      out[shared >> 3] = (out[shared >> 3] ?? 0) & (0xff >> (shared & 7));
    }
    return out;
  });

const setArb = fc.uniqueArray(keyArb, {
  minLength: 0,
  maxLength: 60,
  selector: (k) => bytes.toHex(k),
});

describe('ReplayTree', () => {
  it('gives the empty root and single-leaf root the contract defines', () => {
    const t = new ReplayTree();
    expect(bytes.toHex(t.root())).toBe('00'.repeat(32));
    const key = new Uint8Array(32).fill(7);
    const c = new Uint8Array(32).fill(9);
    expect(t.insert(entry(key, c))).toBe(-1);
    expect(hex(t.root())).toBe(hex(prefixTree.leafHash(key, c)));
  });

  it('builds a two-leaf tree with a parent chain down to the first differing bit', () => {
    const a = new Uint8Array(32);
    const b = new Uint8Array(32);
    b[0] = 0x20; // differs at bit 2
    const c = new Uint8Array(32).fill(1);
    const t = new ReplayTree();
    t.insert(entry(a, c));
    t.insert(entry(b, c));
    const zero = new Uint8Array(32);
    const split = prefixTree.parentHash(prefixTree.leafHash(a, c), prefixTree.leafHash(b, c));
    const expected = prefixTree.parentHash(prefixTree.parentHash(split, zero), zero);
    expect(hex(t.root())).toBe(hex(expected));
  });

  it('matches core PrefixTree for any key set, batch split and order (fast-check)', () => {
    fc.assert(
      fc.property(
        setArb,
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 8 }),
        (keys, cuts) => {
          const entries = keys.map((k, i) => ({
            key: k,
            commitment: new Uint8Array(32).fill(i & 0xff),
          }));
          const core = new prefixTree.PrefixTree();
          const mine = new ReplayTree(4);
          const partial = PartialTree.empty();
          let pos = 0;
          let c = 0;
          while (pos < entries.length) {
            const batch = entries.slice(pos, pos + (cuts[c++ % cuts.length] ?? 1));
            pos += batch.length;
            core.insertBatch(batch);
            for (const e of [...batch].reverse()) {
              expect(mine.insert(entry(e.key, e.commitment))).toBe(-1);
              expect(partial.insert(e.key, e.commitment).kind).toBe('inserted');
            }
            expect(bytes.toHex(mine.root())).toBe(bytes.toHex(core.root()));
          }
          expect(bytes.toHex(partial.root())).toBe(bytes.toHex(core.root()));
          expect(mine.size).toBe(keys.length);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('reports a present key with its slot and changes nothing', () => {
    fc.assert(
      fc.property(
        setArb.filter((k) => k.length > 0),
        fc.nat(),
        (keys, pick) => {
          const t = new ReplayTree();
          keys.forEach((k, i) => t.insert(entry(k, new Uint8Array(32).fill(i & 0xff))));
          const root = t.root();
          const i = pick % keys.length;
          const k = keys[i] as Uint8Array;
          const slot = t.insert(entry(k, new Uint8Array(32).fill(0xee)));
          expect(slot).toBe(i);
          expect(hex(t.leafEntry(slot).subarray(0, 32))).toBe(hex(k));
          expect(hex(t.root())).toBe(hex(root));
          expect(t.size).toBe(keys.length);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('exports a pruned tree that hashes to the same root and replays a batch exactly', () => {
    fc.assert(
      fc.property(setArb, setArb, (before, batch) => {
        const known = new Set(before.map((k) => bytes.toHex(k)));
        const fresh = batch.filter((k) => !known.has(bytes.toHex(k)));
        const t = new ReplayTree();
        before.forEach((k) => t.insert(entry(k, k)));
        const partial = PartialTree.decode(t.exportPartial(fresh));
        expect(hex(partial.root())).toBe(hex(t.root()));
        for (const k of fresh) {
          expect(partial.insert(k, k).kind).toBe('inserted');
          t.insert(entry(k, k));
        }
        expect(hex(partial.root())).toBe(hex(t.root()));
        // a key of the old tree is found, with its commitment, along an exported path
        if (before.length > 0) {
          const p2 = PartialTree.decode(t.exportPartial([before[0] as Uint8Array]));
          expect(hex(p2.get(before[0] as Uint8Array))).toBe(hex(before[0]));
        }
      }),
      { numRuns: 150 },
    );
  });

  it('handles keys that differ only in their last bit (leaves at depth 256)', () => {
    const a = new Uint8Array(32);
    const b = new Uint8Array(32);
    b[31] = 1;
    const t = new ReplayTree();
    const core = new prefixTree.PrefixTree();
    for (const [k, c] of [
      [a, 1],
      [b, 2],
    ] as const) {
      expect(t.insert(entry(k, new Uint8Array(32).fill(c)))).toBe(-1);
      core.insert(k, new Uint8Array(32).fill(c));
    }
    expect(hex(t.root())).toBe(hex(core.root()));
    // the same key again, with another commitment, is a duplicate of slot 1
    expect(t.insert(entry(b, new Uint8Array(32).fill(9)))).toBe(1);
    expect(hex(t.root())).toBe(hex(core.root()));
    const partial = PartialTree.decode(t.exportPartial([b]));
    expect(partial.insert(b, new Uint8Array(32).fill(9)).kind).toBe('present');
  });

  it('grows past its initial capacity', () => {
    const t = new ReplayTree(1);
    const core = new prefixTree.PrefixTree();
    const keys = Array.from({ length: 3000 }, (_, i) => {
      const k = new Uint8Array(32);
      new DataView(k.buffer).setUint32(0, Math.imul(i, 2654435761) >>> 0);
      return k;
    });
    for (const k of keys) t.insert(entry(k, k));
    core.insertBatch(keys.map((k) => ({ key: k, commitment: k })));
    expect(hex(t.root())).toBe(hex(core.root()));
  });
});

describe('ReplayTree with hashing workers', () => {
  const pools: HashPool[] = [];
  beforeAll(async () => {
    pools.push(await HashPool.start(1), await HashPool.start(3));
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.close()));
  });

  it('gives the same roots as core PrefixTree, whatever the split (fast-check)', () => {
    fc.assert(
      fc.property(
        setArb,
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 0, max: 1 }),
        fc.integer({ min: 1, max: 8 }),
        (keys, cuts, which, threshold) => {
          const pool = pools[which] as HashPool;
          const core = new prefixTree.PrefixTree();
          const mine = new ReplayTree(2, { pool, parallelThreshold: threshold });
          let pos = 0;
          let c = 0;
          while (pos < keys.length) {
            const batch = keys.slice(pos, pos + (cuts[c++ % cuts.length] ?? 1));
            pos += batch.length;
            core.insertBatch(batch.map((k) => ({ key: k, commitment: k })));
            for (const k of batch) expect(mine.insert(entry(k, k))).toBe(-1);
            expect(hex(mine.root())).toBe(hex(core.root()));
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('hashes a large tree across threads, with regrowth of the shared buffers', () => {
    const pool = pools[1] as HashPool;
    const t = new ReplayTree(16, { pool });
    const core = new prefixTree.PrefixTree();
    const data = new Uint8Array(20_000 * 64);
    randomFillSync(data);
    for (let b = 0; b < 4; b++) {
      const batch: { key: Uint8Array; commitment: Uint8Array }[] = [];
      for (let i = b * 5000; i < (b + 1) * 5000; i++) {
        t.insert(data, i * 64);
        batch.push({
          key: data.subarray(i * 64, i * 64 + 32),
          commitment: data.subarray(i * 64 + 32, i * 64 + 64),
        });
      }
      core.insertBatch(batch);
      expect(hex(t.root())).toBe(hex(core.root()));
    }
  });
});

describe('PartialTree', () => {
  it('rejects truncated, trailing, unknown-tag and off-path encodings', () => {
    const code = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        return (e as AuditError).code;
      }
      return 'none';
    };
    const leaf = bytes.concatBytes(Uint8Array.of(1), new Uint8Array(64));
    expect(code(() => PartialTree.decode(leaf))).toBe('none');
    expect(code(() => PartialTree.decode(leaf.subarray(0, 40)))).toBe(
      'ERR_AUDIT_EVIDENCE_MALFORMED',
    );
    expect(code(() => PartialTree.decode(bytes.concatBytes(leaf, Uint8Array.of(0))))).toBe(
      'ERR_AUDIT_EVIDENCE_MALFORMED',
    );
    expect(code(() => PartialTree.decode(Uint8Array.of(9)))).toBe('ERR_AUDIT_EVIDENCE_MALFORMED');
    // a leaf whose key starts with bit 1 placed as a left child
    const right = new Uint8Array(64);
    right[0] = 0x80;
    const offPath = bytes.concatBytes(Uint8Array.of(2, 1), right, Uint8Array.of(0));
    expect(code(() => PartialTree.decode(offPath))).toBe('ERR_AUDIT_EVIDENCE_MALFORMED');
    // inserting along a pruned path is refused
    const pruned = PartialTree.decode(
      bytes.concatBytes(Uint8Array.of(3), new Uint8Array(32).fill(5)),
    );
    expect(code(() => pruned.insert(new Uint8Array(32), new Uint8Array(32)))).toBe(
      'ERR_AUDIT_EVIDENCE_MALFORMED',
    );
  });
});
