/**
 * Owner-history proofs (PROTOCOL.md §6, format 2): the probes are split into batches of 255,
 * each with its own prefix proof against the one root. Round trips, strict decoding of the
 * batch layout, and verification of a 300-version history whose second batch is tampered with.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import fc from 'fast-check';
import { bytes, commitment, encoding, epoch, merkle, prefixTree, vrf } from '@keytrail/core';
import {
  decodeHistoryProof,
  encodeHistoryProof,
  historyBatches,
  verifyHistoryProof,
  HISTORY_BATCH_PROBES,
  HISTORY_PROOF_FORMAT,
  MAX_HISTORY_VERSIONS,
  type HistoryEntry,
  type HistoryProof,
  type ProofContext,
} from '../src/proof.ts';
import { historyProbes } from '../src/ladder.ts';
import { accountLabel } from '../src/account.ts';

const LABEL = accountLabel({ tenant: 'acme', account: 'alice' });
const VRF_SECRET = new Uint8Array(32).fill(0x42);
/** Versions 0..299: 300 listed + 6 absent ladder probes = 306 probes, batches of 255 and 51. */
const VERSIONS = 300;

function entry(version: number): HistoryEntry {
  return {
    version,
    epoch: version >> 4,
    opening: new Uint8Array(16).fill(version & 0xff),
    value: Uint8Array.of(version >> 8, version & 0xff),
  };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).name;
  }
  return undefined;
}

const flip = (b: Uint8Array, i = 0): Uint8Array => {
  const c = b.slice();
  c[i % c.length] = (c[i % c.length] ?? 0) ^ 0x01;
  return c;
};

function replaceAt<T>(list: readonly T[], i: number, v: T): T[] {
  const c = [...list];
  c[i] = v;
  return c;
}

/** Offset of `uint16 batch_count` in an encoded history proof. */
function batchCountOffset(p: HistoryProof): number {
  const entries = p.entries.reduce((n, e) => n + 4 + 8 + 16 + 4 + e.value.length, 0);
  return 1 + epoch.EPOCH_RECORD_SIZE + 4 + entries + p.vrfProofs.length * 80;
}

/** The encoding with the batch section (count, proofs) replaced. */
function withBatches(
  p: HistoryProof,
  count: number,
  prefixes: prefixTree.PrefixProof[],
): Uint8Array {
  const head = encodeHistoryProof(p).subarray(0, batchCountOffset(p));
  const w = new encoding.Writer();
  w.bytes(head).u16(count);
  for (const prefix of prefixes) prefixTree.writeProof(w, prefix);
  w.u8(p.logInclusion.length);
  for (const h of p.logInclusion) w.bytes(h);
  return w.finish();
}

/** A deterministic 32-byte key (a hash), for other accounts' leaves and fake probes. */
function fillerKey(i: number, tag: number): Uint8Array {
  return merkle.leafHash(Uint8Array.of(tag, i));
}

let leaves: prefixTree.PrefixEntry[];
let tree: prefixTree.PrefixTree;
let keys: Uint8Array[];
let genuine: HistoryProof;
let ctx: ProofContext;

beforeAll(() => {
  const entries = Array.from({ length: VERSIONS }, (_, v) => entry(v));
  const probes = historyProbes(entries.map((e) => e.version));
  const vrfProofs = probes.map((p) => vrf.prove(VRF_SECRET, vrf.vrfInput(LABEL, p.version)));
  keys = vrfProofs.map((x) => vrf.proofToHash(x).slice(0, vrf.KT_OUTPUT_SIZE));
  leaves = [
    ...entries.map((e) => ({
      key: keys[probes.findIndex((p) => p.version === e.version)] as Uint8Array,
      commitment: commitment.commit(e.opening, LABEL, e.version, e.value),
    })),
    // Other accounts' leaves, so that the batch proofs carry copath hashes of their own.
    ...Array.from({ length: 64 }, (_, i) => ({
      key: fillerKey(i, 0x11),
      commitment: fillerKey(i, 0x22),
    })),
  ];
  tree = new prefixTree.PrefixTree();
  tree.insertBatch(leaves);
  const record: epoch.EpochRecord = {
    epoch: 0,
    timestampMs: 1_700_000_000_000,
    prefixRoot: tree.root(),
    insertCount: VERSIONS + 64,
    insertsDigest: new Uint8Array(32),
  };
  genuine = {
    record,
    entries,
    vrfProofs,
    prefixes: historyBatches(keys).map((batch) => tree.proveMany(batch)),
    logInclusion: [],
  };
  ctx = {
    vrfPublicKey: vrf.publicKey(VRF_SECRET),
    label: LABEL,
    size: 1,
    root: merkle.rootHash([merkle.leafHash(epoch.encodeEpochRecord(record))]),
  };
});

