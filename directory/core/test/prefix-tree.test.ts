import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import * as pt from '../src/prefix-tree.ts';
import { fromHex, toHex } from '../src/bytes.ts';
import { KtError, MalformedError, VerificationError } from '../src/errors.ts';
import { Reader, Writer } from '../src/encoding.ts';
import doc from './vectors/prefix-tree.json' with { type: 'json' };

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

// ---------------------------------------------------------------------------------------------
// A deliberately naive reference: an uncompressed binary trie that walks all 256 bits of every
// key, with the KEYTRANS value rule applied to each subtree (empty → zeros, exactly one key →
// its leaf, otherwise a parent). Hashing uses noble's SHA-256 directly, not the crypto seam.
// ---------------------------------------------------------------------------------------------

interface NaiveNode {
  entries: pt.PrefixEntry[];
  left: NaiveNode | undefined;
  right: NaiveNode | undefined;
}

const bit = (key: Uint8Array, i: number): number => (key[i >> 3]! >> (7 - (i & 7))) & 1;
const ZERO = new Uint8Array(32);
const cat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
const naiveLeaf = (e: pt.PrefixEntry): Uint8Array =>
  nobleSha256(cat(Uint8Array.of(2), e.key, e.commitment));
const naiveParent = (l: Uint8Array, r: Uint8Array): Uint8Array =>
  nobleSha256(cat(Uint8Array.of(3), l, r));

function naiveBuild(entries: readonly pt.PrefixEntry[]): NaiveNode | undefined {
  if (entries.length === 0) return undefined;
  const root: NaiveNode = { entries: [], left: undefined, right: undefined };
  for (const e of entries) {
    let n = root;
    n.entries.push(e);
    for (let d = 0; d < 256; d++) {
      const side = bit(e.key, d) === 1 ? 'right' : 'left';
      n[side] ??= { entries: [], left: undefined, right: undefined };
      n = n[side];
      n.entries.push(e);
    }
  }
  return root;
}

function naiveValue(n: NaiveNode | undefined): Uint8Array {
  if (n === undefined) return ZERO;
  if (n.entries.length === 1) return naiveLeaf(n.entries[0]!);
  return naiveParent(naiveValue(n.left), naiveValue(n.right));
}

function naiveProve(root: NaiveNode | undefined, key: Uint8Array): pt.PrefixProof {
  let n = root;
  let depth = 0;
  let result: pt.PrefixSearchResult;
  for (;;) {
    if (n === undefined) {
      result = { type: 'nonInclusionParent', depth };
      break;
    }
    if (n.entries.length === 1) {
      const e = n.entries[0]!;
      result =
        toHex(e.key) === toHex(key)
          ? { type: 'inclusion', depth }
          : { type: 'nonInclusionLeaf', depth, leaf: { key: e.key, commitment: e.commitment } };
      break;
    }
    n = bit(key, depth) === 1 ? n.right : n.left;
    depth++;
  }
  const collect = (m: NaiveNode | undefined, d: number): Uint8Array[] => {
    if (m === undefined || m.entries.length === 1) return [];
    return bit(key, d) === 1
      ? [naiveValue(m.left), ...collect(m.right, d + 1)]
      : [...collect(m.left, d + 1), naiveValue(m.right)];
  };
  return { results: [result], elements: collect(root, 0) };
}

const hexProof = (p: pt.PrefixProof): unknown => ({
  results: p.results.map((r) =>
    r.type === 'nonInclusionLeaf'
      ? { ...r, leaf: { key: toHex(r.leaf.key), commitment: toHex(r.leaf.commitment) } }
      : r,
  ),
  elements: p.elements.map(toHex),
});

// Keys from a few prefixes, so trees get shared prefixes, one-child chains and deep leaves.
const keyArb = fc
  .tuple(
    fc.constantFrom(0x00, 0x01, 0x80, 0xff, 0x55),
    fc.constantFrom(0x00, 0xff, 0x0f),
    fc.uint8Array({ minLength: 30, maxLength: 30 }),
  )
  .map(([a, b, rest]) => Uint8Array.of(a, b, ...rest));
const entryArb = fc.record({
  key: keyArb,
  commitment: fc.uint8Array({ minLength: 32, maxLength: 32 }),
});
const entriesArb = (maxLength: number): fc.Arbitrary<pt.PrefixEntry[]> =>
  fc.uniqueArray(entryArb, { maxLength, selector: (e) => toHex(e.key) });
