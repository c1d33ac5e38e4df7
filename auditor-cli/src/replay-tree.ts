/**
 * The auditor's own replica of the directory's prefix tree (IETF KEYTRANS prefix tree,
 * draft-ietf-keytrans-protocol-06; hashing per CONTRACT.md): a binary trie over 256-bit search
 * keys, read most-significant bit first, where
 * - a leaf is `SHA-256(0x02 || key[32] || commitment[32])` and sits at the shallowest depth at
 *   which its key's prefix is unique;
 * - a parent is `SHA-256(0x03 || left || right)`, a missing child counting as 32 zero bytes;
 * - the empty tree's root is 32 zero bytes and a one-leaf tree's root is that leaf's hash.
 *
 * It is built for replay speed rather than proofs. Only parents are nodes: each is one 64-byte
 * record (left, right, dirty flag, then its 32-byte hash) in one flat buffer, so walking a path
 * or rehashing touches one cache line per node; leaves are 96-byte records (key, commitment,
 * hash). A child reference is -1 for a missing child, i ≥ 0 for parent i and -(s + 2) for leaf
 * slot s. Inserts only mark the parents they walk through as dirty, and
 * {@link ReplayTree.root} rehashes just those, once per epoch, so a batch of k inserts into an
 * n-leaf tree costs about k·(log₂ n − log₂ k) + 2k hashes, with no allocation but the digest.
 * Hashing goes through `@keytrail/core`'s crypto seam, into which the CLI installs the native
 * `node:crypto` backend. Leaves are hashed lazily too, at the next {@link ReplayTree.root}.
 *
 * With a {@link HashPool}, records live in SharedArrayBuffers and large batches are hashed by
 * the main thread and the pool's workers together: first the new leaves (a slot range each),
 * then the dirty subtrees below a small depth (disjoint units), then the few parents above.
 *
 * Inserts never overwrite: inserting a key that is present is reported, not applied — the
 * auditor's defence against the akd #495 batch-insertion bypass.
 * @module
 */
import { getCryptoBackend } from '@keytrail/core';
import { hashLeaves, rehashUnits, type Sha256 } from './hash-kernel.ts';
import { MAX_UNITS, type HashPool } from './hash-pool.ts';

/** Leaf hash domain separator. */
export const PREFIX_LEAF_PREFIX = 0x02;
/** Parent hash domain separator. */
export const PREFIX_PARENT_PREFIX = 0x03;

const EMPTY = -1;
/** Bytes per parent record: left, right, dirty (int32 each), padding, hash[32], padding. */
const NODE_BYTES = 64;
const NODE_INTS = NODE_BYTES / 4;
const NODE_HASH = 16;
/** Bytes per leaf record: key[32], commitment[32], hash[32]. */
const LEAF_BYTES = 96;
const LEAF_HASH = 64;

/** The installed backend's SHA-256, as a plain function for the hashing kernels. */
function backendSha256(): Sha256 {
  const backend = getCryptoBackend();
  return (data) => backend.sha256(data);
}

/** Index of the first bit at or after `from` where the two 32-byte keys differ, or -1. */
function firstDifferentBit(
  a: Uint8Array,
  aOff: number,
  b: Uint8Array,
  bOff: number,
  from: number,
): number {
  // A leaf at depth 256 was reached by all 256 bits: the keys are equal. (Reading on would
  // compare the commitments that follow the keys.)
  if (from >= 256) return -1;
  let i = from >> 3;
  // Bits before `from` are known to agree (they chose the path so far).
  let x = ((a[aOff + i] ?? 0) ^ (b[bOff + i] ?? 0)) & (0xff >> (from & 7));
  while (x === 0) {
    i++;
    if (i === 32) return -1;
    x = (a[aOff + i] ?? 0) ^ (b[bOff + i] ?? 0);
  }
  return i * 8 + (Math.clz32(x) - 24);
}