describe('history batches', () => {
  it('split probes into runs of 255, the last one shorter', () => {
    expect(HISTORY_BATCH_PROBES).toBe(255);
    expect(historyBatches([])).toEqual([]);
    const sizes = (n: number): number[] =>
      historyBatches(Array.from({ length: n }, (_, i) => i)).map((b) => b.length);
    expect(sizes(1)).toEqual([1]);
    expect(sizes(255)).toEqual([255]);
    expect(sizes(256)).toEqual([255, 1]);
    expect(sizes(306)).toEqual([255, 51]);
    expect(sizes(765)).toEqual([255, 255, 255]);
    expect(historyBatches([0, 1, 2, 3]).flat()).toEqual([0, 1, 2, 3]);
  });
});

describe('history proof encoding (format 2)', () => {
  it('round-trips a 300-version history in two batches', () => {
    const enc = encodeHistoryProof(genuine);
    expect(enc[0]).toBe(HISTORY_PROOF_FORMAT);
    expect(HISTORY_PROOF_FORMAT).toBe(2);
    const at = batchCountOffset(genuine);
    expect((enc[at] ?? 0) * 256 + (enc[at + 1] ?? 0)).toBe(2);
    const dec = decodeHistoryProof(enc);
    expect(dec.prefixes.map((p) => p.results.length)).toEqual([255, 51]);
    expect(dec.entries.map((e) => e.version)).toEqual(genuine.entries.map((e) => e.version));
    expect(bytes.toHex(encodeHistoryProof(dec))).toBe(bytes.toHex(enc));
  });

  it('round-trips random histories with exactly ⌈probes / 255⌉ batches', () => {
    const fakeVrf = (i: number): Uint8Array => new Uint8Array(80).fill(i & 0xff);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 3000 }), { maxLength: 700 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        (versions, ts) => {
          versions.sort((a, b) => a - b);
          const probes = historyProbes(versions);
          const probeKeys = probes.map((p) => fillerKey(p.version & 0xff, p.version >> 8));
          const p: HistoryProof = {
            record: { ...genuine.record, timestampMs: ts },
            entries: versions.map(entry),
            vrfProofs: probes.map((_, i) => fakeVrf(i)),
            prefixes: historyBatches(probeKeys).map((batch) => tree.proveMany(batch)),
            logInclusion: [new Uint8Array(32).fill(7)],
          };
          const enc = encodeHistoryProof(p);
          const dec = decodeHistoryProof(enc);
          expect(dec.prefixes).toHaveLength(Math.ceil(probes.length / HISTORY_BATCH_PROBES));
          expect(bytes.toHex(encodeHistoryProof(dec))).toBe(bytes.toHex(enc));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('an empty history is one batch of one probe (version 0 absent)', () => {
    const p: HistoryProof = {
      ...genuine,
      entries: [],
      vrfProofs: [genuine.vrfProofs[0] as Uint8Array],
      prefixes: [tree.proveMany([fillerKey(0, 0x33)])],
    };
    const dec = decodeHistoryProof(encodeHistoryProof(p));
    expect(dec.prefixes.map((x) => x.results.length)).toEqual([1]);
  });

  it('decoding is strict about the batch layout', () => {
    const enc = encodeHistoryProof(genuine);
    const at = batchCountOffset(genuine);
    const withCount = (n: number): Uint8Array => {
      const c = enc.slice();
      c[at] = n >> 8;
      c[at + 1] = n & 0xff;
      return c;
    };
    const [b0, b1] = genuine.prefixes as [prefixTree.PrefixProof, prefixTree.PrefixProof];
    const cases: [string, Uint8Array][] = [
      ['batch count 0', withCount(0)],
      ['batch count 1', withCount(1)],
      ['batch count 3', withCount(3)],
      ['batch count 65535', withCount(0xffff)],
      ['a trailing byte', bytes.concatBytes(enc, Uint8Array.of(0))],
      ['a trailing batch', withBatches(genuine, 2, [b0, b1, b1])],
      ['a third batch counted and sent', withBatches(genuine, 3, [b0, b1, b1])],
      ['the second batch missing', withBatches(genuine, 2, [b0])],
      ['one batch counted, the first sent', withBatches(genuine, 1, [b0])],
      ['truncated', enc.subarray(0, enc.length - 1)],
      [
        'batches split at 254',
        withBatches(genuine, 2, [
          tree.proveMany(keys.slice(0, 254)),
          tree.proveMany(keys.slice(254)),
        ]),
      ],
      ['batches swapped', withBatches(genuine, 2, [b1, b0])],
      ['format 1', bytes.concatBytes(Uint8Array.of(1), enc.subarray(1))],
      ['format 3', bytes.concatBytes(Uint8Array.of(3), enc.subarray(1))],
    ];
    for (const [name, data] of cases) {
      expect({ name, code: codeOf(() => decodeHistoryProof(data)) }).toEqual({
        name,
        code: 'ERR_RESPONSE_MALFORMED',
      });
    }
    // The unmodified helper output decodes: the cases above fail for what they change.
    expect(codeOf(() => decodeHistoryProof(withBatches(genuine, 2, [b0, b1])))).toBeUndefined();
  });

  it('refuses more than MAX_HISTORY_VERSIONS versions, decoding and encoding', () => {
    const enc = encodeHistoryProof(genuine);
    const c = enc.slice();
    new DataView(c.buffer).setUint32(1 + epoch.EPOCH_RECORD_SIZE, MAX_HISTORY_VERSIONS + 1);
    expect(codeOf(() => decodeHistoryProof(c))).toBe('ERR_RESPONSE_MALFORMED');
    const many = Array.from({ length: MAX_HISTORY_VERSIONS + 1 }, (_, v) => entry(v));
    expect(() => encodeHistoryProof({ ...genuine, entries: many })).toThrow(RangeError);
  });

  it('the encoder refuses batches that do not match the probes', () => {
    const [b0, b1] = genuine.prefixes as [prefixTree.PrefixProof, prefixTree.PrefixProof];
    for (const prefixes of [
      [b0],
      [b0, b1, b1],
      [b1, b0],
      [tree.proveMany(keys.slice(0, 254)), tree.proveMany(keys.slice(254))],
    ]) {
      expect(() => encodeHistoryProof({ ...genuine, prefixes })).toThrow(RangeError);
    }
    expect(() =>
      encodeHistoryProof({ ...genuine, entries: [...genuine.entries].reverse() }),
    ).toThrow(RangeError);
  });
});

describe('history proof verification', () => {
  it('a 300-version history in two batches verifies', () => {
    verifyHistoryProof(ctx, decodeHistoryProof(encodeHistoryProof(genuine)));
  });

  it('tampering with the second batch, or with what it covers, is rejected', () => {
    const [b0, b1] = genuine.prefixes as [prefixTree.PrefixProof, prefixTree.PrefixProof];
    expect(b1.elements.length).toBeGreaterThan(0);
    const r = b1.results[10] as prefixTree.PrefixSearchResult;
    expect(r.type).toBe('inclusion');
    const cases: [string, HistoryProof, string][] = [
      [
        'a copath element of batch 1',
        {
          ...genuine,
          prefixes: [
            b0,
            { ...b1, elements: replaceAt(b1.elements, 0, flip(b1.elements[0] as Uint8Array)) },
          ],
        },
        'ERR_PREFIX_PROOF',
      ],
      [
        'a result depth in batch 1',
        {
          ...genuine,
          prefixes: [
            b0,
            { ...b1, results: replaceAt(b1.results, 10, { ...r, depth: r.depth + 1 }) },
          ],
        },
        'ERR_PREFIX_PROOF',
      ],
      [
        'a result type in batch 1',
        {
          ...genuine,
          prefixes: [
            b0,
            {
              ...b1,
              results: replaceAt(b1.results, 10, { type: 'nonInclusionParent', depth: r.depth }),
            },
          ],
        },
        'ERR_LADDER',
      ],
      [
        'batch 1 proven against another tree (one more leaf)',
        (() => {
          const other = new prefixTree.PrefixTree();
          other.insertBatch([
            ...leaves,
            { key: fillerKey(0, 0x44), commitment: new Uint8Array(32) },
          ]);
          return { ...genuine, prefixes: [b0, other.proveMany(keys.slice(255))] };
        })(),
        'ERR_PREFIX_PROOF',
      ],
      [
        'the value of a version in batch 1',
        {
          ...genuine,
          entries: replaceAt(genuine.entries, 280, {
            ...(genuine.entries[280] as HistoryEntry),
            value: Uint8Array.of(9),
          }),
        },
        'ERR_PREFIX_PROOF',
      ],
      [
        'a VRF proof in batch 1',
        {
          ...genuine,
          vrfProofs: replaceAt(
            genuine.vrfProofs,
            300,
            flip(genuine.vrfProofs[300] as Uint8Array, 45),
          ),
        },
        'ERR_VRF_PROOF',
      ],
      [
        'the record root (every batch)',
        { ...genuine, record: { ...genuine.record, prefixRoot: flip(genuine.record.prefixRoot) } },
        'ERR_PREFIX_PROOF',
      ],
    ];
    for (const [name, p, code] of cases) {
      // Through the wire, as a client receives it.
      const received = decodeHistoryProof(encodeHistoryProof(p));
      const got = codeOf(() => {
        verifyHistoryProof(ctx, received);
      });
      expect({ name, code: got }).toEqual({ name, code });
    }
  });

  it('refuses a hand-built proof whose batches do not match the probes', () => {
    const [b0] = genuine.prefixes as [prefixTree.PrefixProof];
    const got = codeOf(() => {
      verifyHistoryProof(ctx, { ...genuine, prefixes: [b0] });
    });
    expect(got).toBe('ERR_RESPONSE_MALFORMED');
  });
});