const sortByKey = (entries: readonly pt.PrefixEntry[]): pt.PrefixEntry[] =>
  [...entries].sort((a, b) => (toHex(a.key) < toHex(b.key) ? -1 : 1));
const treeOf = (entries: readonly pt.PrefixEntry[]): pt.PrefixTree => {
  const t = new pt.PrefixTree();
  for (const e of entries) t.insert(e.key, e.commitment);
  return t;
};

// ---------------------------------------------------------------------------------------------

type VectorResult =
  | { type: 'inclusion' | 'nonInclusionParent'; depth: number }
  | { type: 'nonInclusionLeaf'; depth: number; leaf: { key: string; commitment: string } };

const toResult = (r: VectorResult): pt.PrefixSearchResult =>
  r.type === 'nonInclusionLeaf'
    ? { ...r, leaf: { key: fromHex(r.leaf.key), commitment: fromHex(r.leaf.commitment) } }
    : r;

describe('katie prefix-tree vectors', () => {
  it('has vectors', () => {
    expect(doc.vectors.length).toBe(11);
    expect(doc.tampered.cases.length).toBe(10);
  });

  for (const v of doc.vectors) {
    describe(v.desc, () => {
      const entries = v.entries.map((e) => ({
        key: fromHex(e.key),
        commitment: fromHex(e.commitment),
      }));
      const keys = v.searches.map((s) => fromHex(s.key));
      const searches = v.searches.map((s): pt.PrefixSearch =>
        'commitment' in s
          ? { key: fromHex(s.key), commitment: fromHex(s.commitment) }
          : { key: fromHex(s.key) },
      );
      const want = {
        results: (v.want.results as VectorResult[]).map(toResult),
        elements: v.want.elements.map(fromHex),
      };

      it('root: incremental inserts, one batch and build agree', () => {
        expect(toHex(treeOf(entries).root())).toBe(v.want.root);
        const batch = new pt.PrefixTree();
        batch.insertBatch(entries);
        expect(toHex(batch.root())).toBe(v.want.root);
        expect(toHex(pt.PrefixTree.build(sortByKey(entries)).root())).toBe(v.want.root);
        expect(toHex(naiveValue(naiveBuild(entries)))).toBe(v.want.root);
      });

      it('proof: results, elements and wire encoding', () => {
        const proof = treeOf(entries).proveMany(keys);
        expect(hexProof(proof)).toEqual(hexProof(want));
        expect(toHex(pt.encodeProof(proof))).toBe(v.want.proof);
        expect(hexProof(pt.decodeProof(fromHex(v.want.proof)))).toEqual(hexProof(want));
      });

      it('verifies', () => {
        const out = pt.verifyMany(
          fromHex(v.want.root),
          searches,
          pt.decodeProof(fromHex(v.want.proof)),
        );
        expect(out.map((r) => r.included)).toEqual(want.results.map((r) => r.type === 'inclusion'));
        expect(toHex(pt.evaluate(searches, want))).toBe(v.want.root);
      });
    });
  }

  describe('tampered proofs', () => {
    const base = doc.vectors.find((v) => v.desc === doc.tampered.base)!;
    const search = base.searches[0] as { key: string; commitment: string };
    for (const c of doc.tampered.cases) {
      it(`${c.desc}: ${c.wantErr}`, () => {
        expectCode(() => {
          pt.verify(
            fromHex(base.want.root),
            fromHex(search.key),
            pt.decodeProof(fromHex(c.proof)),
            fromHex(search.commitment),
          );
        }, c.wantErr);
      });
    }
  });
});