/** Bit `depth` of the key at `off`, most significant first. */
function bitAt(key: Uint8Array, off: number, depth: number): number {
  return ((key[off + (depth >> 3)] ?? 0) >> (7 - (depth & 7))) & 1;
}

/** Result of {@link ReplayTree.insert}: -1 if inserted, else the slot of the existing leaf. */
export type InsertResult = number;

/** Options of {@link ReplayTree}. */
export interface ReplayTreeOptions {
  /** Workers to share large batches with. */
  readonly pool?: HashPool;
  /** Fewest pending inserts for which hashing is shared with the pool (default 512). */
  readonly parallelThreshold?: number;
}

/** An insert-only prefix tree held in flat arrays, rehashed lazily. */
export class ReplayTree {
  /** Parent records (see the module comment), viewed as bytes and as int32. */
  #node8: Uint8Array;
  #node32: Int32Array;
  #parents = 0;
  #leaf8: Uint8Array;
  #leaf32: Int32Array;
  #leaves = 0;
  /** Leaf slots below this are hashed. */
  #hashed = 0;
  /** Inserts since the last rehash. */
  #pending = 0;
  #root = EMPTY;
  #pool: HashPool | undefined;
  readonly #threshold: number;
  /**
   * Hash input `prefix || left || right` at bytes 3..68 of a 72-byte buffer, so that both
   * children land on 4-byte boundaries and are copied as int32 words.
   */
  readonly #scratch8 = new Uint8Array(72);
  readonly #scratch32 = new Int32Array(this.#scratch8.buffer);
  readonly #input = this.#scratch8.subarray(3, 68);
  readonly #stack = new Int32Array(512);

  /**
   * @param expectedLeaves capacity to reserve, to avoid regrowing while replaying.
   */
  constructor(expectedLeaves = 1024, options: ReplayTreeOptions = {}) {
    this.#pool = options.pool;
    this.#threshold = options.parallelThreshold ?? 512;
    const leaves = Math.max(16, expectedLeaves);
    const parents = Math.ceil(leaves * 1.5);
    this.#node8 = this.#alloc(parents * NODE_BYTES);
    this.#node32 = new Int32Array(this.#node8.buffer);
    this.#leaf8 = this.#alloc(leaves * LEAF_BYTES);
    this.#leaf32 = new Int32Array(this.#leaf8.buffer);
    this.#shareMemory();
  }

