import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { MerkleTree } from 'merkletreejs';
import { describe, expect, it } from 'vitest';
import { fromBase64, fromHex, toHex, utf8 } from '../src/bytes.ts';
import { KtError, MalformedError, VerificationError } from '../src/errors.ts';
import {
  CompactRange,
  MemoryTree,
  consistencyProof,
  emptyRoot,
  inclusionProof,
  leafHash,
  nodeHash,
  rootFromInclusionProof,
  rootHash,
  verifyConsistency,
  verifyInclusion,
} from '../src/merkle.ts';

const vectors = JSON.parse(
  readFileSync(new URL('./vectors/merkle-rfc6962.json', import.meta.url), 'utf8'),
);
const probes = JSON.parse(
  readFileSync(new URL('./vectors/merkle-probes.json', import.meta.url), 'utf8'),
);

/** Asserts that `fn` throws a KtError of class `cls` with code `code`. */
function expectCode(fn: () => unknown, cls: typeof KtError, code: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${code}`).toBeInstanceOf(cls);
  expect((thrown as KtError).code).toBe(code);
}

// ---- A deliberately naive reference: RFC 6962 §2.1 recursion, node:crypto hashing. ----
const H = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const k2 = (n: number): number => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};
function refMth(d: Uint8Array[]): Uint8Array {
  if (d.length === 0) return H();
  if (d.length === 1) return d[0]!;
  const k = k2(d.length);
  return H(Uint8Array.of(1), refMth(d.slice(0, k)), refMth(d.slice(k)));
}
function refPath(m: number, d: Uint8Array[]): Uint8Array[] {
  if (d.length <= 1) return [];
  const k = k2(d.length);
  return m < k
    ? [...refPath(m, d.slice(0, k)), refMth(d.slice(k))]
    : [...refPath(m - k, d.slice(k)), refMth(d.slice(0, k))];
}
function refSubproof(m: number, d: Uint8Array[], b: boolean): Uint8Array[] {
  if (m === d.length) return b ? [] : [refMth(d)];
  const k = k2(d.length);
  return m <= k
    ? [...refSubproof(m, d.slice(0, k), b), refMth(d.slice(k))]
    : [...refSubproof(m - k, d.slice(k), false), refMth(d.slice(0, k))];
}
const refLeaf = (data: Uint8Array): Uint8Array => H(Uint8Array.of(0), data);

const hexes = (xs: readonly Uint8Array[]): string[] => xs.map(toHex);
const leavesOf = (n: number, salt = 0): Uint8Array[] =>
  Array.from({ length: n }, (_, i) => refLeaf(utf8(`leaf ${salt}/${i}`)));

const treeArb = fc
  .integer({ min: 1, max: 200 })
  .chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: 1_000_000 })));

describe('RFC 6962 hashing (transparency-dev/merkle testonly vectors)', () => {
  const leaves: Uint8Array[] = vectors.leaf_inputs_hex.map((h: string) => leafHash(fromHex(h)));

  it('hashes leaves, nodes and the empty tree', () => {
    const hv = vectors.hasher_vectors;
    expect(toHex(emptyRoot())).toBe(hv.empty_tree);
    expect(toHex(rootHash([]))).toBe(hv.empty_tree);
    expect(toHex(leafHash(new Uint8Array(0)))).toBe(hv['empty_leaf (SHA-256(0x00))']);
    expect(toHex(leafHash(utf8('L123456')))).toBe(hv["leaf 'L123456'"]);
    // The published node vector uses 4-byte children; nodeHash only takes 32-byte hashes.
    expect(toHex(H(Uint8Array.of(1), utf8('N123'), utf8('N456')))).toBe(hv["node('N123','N456')"]);
    expect(() => nodeHash(utf8('N123'), utf8('N456'))).toThrow(RangeError);
    expect(toHex(nodeHash(leaves[0]!, leaves[1]!))).toBe(vectors.roots_by_size_hex['2']);
  });

  it('matches the published leaf hashes and the root of every size', () => {
    expect(hexes(leaves)).toEqual(vectors.leaf_hashes_hex);
    const tree = MemoryTree.from(leaves);
    const range = new CompactRange();
    for (let n = 0; n <= 8; n++) {
      const want = vectors.roots_by_size_hex[String(n)];
      expect(toHex(rootHash(leaves.slice(0, n)))).toBe(want);
      expect(toHex(tree.root(n))).toBe(want);
      expect(toHex(range.root())).toBe(want);
      if (n < 8) range.append(leaves[n]!);
    }
  });

  const inclusion = [
    ...vectors.published_inclusion_proofs.map((v: Record<string, unknown>) => ({
      index: v.leaf_index_0based as number,
      size: v.tree_size as number,
      path: v.path_hex as string[],
    })),
    ...vectors.derived_all_inclusion_proofs_sizes_1_8.vectors.map((v: Record<string, unknown>) => ({
      index: v.leaf_index as number,
      size: v.tree_size as number,
      path: v.path_hex as string[],
    })),
  ];
  it.each(inclusion)('inclusion proof of leaf $index in size $size', ({ index, size, path }) => {
    const prefix = leaves.slice(0, size);
    expect(hexes(inclusionProof(prefix, index))).toEqual(path);
    expect(hexes(MemoryTree.from(leaves).inclusionProof(index, size))).toEqual(path);
    verifyInclusion(leaves[index]!, index, size, path.map(fromHex), rootHash(prefix));
  });

  const consistency = [
    ...vectors.published_consistency_proofs,
    ...vectors.derived_all_consistency_proofs_sizes_1_8.vectors,
  ].map((v: Record<string, unknown>) => ({
    m: v.size1 as number,
    n: v.size2 as number,
    proof: v.proof_hex as string[],
  }));
  it.each(consistency)('consistency proof from $m to $n', ({ m, n, proof }) => {
    expect(hexes(consistencyProof(leaves.slice(0, n), m))).toEqual(proof);
    expect(hexes(MemoryTree.from(leaves).consistencyProof(m, n))).toEqual(proof);
    verifyConsistency(
      m,
      n,
      proof.map(fromHex),
      rootHash(leaves.slice(0, m)),
      rootHash(leaves.slice(0, n)),
    );
  });
});

describe('transparency-dev/merkle testdata probes', () => {
  const b64 = (s: string): Uint8Array => fromBase64(s);
  it('has all 196 probes', () => {
    expect(probes.probes).toHaveLength(196);
    expect(probes.probes.filter((p: { wantErr: unknown }) => p.wantErr === null)).toHaveLength(11);
  });
  const probeCases: [string, Record<string, unknown>][] = probes.probes.map(
    (p: Record<string, unknown>) => [`${String(p.kind)}: ${String(p.file)}`, p],
  );
  it.each(probeCases)('%s', (_name, p) => {
    const proof = ((p.proof as string[] | null) ?? []).map(b64);
    const run =
      p.kind === 'inclusion'
        ? () => {
            verifyInclusion(
              b64(p.leafHash as string),
              Number(p.leafIdx),
              p.treeSize as number,
              proof,
              b64(p.root as string),
            );
          }
        : () => {
            verifyConsistency(
              p.size1 as number,
              p.size2 as number,
              proof,
              b64(p.root1 as string),
              b64(p.root2 as string),
            );
          };
    if (p.wantErr === null) {
      expect(run).not.toThrow();
    } else {
      const cls = p.wantErr === 'ERR_PROOF_MALFORMED' ? MalformedError : VerificationError;
      expectCode(run, cls, p.wantErr as string);
    }
  });
});

describe('proofs of random trees against the naive reference', () => {
  it('roots, inclusion and consistency proofs agree (list, MemoryTree, CompactRange)', () => {
    fc.assert(
      fc.property(treeArb, fc.nat(), fc.nat(), ([n, salt], a, b) => {
        const leaves = leavesOf(n, salt);
        const index = a % n;
        const m = (b % n) + 1;
        const tree = MemoryTree.from(leaves);
        const root = refMth(leaves);
        expect(toHex(rootHash(leaves))).toBe(toHex(root));
        expect(toHex(tree.root())).toBe(toHex(root));
        expect(toHex(tree.root(m))).toBe(toHex(refMth(leaves.slice(0, m))));
        const wantPath = hexes(refPath(index, leaves));
        expect(hexes(inclusionProof(leaves, index))).toEqual(wantPath);
        expect(hexes(tree.inclusionProof(index))).toEqual(wantPath);
        const prefixIndex = a % m;
        expect(hexes(tree.inclusionProof(prefixIndex, m))).toEqual(
          hexes(refPath(prefixIndex, leaves.slice(0, m))),
        );
        const wantConsistency = m === n ? [] : hexes(refSubproof(m, leaves, true));
        expect(hexes(consistencyProof(leaves, m))).toEqual(wantConsistency);
        expect(hexes(tree.consistencyProof(m))).toEqual(wantConsistency);
        const mid = m + ((a + b) % (n - m + 1));
        expect(hexes(tree.consistencyProof(m, mid))).toEqual(
          m === mid ? [] : hexes(refSubproof(m, leaves.slice(0, mid), true)),
        );
      }),
      { numRuns: 150 },
    );
  });

  it('verifies every inclusion proof and rejects any flipped bit with VerificationError', () => {
    fc.assert(
      fc.property(treeArb, fc.nat(), fc.nat(), ([n, salt], a, bit) => {
        const leaves = leavesOf(n, salt);
        const index = a % n;
        const root = rootHash(leaves);
        const proof = inclusionProof(leaves, index);
        verifyInclusion(leaves[index]!, index, n, proof, root);
        expect(toHex(rootFromInclusionProof(leaves[index]!, index, n, proof))).toBe(toHex(root));
        for (let e = 0; e < proof.length; e++) {
          const bad = proof.map((p) => p.slice());
          bad[e]![(bit >> 3) % 32]! ^= 1 << (bit & 7);
          expectCode(
            () => {
              verifyInclusion(leaves[index]!, index, n, bad, root);
            },
            VerificationError,
            'ERR_INCLUSION_PROOF_INVALID',
          );
        }
        const flippedLeaf = leaves[index]!.slice();
        flippedLeaf[bit % 32]! ^= 0x80;
        expectCode(
          () => {
            verifyInclusion(flippedLeaf, index, n, proof, root);
          },
          VerificationError,
          'ERR_INCLUSION_PROOF_INVALID',
        );
        // A missing or an extra element is a proof of something else.
        if (proof.length > 0) {
          expectCode(
            () => {
              verifyInclusion(leaves[index]!, index, n, proof.slice(1), root);
            },
            VerificationError,
            'ERR_INCLUSION_PROOF_INVALID',
          );
        }
        expectCode(
          () => {
            verifyInclusion(leaves[index]!, index, n, [...proof, root], root);
          },
          VerificationError,
          'ERR_INCLUSION_PROOF_INVALID',
        );
      }),
      { numRuns: 150 },
    );
  });

  it('verifies consistency between any m ≤ n and rejects any flipped bit', () => {
    fc.assert(
      fc.property(treeArb, fc.nat(), fc.nat(), ([n, salt], a, bit) => {
        const leaves = leavesOf(n, salt);
        const m = (a % n) + 1;
        const tree = MemoryTree.from(leaves);
        const proof = tree.consistencyProof(m);
        const oldRoot = rootHash(leaves.slice(0, m));
        const newRoot = tree.root();
        verifyConsistency(m, n, proof, oldRoot, newRoot);
        for (let e = 0; e < proof.length; e++) {
          const bad = proof.map((p) => p.slice());
          bad[e]![(bit >> 3) % 32]! ^= 1 << (bit & 7);
          expectCode(
            () => {
              verifyConsistency(m, n, bad, oldRoot, newRoot);
            },
            VerificationError,
            'ERR_CONSISTENCY_PROOF_INVALID',
          );
        }
        const badOld = oldRoot.slice();
        badOld[bit % 32]! ^= 1;
        expectCode(
          () => {
            verifyConsistency(m, n, proof, badOld, newRoot);
          },
          VerificationError,
          'ERR_CONSISTENCY_PROOF_INVALID',
        );
        if (proof.length > 0) {
          expectCode(
            () => {
              verifyConsistency(m, n, proof.slice(0, -1), oldRoot, newRoot);
            },
            VerificationError,
            'ERR_CONSISTENCY_PROOF_INVALID',
          );
        }
        expectCode(
          () => {
            verifyConsistency(m, n, [...proof, newRoot], oldRoot, newRoot);
          },
          VerificationError,
          'ERR_CONSISTENCY_PROOF_INVALID',
        );
      }),
      { numRuns: 150 },
    );
  });

  it('CompactRange root equals rootHash, and its frontier round-trips', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), fc.nat(), (n, salt) => {
        const leaves = leavesOf(n, salt);
        const range = new CompactRange();
        for (const l of leaves) range.append(l);
        expect(range.size).toBe(n);
        expect(toHex(range.root())).toBe(toHex(rootHash(leaves)));
        const restored = CompactRange.from(n, range.hashes());
        expect(toHex(restored.root())).toBe(toHex(range.root()));
        const tree = MemoryTree.from(leaves);
        expect(hexes(tree.compactRange().hashes())).toEqual(hexes(range.hashes()));
        // Appending to a restored or cloned range never needs the old leaves.
        const extra = refLeaf(utf8(`extra ${salt}`));
        const clone = range.clone();
        restored.append(extra);
        clone.append(extra);
        expect(toHex(restored.root())).toBe(toHex(rootHash([...leaves, extra])));
        expect(toHex(clone.root())).toBe(toHex(restored.root()));
        expect(toHex(range.root())).toBe(toHex(rootHash(leaves)));
      }),
      { numRuns: 100 },
    );
  });
});

describe('differential: merkletreejs in RFC 6962 mode', () => {
  const sha = (data: Buffer): Buffer => createHash('sha256').update(data).digest();
  it('gives the same roots on random trees', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 300 }),
        (entries) => {
          const leaves = entries.map((e) => leafHash(e));
          const other = new MerkleTree(
            leaves.map((l) => Buffer.from(l)),
            sha,
            {
              hashLeaves: false,
              sortLeaves: false,
              sortPairs: false,
              sort: false,
              duplicateOdd: false,
              isBitcoinTree: false,
              concatenator: (parts: Buffer[]) => Buffer.concat([Buffer.of(1), ...parts]),
            },
          );
          expect(toHex(rootHash(leaves))).toBe(other.getRoot().toString('hex'));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('large sizes (beyond 32-bit arithmetic)', () => {
  const leaf = refLeaf(utf8('last'));
  const p = (i: number): Uint8Array => refLeaf(utf8(`sibling ${i}`));

  it('verifies the last leaf of a tree of 2^40 + 1 leaves', () => {
    const size = 2 ** 40 + 1;
    const left = p(0);
    expect(toHex(rootFromInclusionProof(leaf, 2 ** 40, size, [left]))).toBe(
      toHex(H(Uint8Array.of(1), left, leaf)),
    );
    expectCode(
      () => rootFromInclusionProof(leaf, 2 ** 40, size, [left, left]),
      VerificationError,
      'ERR_INCLUSION_PROOF_INVALID',
    );
  });

  it('verifies the first leaf of a tree of 2^40 + 1 leaves', () => {
    const size = 2 ** 40 + 1;
    const proof = Array.from({ length: 41 }, (_, i) => p(i));
    let want = leaf;
    for (const s of proof) want = H(Uint8Array.of(1), want, s);
    expect(toHex(rootFromInclusionProof(leaf, 0, size, proof))).toBe(toHex(want));
  });

  it('verifies consistency from 2^40 to 2^40 + 1 and from 2^52 − 1 to 2^52', () => {
    const oldRoot = p(1);
    verifyConsistency(2 ** 40, 2 ** 40 + 1, [leaf], oldRoot, H(Uint8Array.of(1), oldRoot, leaf));
    expectCode(
      () => {
        verifyConsistency(2 ** 40, 2 ** 40 + 1, [leaf], oldRoot, oldRoot);
      },
      VerificationError,
      'ERR_CONSISTENCY_PROOF_INVALID',
    );
    // The old tree of 2^52 − 1 leaves is 52 complete subtrees c51 … c0 (sizes 2^51 … 1); the
    // proof is c0, the new leaf, then c1 … c51.
    const c = Array.from({ length: 52 }, (_, i) => p(100 + i));
    let oldR = c[0]!;
    for (let i = 1; i < 52; i++) oldR = H(Uint8Array.of(1), c[i]!, oldR);
    let newR = H(Uint8Array.of(1), c[0]!, leaf);
    for (let i = 1; i < 52; i++) newR = H(Uint8Array.of(1), c[i]!, newR);
    verifyConsistency(2 ** 52 - 1, 2 ** 52, [c[0]!, leaf, ...c.slice(1)], oldR, newR);
  });

  it('keeps a compact range at 2^53 − 1 and refuses to grow past it', () => {
    const size = Number.MAX_SAFE_INTEGER;
    const hashes = Array.from({ length: 53 }, (_, i) => p(i));
    const range = CompactRange.from(size, hashes);
    expect(range.size).toBe(size);
    expect(() => {
      range.append(leaf);
    }).toThrow(RangeError);
    const two = CompactRange.from(2 ** 40 + 1, [p(0), p(1)]);
    two.append(leaf);
    expect(two.size).toBe(2 ** 40 + 2);
    expect(hexes(two.hashes())).toEqual(hexes([p(0), H(Uint8Array.of(1), p(1), leaf)]));
  });
});

describe('malformed input and caller errors', () => {
  const leaves = leavesOf(5);
  const root = rootHash(leaves);
  const proof = inclusionProof(leaves, 2);
  const mal = (fn: () => unknown): void => {
    expectCode(fn, MalformedError, 'ERR_PROOF_MALFORMED');
  };

  it('rejects malformed inclusion inputs with ERR_PROOF_MALFORMED', () => {
    mal(() => {
      verifyInclusion(leaves[2]!, 2, 5, proof, root.subarray(1));
    });
    mal(() => {
      verifyInclusion(leaves[2]!.subarray(1), 2, 5, proof, root);
    });
    mal(() => {
      verifyInclusion(leaves[2]!, 2, 5, [...proof.slice(0, -1), new Uint8Array(33)], root);
    });
    mal(() => {
      verifyInclusion(leaves[2]!, 5, 5, proof, root);
    });
    mal(() => {
      verifyInclusion(leaves[2]!, -1, 5, proof, root);
    });
    mal(() => {
      verifyInclusion(leaves[2]!, 2.5, 5, proof, root);
    });
    mal(() => {
      verifyInclusion(leaves[2]!, 2, 2 ** 53, proof, root);
    });
    mal(() => {
      verifyInclusion(leaves[2]!, 2, Number.NaN, proof, root);
    });
    mal(() => {
      verifyInclusion(leaves[2]!, 0, 0, [], emptyRoot());
    });
    mal(() => {
      verifyInclusion(leaves[2]!, 2, 5, 'proof' as unknown as Uint8Array[], root);
    });
    mal(() => {
      verifyInclusion(leaves[2]!, 2, 5, [[1, 2] as unknown as Uint8Array], root);
    });
  });

  it('rejects malformed consistency inputs with ERR_PROOF_MALFORMED', () => {
    const cp = consistencyProof(leaves, 3);
    const old = rootHash(leaves.slice(0, 3));
    mal(() => {
      verifyConsistency(0, 0, [], emptyRoot(), emptyRoot());
    });
    mal(() => {
      verifyConsistency(0, 5, cp, emptyRoot(), root);
    });
    mal(() => {
      verifyConsistency(6, 5, cp, old, root);
    });
    mal(() => {
      verifyConsistency(3, 5, cp, old.subarray(0, 31), root);
    });
    mal(() => {
      verifyConsistency(3, 5, cp, old, new Uint8Array(64));
    });
    mal(() => {
      verifyConsistency(3, 5, [new Uint8Array(0), ...cp], old, root);
    });
    mal(() => {
      verifyConsistency(3, 2 ** 53, cp, old, root);
    });
    mal(() => {
      verifyConsistency(-3, 5, cp, old, root);
    });
    mal(() => CompactRange.from(3, [root]));
    mal(() => CompactRange.from(1, [root.subarray(1)]));
    mal(() => CompactRange.from(-1, []));
  });

  it('equal sizes need an empty proof and equal roots', () => {
    verifyConsistency(5, 5, [], root, root);
    expectCode(
      () => {
        verifyConsistency(5, 5, [root], root, root);
      },
      VerificationError,
      'ERR_CONSISTENCY_PROOF_INVALID',
    );
    expectCode(
      () => {
        verifyConsistency(5, 5, [], root, leaves[0]!);
      },
      VerificationError,
      'ERR_CONSISTENCY_PROOF_INVALID',
    );
  });

  it('throws RangeError for caller bugs in generation', () => {
    expect(() => inclusionProof(leaves, 5)).toThrow(RangeError);
    expect(() => inclusionProof(leaves, -1)).toThrow(RangeError);
    expect(() => consistencyProof(leaves, 6)).toThrow(RangeError);
    expect(consistencyProof(leaves, 0)).toEqual([]);
    expect(consistencyProof(leaves, 5)).toEqual([]);
    expect(() => rootHash([leaves[0]!, new Uint8Array(31)])).toThrow(RangeError);
    const tree = MemoryTree.from(leaves);
    expect(() => tree.root(6)).toThrow(RangeError);
    expect(() => tree.inclusionProof(3, 3)).toThrow(RangeError);
    expect(() => tree.inclusionProof(0, 6)).toThrow(RangeError);
    expect(() => tree.consistencyProof(4, 3)).toThrow(RangeError);
    expect(() => tree.consistencyProof(1, 6)).toThrow(RangeError);
    expect(tree.consistencyProof(0)).toEqual([]);
    expect(() => {
      tree.append(new Uint8Array(31));
    }).toThrow(RangeError);
    expect(() => {
      new CompactRange().append(new Uint8Array(33));
    }).toThrow(RangeError);
    expect(() => tree.compactRange(9)).toThrow(RangeError);
  });

  it('MemoryTree exposes copies, never its own buffers', () => {
    const tree = MemoryTree.from(leaves);
    expect(tree.size).toBe(5);
    const view = tree.leafHashes;
    expect(view.length).toBe(5);
    expect(hexes([...view])).toEqual(hexes(leaves));
    expect(view.at(5)).toBeUndefined();
    expect(view.at(-1)).toBeUndefined();
    view.at(0)![0]! ^= 0xff;
    tree.root()[0]! ^= 0xff;
    tree.inclusionProof(0)[0]![0]! ^= 0xff;
    expect(toHex(tree.root())).toBe(toHex(root));
    expect(hexes(tree.inclusionProof(0))).toEqual(hexes(inclusionProof(leaves, 0)));
    expect(new MemoryTree().leafHashes.at(0)).toBeUndefined();
    expect(toHex(new MemoryTree().root())).toBe(toHex(emptyRoot()));
    expect(new MemoryTree().compactRange().size).toBe(0);
  });

  it('MemoryTree grows its level buffers', () => {
    const many = leavesOf(1000, 7);
    const tree = MemoryTree.from(many);
    expect(toHex(tree.root())).toBe(toHex(refMth(many)));
    expect(toHex(tree.root(777))).toBe(toHex(refMth(many.slice(0, 777))));
  });
});