describe('PrefixTree', () => {
  it('empty tree: zero root, non-inclusion at depth 0, no elements', () => {
    const t = new pt.PrefixTree();
    expect(t.size).toBe(0);
    expect(toHex(t.root())).toBe('00'.repeat(32));
    const key = new Uint8Array(32).fill(9);
    const proof = t.prove(key);
    expect(proof).toEqual({ results: [{ type: 'nonInclusionParent', depth: 0 }], elements: [] });
    expect(pt.verify(t.root(), key, proof)).toEqual({ included: false, result: proof.results[0] });
    expect(t.has(key)).toBe(false);
    expect(t.get(key)).toBeUndefined();
    t.insertBatch([]);
    expect(t.size).toBe(0);
  });

  it('a proof for no keys carries the root', () => {
    const t = treeOf([{ key: new Uint8Array(32).fill(1), commitment: new Uint8Array(32).fill(2) }]);
    const proof = t.proveMany([]);
    expect(proof.elements.map(toHex)).toEqual([toHex(t.root())]);
    expect(toHex(pt.evaluate([], proof))).toBe(toHex(t.root()));
    expect(pt.verifyMany(t.root(), [], proof)).toEqual([]);
  });

  it('has, get and size', () => {
    const a = { key: new Uint8Array(32).fill(1), commitment: new Uint8Array(32).fill(0xaa) };
    const b = { key: new Uint8Array(32).fill(2), commitment: new Uint8Array(32).fill(0xbb) };
    const t = treeOf([a, b]);
    expect(t.size).toBe(2);
    expect(t.parentCount).toBe(7); // 0x01… and 0x02… first differ at bit 6
    expect(t.byteSize).toBeGreaterThanOrEqual(2 * 97 + 7 * 40);
    expect(t.has(a.key)).toBe(true);
    expect(toHex(t.get(b.key)!)).toBe(toHex(b.commitment));
    expect(t.get(new Uint8Array(32).fill(3))).toBeUndefined();
    // get returns a copy
    t.get(a.key)!.fill(0);
    expect(toHex(t.get(a.key)!)).toBe(toHex(a.commitment));
  });

  it('inserting a present key throws ERR_PREFIX_TREE_DUPLICATE_KEY and changes nothing', () => {
    const entries = [1, 2, 3].map((i) => ({
      key: new Uint8Array(32).fill(i),
      commitment: new Uint8Array(32).fill(i),
    }));
    const t = treeOf(entries);
    const root = toHex(t.root());
    const fresh = { key: new Uint8Array(32).fill(7), commitment: new Uint8Array(32) };
    expectCode(() => {
      t.insert(entries[1]!.key, new Uint8Array(32).fill(0xff));
    }, 'ERR_PREFIX_TREE_DUPLICATE_KEY');
    expectCode(() => {
      t.insertBatch([fresh, { ...entries[2]!, commitment: new Uint8Array(32) }]);
    }, 'ERR_PREFIX_TREE_DUPLICATE_KEY');
    expectCode(() => {
      t.insertBatch([fresh, { ...fresh, commitment: new Uint8Array(32).fill(1) }]);
    }, 'ERR_PREFIX_TREE_DUPLICATE_KEY');
    expect(toHex(t.root())).toBe(root);
    expect(t.size).toBe(3);
    expect(t.has(fresh.key)).toBe(false);
    t.insert(fresh.key, fresh.commitment);
    expect(toHex(t.root())).toBe(toHex(treeOf([...entries, fresh]).root()));
  });

  it('keys agreeing on 255 bits sit at depth 256, which a proof cannot express', () => {
    const a = new Uint8Array(32).fill(0x5a);
    const b = a.slice();
    b[31]! ^= 1;
    const t = treeOf([
      { key: a, commitment: ZERO },
      { key: b, commitment: ZERO },
    ]);
    expect(t.parentCount).toBe(256);
    expect(t.has(b)).toBe(true);
    expect(() => t.prove(a)).toThrow(RangeError);
    expect(toHex(t.root())).toBe(
      toHex(
        naiveValue(
          naiveBuild([
            { key: a, commitment: ZERO },
            { key: b, commitment: ZERO },
          ]),
        ),
      ),
    );
  });

  it('build rejects unsorted input and duplicates', () => {
    const a = { key: new Uint8Array(32).fill(1), commitment: new Uint8Array(32) };
    const b = { key: new Uint8Array(32).fill(2), commitment: new Uint8Array(32) };
    expect(() => pt.PrefixTree.build([b, a])).toThrow(RangeError);
    expectCode(() => pt.PrefixTree.build([a, a]), 'ERR_PREFIX_TREE_DUPLICATE_KEY');
  });

  it('rejects wrong sizes with RangeError', () => {
    const t = new pt.PrefixTree();
    expect(() => {
      t.insert(new Uint8Array(31), new Uint8Array(32));
    }).toThrow(RangeError);
    expect(() => {
      t.insert(new Uint8Array(32), new Uint8Array(33));
    }).toThrow(RangeError);
    expect(() => t.has(new Uint8Array(33))).toThrow(RangeError);
    expect(() => t.prove(new Uint8Array(0))).toThrow(RangeError);
    const k = new Uint8Array(32);
    expect(() => t.proveMany([k, k.slice()])).toThrow(RangeError);
    expect(() => pt.leafHash(k, new Uint8Array(31))).toThrow(RangeError);
    expect(() => pt.parentHash(new Uint8Array(31), k)).toThrow(RangeError);
  });

  it('leafHash and parentHash follow §11.9', () => {
    const k = new Uint8Array(32).fill(0x11);
    const c = new Uint8Array(32).fill(0x22);
    expect(toHex(pt.leafHash(k, c))).toBe(toHex(naiveLeaf({ key: k, commitment: c })));
    expect(toHex(pt.parentHash(k, c))).toBe(toHex(naiveParent(k, c)));
  });

  it('grows across many small batches (array reallocation keeps links)', () => {
    const entries = Array.from({ length: 700 }, (_, i) => ({
      key: nobleSha256(Uint8Array.of(i >> 8, i & 255)),
      commitment: nobleSha256(Uint8Array.of(1, i >> 8, i & 255)),
    }));
    const t = new pt.PrefixTree();
    for (let i = 0; i < entries.length; i += 7) t.insertBatch(entries.slice(i, i + 7));
    expect(toHex(t.root())).toBe(toHex(naiveValue(naiveBuild(entries))));
    // A large batch takes the bucketed sort path.
    const big = Array.from({ length: 5000 }, (_, i) => ({
      key: nobleSha256(Uint8Array.of(9, i >> 8, i & 255)),
      commitment: new Uint8Array(32),
    }));
    t.insertBatch(big);
    expect(toHex(t.root())).toBe(
      toHex(pt.PrefixTree.build(sortByKey([...entries, ...big])).root()),
    );
  });
});