  /**
   * Shares hashing with `pool` from now on (the records move to SharedArrayBuffers). A tree
   * that turns out to have a large replay ahead gets a pool without being rebuilt.
   */
  attachPool(pool: HashPool): void {
    if (this.#pool) throw new Error('ReplayTree: a pool is attached already');
    this.#pool = pool;
    const node = this.#alloc(this.#node8.length);
    node.set(this.#node8);
    this.#node8 = node;
    this.#node32 = new Int32Array(node.buffer);
    const leaf = this.#alloc(this.#leaf8.length);
    leaf.set(this.#leaf8);
    this.#leaf8 = leaf;
    this.#leaf32 = new Int32Array(leaf.buffer);
    this.#shareMemory();
  }

  #alloc(size: number): Uint8Array {
    return new Uint8Array(this.#pool ? new SharedArrayBuffer(size) : new ArrayBuffer(size));
  }

  #shareMemory(): void {
    const node = this.#node8.buffer;
    const leaf = this.#leaf8.buffer;
    if (this.#pool && node instanceof SharedArrayBuffer && leaf instanceof SharedArrayBuffer) {
      this.#pool.setMemory(node, leaf);
    }
  }

  /** Number of leaves. */
  get size(): number {
    return this.#leaves;
  }

  /** Number of nodes (leaves and parents). */
  get nodeCount(): number {
    return this.#leaves + this.#parents;
  }

  #newParent(): number {
    if ((this.#parents + 1) * NODE_BYTES > this.#node8.length) {
      const grown = this.#alloc(this.#node8.length * 2);
      grown.set(this.#node8);
      this.#node8 = grown;
      this.#node32 = new Int32Array(grown.buffer);
      this.#shareMemory();
    }
    const p = this.#parents++;
    const i = p * NODE_INTS;
    this.#node32[i] = EMPTY;
    this.#node32[i + 1] = EMPTY;
    this.#node32[i + 2] = 1;
    return p;
  }

  /** Stores a leaf (hashed at the next root()); returns its child reference. */
  #newLeaf(packed: Uint8Array, off: number): number {
    if ((this.#leaves + 1) * LEAF_BYTES > this.#leaf8.length) {
      const grown = this.#alloc(this.#leaf8.length * 2);
      grown.set(this.#leaf8);
      this.#leaf8 = grown;
      this.#leaf32 = new Int32Array(grown.buffer);
      this.#shareMemory();
    }
    const slot = this.#leaves++;
    this.#leaf8.set(packed.subarray(off, off + 64), slot * LEAF_BYTES);
    this.#pending++;
    return -(slot + 2);
  }

  /**
   * Inserts the 64-byte entry `key || commitment` found at `packed[off]`.
   * @returns -1 if inserted; otherwise the slot of the leaf already holding that key (nothing
   *   is changed).
   */
  insert(packed: Uint8Array, off = 0): InsertResult {
    if (off < 0 || off + 64 > packed.length) throw new RangeError('insert: entry out of range');
    if (this.#root === EMPTY) {
      this.#root = this.#newLeaf(packed, off);
      return -1;
    }
    // `holder` is the int32 index of the reference that points at `ref` (-1: the root).
    let holder = -1;
    let ref = this.#root;
    let depth = 0;
    while (ref >= 0) {
      const base = ref * NODE_INTS;
      // Marking on the way down is safe even if the insert turns out to be a duplicate:
      // rehashing a clean parent reproduces its hash.
      this.#node32[base + 2] = 1;
      holder = base + bitAt(packed, off, depth);
      ref = this.#node32[holder] as number;
      depth++;
    }
    if (ref === EMPTY) {
      this.#node32[holder] = this.#newLeaf(packed, off);
      return -1;
    }
    const slot = -ref - 2;
    const diff = firstDifferentBit(packed, off, this.#leaf8, slot * LEAF_BYTES, depth);
    if (diff === -1) return slot;
    // Split: parents from `depth` down to `diff`, where the two keys part ways.
    const leaf = this.#newLeaf(packed, off);
    const top = this.#newParent();
    let cur = top;
    for (let d = depth; d < diff; d++) {
      const next = this.#newParent();
      this.#node32[cur * NODE_INTS + bitAt(packed, off, d)] = next;
      cur = next;
    }
    const bit = bitAt(packed, off, diff);
    this.#node32[cur * NODE_INTS + bit] = leaf;
    this.#node32[cur * NODE_INTS + 1 - bit] = ref;
    if (holder === -1) this.#root = top;
    else this.#node32[holder] = top;
    return -1;
  }

  /** The 64-byte `key || commitment` of a leaf slot (a view; copy it to keep it). */
  leafEntry(slot: number): Uint8Array {
    if (slot < 0 || slot >= this.#leaves) throw new RangeError('leafEntry: no such slot');
    return this.#leaf8.subarray(slot * LEAF_BYTES, slot * LEAF_BYTES + 64);
  }

  /** The root hash, hashing the leaves and parents added or dirtied since the last call. */
  root(): Uint8Array {
    const r = this.#root;
    if (r === EMPTY) return new Uint8Array(32);
    const shared = this.#pool !== undefined && this.#pending >= this.#threshold;
    this.#pending = 0;
    this.#hashLeaves(shared);
    if (r < -1) return this.#leaf8.slice((-r - 2) * LEAF_BYTES + LEAF_HASH, (-r - 1) * LEAF_BYTES);
    if (shared) this.#rehashShared();
    this.#rehashFrom(r);
    return this.#node8.slice(r * NODE_BYTES + NODE_HASH, r * NODE_BYTES + NODE_HASH + 32);
  }

  #hashLeaves(shared: boolean): void {
    const from = this.#hashed;
    const to = this.#leaves;
    if (from === to) return;
    const sha256 = backendSha256();
    const mine = (a: number, b: number): void => {
      hashLeaves(this.#leaf8, a, b, this.#input, sha256);
    };
    if (shared && this.#pool) this.#pool.hashLeaves(from, to, mine);
    else mine(from, to);
    this.#hashed = to;
  }

  /** Rehashes dirty parents under `unit`, on this thread. */
  #rehashFrom(unit: number): void {
    const one = Int32Array.of(unit);
    rehashUnits(
      this.#node8,
      this.#node32,
      this.#leaf32,
      one,
      0,
      1,
      1,
      this.#scratch32,
      this.#input,
      this.#stack,
      backendSha256(),
    );
  }

  /**
   * Shares the rehash with the pool: the dirty parents at a depth where there are about
   * sixteen subtrees per thread are the units, claimed one by one by whichever thread is free;
   * the parents above them are left for {@link #rehashFrom}.
   */
  #rehashShared(): void {
    const pool = this.#pool as HashPool;
    const units = pool.units;
    const depth = Math.min(10, Math.ceil(Math.log2((pool.size + 1) * 64)));
    let count = 0;
    const n32 = this.#node32;
    const collect = (ref: number, d: number): void => {
      if (ref < 0 || n32[ref * NODE_INTS + 2] !== 1 || count === MAX_UNITS) return;
      if (d === depth) {
        units[count++] = ref;
        return;
      }
      collect(n32[ref * NODE_INTS] as number, d + 1);
      collect(n32[ref * NODE_INTS + 1] as number, d + 1);
    };
    collect(this.#root, 0);
    if (count === 0) return;
    const sha256 = backendSha256();
    pool.rehashUnits(count, (i) => {
      rehashUnits(
        this.#node8,
        this.#node32,
        this.#leaf32,
        units,
        i,
        1,
        i + 1,
        this.#scratch32,
        this.#input,
        this.#stack,
        sha256,
      );
    });
  }

  #hashOf(ref: number): Uint8Array {
    if (ref >= 0)
      return this.#node8.subarray(ref * NODE_BYTES + NODE_HASH, ref * NODE_BYTES + NODE_HASH + 32);
    const base = (-ref - 2) * LEAF_BYTES + LEAF_HASH;
    return this.#leaf8.subarray(base, base + 32);
  }

  /**
   * The pruned tree needed to replay inserts of `keys` (see `partial-tree.ts`): every node on
   * the search path of each key is expanded, everything else is replaced by its hash.
   */
  exportPartial(keys: readonly Uint8Array[]): Uint8Array {
    this.root();
    const onPath = new Set<number>();
    for (const key of keys) {
      let ref = this.#root;
      let depth = 0;
      while (ref !== EMPTY) {
        onPath.add(ref);
        if (ref < -1) break;
        ref = this.#node32[ref * NODE_INTS + bitAt(key, 0, depth)] as number;
        depth++;
      }
    }
    const out: number[] = [];
    const emit = (ref: number): void => {
      if (ref === EMPTY) {
        out.push(0x00);
        return;
      }
      if (!onPath.has(ref)) {
        out.push(0x03, ...this.#hashOf(ref));
        return;
      }
      if (ref < -1) {
        out.push(0x01, ...this.leafEntry(-ref - 2));
        return;
      }
      out.push(0x02);
      emit(this.#node32[ref * NODE_INTS] as number);
      emit(this.#node32[ref * NODE_INTS + 1] as number);
    };
    emit(this.#root);
    return Uint8Array.from(out);
  }
}