describe('verification', () => {
  const entries = [0x10, 0x28, 0x88, 0xb8, 0xd8].map((b, i) => ({
    key: Uint8Array.of(b, ...new Uint8Array(30), i + 1),
    commitment: new Uint8Array(32).fill(0xa1 + i),
  }));
  const tree = treeOf(entries);
  const root = tree.root();
  const [A, , , , E] = entries as [
    pt.PrefixEntry,
    pt.PrefixEntry,
    pt.PrefixEntry,
    pt.PrefixEntry,
    pt.PrefixEntry,
  ];

  it('an inclusion result needs the commitment', () => {
    expectCode(
      () => pt.verify(root, A.key, tree.prove(A.key)),
      'ERR_PREFIX_PROOF_INVALID',
      VerificationError,
    );
  });

  it('a wrong commitment or a wrong root fails', () => {
    expectCode(
      () => pt.verify(root, A.key, tree.prove(A.key), E.commitment),
      'ERR_PREFIX_PROOF_INVALID',
      VerificationError,
    );
    const other = root.slice();
    other[0]! ^= 1;
    expectCode(
      () => pt.verify(other, A.key, tree.prove(A.key), A.commitment),
      'ERR_PREFIX_PROOF_INVALID',
    );
  });

  it('two searches ending at one leaf must agree on its commitment', () => {
    // 0x18… ends at A's leaf (nonInclusionLeaf); a second search for A claims another commitment.
    const probe = Uint8Array.of(0x18, ...new Uint8Array(31));
    const proof = tree.proveMany([probe, A.key]);
    expect(proof.results[0]!.type).toBe('nonInclusionLeaf');
    expect(
      pt
        .verifyMany(root, [{ key: probe }, { key: A.key, commitment: A.commitment }], proof)
        .map((r) => r.included),
    ).toEqual([false, true]);
    expectCode(
      () => pt.verifyMany(root, [{ key: probe }, { key: A.key, commitment: E.commitment }], proof),
      'ERR_PREFIX_PROOF_INVALID',
    );
    const reversed = tree.proveMany([A.key, probe]);
    expectCode(
      () =>
        pt.verifyMany(root, [{ key: A.key, commitment: E.commitment }, { key: probe }], reversed),
      'ERR_PREFIX_PROOF_INVALID',
    );
    // A forged second result naming another commitment for the same leaf.
    const forged: pt.PrefixProof = {
      results: [
        { type: 'inclusion', depth: 3 },
        { type: 'nonInclusionLeaf', depth: 3, leaf: { key: A.key, commitment: E.commitment } },
      ],
      elements: reversed.elements,
    };
    expectCode(
      () => pt.verifyMany(root, [{ key: A.key, commitment: A.commitment }, { key: probe }], forged),
      'ERR_PREFIX_PROOF_INVALID',
    );
  });

  it('contradicting results are rejected', () => {
    const probe = Uint8Array.of(0x18, ...new Uint8Array(31));
    const good = tree.proveMany([probe, A.key]);
    const bad = (results: pt.PrefixSearchResult[], searches: pt.PrefixSearch[]): void => {
      expectCode(
        () => pt.verifyMany(root, searches, { results, elements: good.elements }),
        'ERR_PREFIX_PROOF_INVALID',
      );
    };
    const s = [{ key: probe }, { key: A.key, commitment: A.commitment }];
    bad([good.results[0]!, { type: 'inclusion', depth: 2 }], s); // ends above a passed node
    bad([good.results[0]!, { type: 'inclusion', depth: 4 }], s); // disagrees about depth
    bad([good.results[0]!, { type: 'nonInclusionParent', depth: 3 }], s);
    bad([good.results[0]!, { type: 'nonInclusionLeaf', depth: 3, leaf: A }], s);
    bad([{ type: 'inclusion', depth: 3 }, good.results[1]!], s); // inclusion at another key's leaf
    bad([good.results[0]!], s); // result count
    // A non-inclusion leaf that is not on the search path, or is the searched key itself.
    bad([{ type: 'nonInclusionLeaf', depth: 3, leaf: E }], [{ key: probe }]);
    bad(
      [{ type: 'nonInclusionLeaf', depth: 3, leaf: { key: probe, commitment: A.commitment } }],
      [{ key: probe }],
    );
    // A search that ends above a node another search expanded.
    const q = Uint8Array.of(0x30, ...new Uint8Array(31));
    bad([good.results[0]!, { type: 'nonInclusionParent', depth: 2 }], [{ key: probe }, { key: q }]);
    // An inclusion result at a leaf another search showed to hold a different key.
    const r = Uint8Array.of(0x11, ...new Uint8Array(31));
    bad(
      [good.results[0]!, { type: 'inclusion', depth: 3 }],
      [{ key: probe }, { key: r, commitment: A.commitment }],
    );
    // Empty slot met twice must be nonInclusionParent both times.
    const p1 = Uint8Array.of(0x40, ...new Uint8Array(31));
    const p2 = Uint8Array.of(0x41, ...new Uint8Array(31));
    const two = tree.proveMany([p1, p2]);
    expect(two.results.map((r) => r.type)).toEqual(['nonInclusionParent', 'nonInclusionParent']);
    expect(pt.verifyMany(root, [{ key: p1 }, { key: p2 }], two).length).toBe(2);
    expectCode(
      () =>
        pt.verifyMany(root, [{ key: p1 }, { key: p2, commitment: A.commitment }], {
          results: [two.results[0]!, { type: 'inclusion', depth: 2 }],
          elements: two.elements,
        }),
      'ERR_PREFIX_PROOF_INVALID',
    );
  });

  it('element count must be exact', () => {
    const proof = tree.prove(A.key);
    expectCode(
      () => pt.verify(root, A.key, { ...proof, elements: [...proof.elements, ZERO] }, A.commitment),
      'ERR_PREFIX_PROOF_INVALID',
    );
    expectCode(
      () => pt.verify(root, A.key, { ...proof, elements: proof.elements.slice(1) }, A.commitment),
      'ERR_PREFIX_PROOF_INVALID',
    );
  });

  it('malformed shapes are ERR_PREFIX_TREE_MALFORMED', () => {
    const proof = tree.prove(A.key);
    const shapes: pt.PrefixProof[] = [
      { ...proof, results: [{ type: 'inclusion', depth: 256 }] },
      { ...proof, results: [{ type: 'inclusion', depth: -1 }] },
      { ...proof, results: [{ type: 'inclusion', depth: 1.5 }] },
      { ...proof, results: [{ type: 'other', depth: 3 } as unknown as pt.PrefixSearchResult] },
      { ...proof, elements: [new Uint8Array(31), ...proof.elements.slice(1)] },
      {
        ...proof,
        results: [
          {
            type: 'nonInclusionLeaf',
            depth: 3,
            leaf: { key: new Uint8Array(31), commitment: ZERO },
          },
        ],
      },
      {
        ...proof,
        results: [
          {
            type: 'nonInclusionLeaf',
            depth: 3,
            leaf: { key: ZERO, commitment: new Uint8Array(1) },
          },
        ],
      },
    ];
    for (const p of shapes) {
      expectCode(
        () => pt.verify(root, A.key, p, A.commitment),
        'ERR_PREFIX_TREE_MALFORMED',
        MalformedError,
      );
      expectCode(() => pt.encodeProof(p), 'ERR_PREFIX_TREE_MALFORMED', MalformedError);
    }
  });

  it('caller errors are RangeErrors', () => {
    const proof = tree.prove(A.key);
    expect(() => pt.verify(new Uint8Array(31), A.key, proof, A.commitment)).toThrow(RangeError);
    expect(() => pt.verify(root, A.key, proof, new Uint8Array(31))).toThrow(RangeError);
    expect(() =>
      pt.verifyMany(root, [{ key: A.key }, { key: A.key.slice() }], tree.proveMany([A.key, E.key])),
    ).toThrow(RangeError);
  });

  it('the wire format is bounded and strict', () => {
    const tooMany = { results: [], elements: Array.from({ length: 65536 }, () => ZERO) };
    expectCode(() => pt.encodeProof(tooMany), 'ERR_ENCODING_TOO_LARGE');
    const manyResults = {
      results: Array.from({ length: 256 }, () => ({ type: 'inclusion', depth: 0 }) as const),
      elements: [],
    };
    expectCode(() => pt.encodeProof(manyResults), 'ERR_ENCODING_TOO_LARGE');
    // No results: at most the one root element.
    expectCode(
      () => pt.decodeProof(fromHex('000002' + '00'.repeat(64))),
      'ERR_PREFIX_TREE_MALFORMED',
    );
    expect(pt.decodeProof(fromHex('000001' + '00'.repeat(32))).elements.length).toBe(1);
    // readProof/writeProof embed in a larger structure.
    const w = new Writer().u8(0xaa);
    pt.writeProof(w, tree.prove(E.key));
    w.u8(0xbb);
    const r = new Reader(w.finish());
    expect(r.u8()).toBe(0xaa);
    expect(hexProof(pt.readProof(r))).toEqual(hexProof(tree.prove(E.key)));
    expect(r.u8()).toBe(0xbb);
    r.end();
  });
});

describe('properties against the naive reference', () => {
  it('roots agree: naive, incremental, any insertion order, batches, build', () => {
    fc.assert(
      fc.property(
        entriesArb(40),
        fc.nat(),
        fc.integer({ min: 1, max: 8 }),
        (entries, seed, chunk) => {
          const want = toHex(naiveValue(naiveBuild(entries)));
          const t = treeOf(entries);
          expect(toHex(t.root())).toBe(want);
          expect(t.size).toBe(entries.length);
          // Another order: rotate and reverse.
          const k = entries.length === 0 ? 0 : seed % entries.length;
          const other = [...entries.slice(k), ...entries.slice(0, k)].reverse();
          expect(toHex(treeOf(other).root())).toBe(want);
          const chunked = new pt.PrefixTree();
          for (let i = 0; i < other.length; i += chunk)
            chunked.insertBatch(other.slice(i, i + chunk));
          expect(toHex(chunked.root())).toBe(want);
          expect(toHex(pt.PrefixTree.build(sortByKey(entries)).root())).toBe(want);
          for (const e of entries) expect(toHex(t.get(e.key)!)).toBe(toHex(e.commitment));
        },
      ),
      { numRuns: 150 },
    );
  });

  it('proofs equal the naive ones and verify, for present and absent keys', () => {
    fc.assert(
      fc.property(entriesArb(30), fc.array(keyArb, { maxLength: 6 }), (entries, probes) => {
        const t = treeOf(entries);
        const naive = naiveBuild(entries);
        const root = t.root();
        for (const e of entries) {
          const proof = t.prove(e.key);
          expect(hexProof(proof)).toEqual(hexProof(naiveProve(naive, e.key)));
          expect(pt.verify(root, e.key, proof, e.commitment).included).toBe(true);
          expect(hexProof(pt.decodeProof(pt.encodeProof(proof)))).toEqual(hexProof(proof));
        }
        for (const key of probes) {
          if (t.has(key)) continue;
          const proof = t.prove(key);
          expect(hexProof(proof)).toEqual(hexProof(naiveProve(naive, key)));
          expect(pt.verify(root, key, proof).included).toBe(false);
          expect(hexProof(pt.decodeProof(pt.encodeProof(proof)))).toEqual(hexProof(proof));
        }
      }),
      { numRuns: 100 },
    );
  });

  it('batch proofs verify, agree with single proofs, and share elements', () => {
    fc.assert(
      fc.property(
        entriesArb(30),
        fc.array(keyArb, { maxLength: 5 }),
        fc.nat(),
        (entries, probes, seed) => {
          const t = treeOf(entries);
          const present = entries.filter((_, i) => (i + seed) % 3 === 0);
          const absent = probes.filter((k) => !t.has(k));
          const seen = new Set<string>();
          const searches: pt.PrefixSearch[] = [
            ...present.map((e) => ({ key: e.key, commitment: e.commitment })),
            ...absent.map((key) => ({ key })),
          ].filter((s) => !seen.has(toHex(s.key)) && seen.add(toHex(s.key)));
          const proof = t.proveMany(searches.map((s) => s.key));
          const out = pt.verifyMany(t.root(), searches, proof);
          let single = 0;
          searches.forEach((s, i) => {
            const p = t.prove(s.key);
            single += p.elements.length;
            expect(hexProof({ results: [out[i]!.result], elements: [] })).toEqual(
              hexProof({ results: p.results, elements: [] }),
            );
            expect(out[i]!.included).toBe(s.commitment !== undefined);
          });
          if (searches.length > 0) expect(proof.elements.length).toBeLessThanOrEqual(single);
          expect(hexProof(pt.decodeProof(pt.encodeProof(proof)))).toEqual(hexProof(proof));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('flipping any bit of any proof element, leaf or depth fails with VerificationError', () => {
    fc.assert(
      fc.property(entriesArb(20), keyArb, fc.boolean(), (entries, probe, pickPresent) => {
        const t = treeOf(entries);
        const root = t.root();
        const target =
          pickPresent && entries.length > 0 ? entries[0]! : { key: probe, commitment: undefined };
        if (target.commitment === undefined && t.has(target.key)) return;
        const proof = t.prove(target.key);
        const run = (p: pt.PrefixProof): void => {
          expectCode(
            () => pt.verify(root, target.key, p, target.commitment),
            'ERR_PREFIX_PROOF_INVALID',
            VerificationError,
          );
        };
        proof.elements.forEach((e, i) => {
          for (let b = 0; b < 256; b++) {
            const flipped = e.slice();
            flipped[b >> 3]! ^= 1 << (b & 7);
            const elements = [...proof.elements];
            elements[i] = flipped;
            run({ ...proof, elements });
          }
        });
        const r = proof.results[0]!;
        for (const depth of [r.depth - 1, r.depth + 1]) {
          if (depth >= 0) run({ ...proof, results: [{ ...r, depth }] });
        }
        if (r.type === 'nonInclusionLeaf') {
          for (let b = 0; b < 512; b++) {
            const key = r.leaf.key.slice();
            const commitment = r.leaf.commitment.slice();
            const buf = b < 256 ? key : commitment;
            buf[(b & 255) >> 3]! ^= 1 << (b & 7);
            run({ ...proof, results: [{ ...r, leaf: { key, commitment } }] });
          }
        }
      }),
      { numRuns: 15 },
    );
  });

  it('flipping any bit of an encoded proof never verifies', () => {
    fc.assert(
      fc.property(entriesArb(12), fc.boolean(), keyArb, (entries, pickPresent, probe) => {
        const t = treeOf(entries);
        const target =
          pickPresent && entries.length > 0 ? entries[0]! : { key: probe, commitment: undefined };
        if (target.commitment === undefined && t.has(target.key)) return;
        const bytes = pt.encodeProof(t.prove(target.key));
        for (let b = 0; b < bytes.length * 8; b++) {
          const tampered = bytes.slice();
          tampered[b >> 3]! ^= 1 << (b & 7);
          let accepted = false;
          try {
            pt.verify(t.root(), target.key, pt.decodeProof(tampered), target.commitment);
            accepted = true;
          } catch (err) {
            expect(err).toBeInstanceOf(KtError);
            expect(err instanceof MalformedError || err instanceof VerificationError).toBe(true);
          }
          expect(accepted).toBe(false);
        }
      }),
      { numRuns: 10 },
    );
  });
});
