/**
 * The IETF KEYTRANS prefix tree (draft-ietf-keytrans-protocol §3.3 structure, §11.9 hashing,
 * §12.2 proofs), byte-compatible with katie (Bren2010/katie), the draft's reference
 * implementation:
 *
 * ```
 * leaf.value   = SHA-256(0x02 || key[32] || commitment[32])
 * parent.value = SHA-256(0x03 || left.value || right.value)   // a missing child is 32 zero bytes
 * ```
 *
 * A binary trie over 256-bit keys (VRF outputs), most significant bit of the first byte first.
 * It is compressed the KEYTRANS way: a leaf sits at the depth where its prefix becomes unique,
 * and parents exist only for prefixes shared by at least two keys (a parent may have one
 * missing child when two keys share more bits). An empty tree has the all-zero root and a
 * one-entry tree's root is that leaf. The tree is insert-only.
 *
 * ## Proofs (§12.2)
 *
 * A {@link PrefixProof} answers one or more searches against one root. Each result says where
 * the search for its key ended, at `depth` = the number of key bits consumed:
 * - `inclusion`: at the leaf of the key itself;
 * - `nonInclusionLeaf`: at the leaf of another key (which the proof carries);
 * - `nonInclusionParent`: at the empty child slot of a parent.
 *
 * `elements` holds the copath: every node value next to the searched paths that the verifier
 * cannot compute, in left-to-right order, a missing node listed as 32 zero bytes. The slot where
 * a `nonInclusionParent` search ends takes no element. So a proof is `depth` hashes per search,
 * shared between searches, not 256.
 *
 * Two choices katie makes where the draft is implicit, followed here: results are listed in the
 * order the keys were given (not re-sorted), and the wire format counts results (`uint8`) and
 * elements (`uint16`) rather than their byte lengths:
 *
 * ```
 * struct { uint8 result_type; [PrefixLeaf leaf;] uint8 depth; } PrefixSearchResult;
 * struct { uint8 n; PrefixSearchResult results[n]; uint16 m; opaque elements[m][32]; } PrefixProof;
 * ```
 *
 * Verification is stricter than katie's: when two searches of one proof end at the same leaf,
 * their results must agree on the leaf's key and commitment, so a proof cannot carry a
 * commitment that the recomputed root does not cover.
 *
 * ## Storage
 *
 * Nodes live in flat typed arrays (struct of arrays): per leaf 97 bytes (its hash input
 * `0x02 || key || commitment`, and its hash), per parent 40 bytes (two child references and its
 * hash). A million random keys take about 1.44 million parents, so about 155 MB, plus the
 * headroom that {@link PrefixTree.build} reserves for later inserts (1/8). Batch inserts sort the new keys and merge
 * them into the tree in one recursive pass, so each touched node is hashed exactly once;
 * {@link PrefixTree.build} builds a tree from sorted entries bottom-up the same way.
 * @module
 */
import { sha256 } from './crypto.ts';
import { KtError, MalformedError, VerificationError } from './errors.ts';
import { Reader, Writer } from './encoding.ts';

/** Length of a search key (a VRF output, `VRF.Nh`). */
export const KEY_SIZE = 32;
/** Length of a node value and of a commitment (`Hash.Nh`). */
export const HASH_SIZE = 32;
/** Domain-separation byte of leaf values. */
export const LEAF_HASH_PREFIX = 0x02;
/** Domain-separation byte of parent values. */
export const PARENT_HASH_PREFIX = 0x03;
/** Deepest terminal node a proof can express (`uint8 depth`). */
export const MAX_DEPTH = 255;

/** A key-commitment mapping stored in a leaf (`PrefixLeaf`). */
export interface PrefixEntry {
  /** The 32-byte search key (VRF output). */
  readonly key: Uint8Array;
  /** The 32-byte commitment. */
  readonly commitment: Uint8Array;
}

/** Where one search ended (`PrefixSearchResult`). */
export type PrefixSearchResult =
  | { readonly type: 'inclusion'; readonly depth: number }
  | { readonly type: 'nonInclusionLeaf'; readonly depth: number; readonly leaf: PrefixEntry }
  | { readonly type: 'nonInclusionParent'; readonly depth: number };

/** A proof for one or more searches against one root (`PrefixProof`). */
export interface PrefixProof {
  /** One result per searched key, in the order the keys were given. */
  readonly results: readonly PrefixSearchResult[];
  /** Copath node values, 32 bytes each, left to right. */
  readonly elements: readonly Uint8Array[];
}

/** What a verifier searches for: a key, and the commitment it expects if the key is present. */
export interface PrefixSearch {
  readonly key: Uint8Array;
  /** Required to accept an `inclusion` result: the leaf's value depends on it. */
  readonly commitment?: Uint8Array;
}

/** The verified outcome of one search. */
export interface PrefixVerification {
  /** True for `inclusion`: the key maps to the commitment given. */
  readonly included: boolean;
  /** The result as the proof stated it. */
  readonly result: PrefixSearchResult;
}

const ZERO_HASH = new Uint8Array(HASH_SIZE);

const RESULT_CODES = { inclusion: 1, nonInclusionLeaf: 2, nonInclusionParent: 3 } as const;

function checkBytes(bytes: Uint8Array, length: number, name: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== length) {
    throw new RangeError(`${name}: expected ${length} bytes`);
  }
}

function keyBit(key: Uint8Array, depth: number): number {
  return ((key[depth >>> 3] as number) >>> (7 - (depth & 7))) & 1;
}

function equal32(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 32; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The value of a leaf: `SHA-256(0x02 || key || commitment)`. */
export function leafHash(key: Uint8Array, commitment: Uint8Array): Uint8Array {
  checkBytes(key, KEY_SIZE, 'key');
  checkBytes(commitment, HASH_SIZE, 'commitment');
  const buf = new Uint8Array(65);
  buf[0] = LEAF_HASH_PREFIX;
  buf.set(key, 1);
  buf.set(commitment, 33);
  return sha256(buf);
}

/** The value of a parent: `SHA-256(0x03 || left || right)`; pass 32 zero bytes for a missing child. */
export function parentHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  checkBytes(left, HASH_SIZE, 'left');
  checkBytes(right, HASH_SIZE, 'right');
  const buf = new Uint8Array(65);
  buf[0] = PARENT_HASH_PREFIX;
  buf.set(left, 1);
  buf.set(right, 33);
  return sha256(buf);
}

// Node references: 0 is a missing node, -(i + 1) is leaf i, i + 1 is parent i.
const EMPTY = 0;
// Bytes per leaf record.
const REC = 65;

/**
 * An in-memory prefix tree, as the directory holds it. Clients never need one: they use
 * {@link verify} / {@link verifyMany}.
 *
 * @example
 * ```ts
 * const tree = new prefixTree.PrefixTree();
 * tree.insertBatch([{ key: vrfOutput, commitment }]);
 * const proof = tree.prove(vrfOutput);
 * prefixTree.verify(tree.root(), vrfOutput, proof, commitment); // { included: true, … }
 * ```
 */
export class PrefixTree {
  /** Per leaf a 65-byte record `0x02 || key || commitment`: exactly the leaf hash input. */
  #leafRecords = new Uint8Array(0);
  #leafHashes = new Uint8Array(0);
  #leafCount = 0;
  #left = new Int32Array(0);
  #right = new Int32Array(0);
  #parentHashes = new Uint8Array(0);
  #parentCount = 0;
  #root = EMPTY;
  /** Leaf indices of the batch being merged, sorted by key. */
  #order = new Int32Array(0);
  readonly #scratch = new Uint8Array(65);

  /** Number of leaves (keys) in the tree. */
  get size(): number {
    return this.#leafCount;
  }

  /** Number of parent nodes, for memory accounting. */
  get parentCount(): number {
    return this.#parentCount;
  }

  /** Bytes held in the tree's arrays, including reserved capacity. */
  get byteSize(): number {
    return (
      this.#leafRecords.byteLength +
      this.#leafHashes.byteLength +
      this.#left.byteLength +
      this.#right.byteLength +
      this.#parentHashes.byteLength
    );
  }

  /** The root value (a copy): 32 zero bytes for an empty tree. */
  root(): Uint8Array {
    return this.#hashOf(this.#root).slice();
  }

  /** True if `key` is in the tree. @throws RangeError if `key` is not 32 bytes. */
  has(key: Uint8Array): boolean {
    checkBytes(key, KEY_SIZE, 'key');
    return this.#find(key) >= 0;
  }

  /** The commitment stored for `key` (a copy), or undefined. @throws RangeError if `key` is not 32 bytes. */
  get(key: Uint8Array): Uint8Array | undefined {
    checkBytes(key, KEY_SIZE, 'key');
    const leaf = this.#find(key);
    return leaf < 0 ? undefined : this.#leafRecords.slice(leaf * REC + 33, leaf * REC + 65);
  }

  /**
   * Inserts one key.
   * @throws KtError `ERR_PREFIX_TREE_DUPLICATE_KEY` if the key is present (the tree is unchanged).
   * @throws RangeError if the key or commitment is not 32 bytes.
   */
  insert(key: Uint8Array, commitment: Uint8Array): void {
    this.insertBatch([{ key, commitment }]);
  }

  /**
   * Inserts many keys at once, hashing every touched node once. All or nothing: if any key is
   * already present or occurs twice in the batch, nothing is inserted.
   * @throws KtError `ERR_PREFIX_TREE_DUPLICATE_KEY`
   * @throws RangeError if a key or commitment is not 32 bytes.
   */
  insertBatch(entries: readonly PrefixEntry[]): void {
    this.#add(entries, false);
  }

  /**
   * Builds a tree from entries sorted by key, strictly ascending (byte order), as read back
   * from storage. Faster than inserting: no sort and no lookups.
   * @throws RangeError if the entries are not strictly ascending, or a key or commitment is not
   *   32 bytes.
   */
  static build(sortedEntries: readonly PrefixEntry[]): PrefixTree {
    const tree = new PrefixTree();
    tree.#add(sortedEntries, true);
    return tree;
  }

  /**
   * Proves the search for one key.
   * @throws RangeError if `key` is not 32 bytes or the search ends deeper than 255 bits
   *   (two keys agreeing on 255 bits).
   */
  prove(key: Uint8Array): PrefixProof {
    return this.proveMany([key]);
  }

  /**
   * Proves the searches for several keys in one proof, sharing copath elements (the binary
   * ladder of a lookup proves several versions of one label this way).
   * @param keys - distinct 32-byte keys; the results follow this order.
   * @throws RangeError if a key is not 32 bytes, a key repeats, or a search ends deeper than 255.
   */
  proveMany(keys: readonly Uint8Array[]): PrefixProof {
    const seen = new Set<string>();
    for (const key of keys) {
      checkBytes(key, KEY_SIZE, 'key');
      const id = String.fromCharCode(...key);
      if (seen.has(id)) throw new RangeError('proveMany: a key repeats');
      seen.add(id);
    }
    const results = keys.map((key) => this.#search(key));
    const elements: Uint8Array[] = [];
    if (keys.length === 0) elements.push(this.root());
    else this.#collect(this.#root, 0, keys, elements);
    return { results, elements };
  }

  // ---- internals ----

  #hashOf(ref: number): Uint8Array {
    if (ref === EMPTY) return ZERO_HASH;
    if (ref < 0) {
      const o = (-ref - 1) * 32;
      return this.#leafHashes.subarray(o, o + 32);
    }
    const o = (ref - 1) * 32;
    return this.#parentHashes.subarray(o, o + 32);
  }

  #bit(leaf: number, depth: number): number {
    return (
      ((this.#leafRecords[leaf * REC + 1 + (depth >>> 3)] as number) >>> (7 - (depth & 7))) & 1
    );
  }

  /** Index of the leaf holding `key`, or -1. */
  #find(key: Uint8Array): number {
    let ref = this.#root;
    let depth = 0;
    while (ref > 0) {
      ref =
        keyBit(key, depth) === 1
          ? (this.#right[ref - 1] as number)
          : (this.#left[ref - 1] as number);
      depth++;
    }
    if (ref === EMPTY) return -1;
    const leaf = -ref - 1;
    const o = leaf * REC + 1;
    for (let i = 0; i < 32; i++) if (this.#leafRecords[o + i] !== key[i]) return -1;
    return leaf;
  }

  #search(key: Uint8Array): PrefixSearchResult {
    let ref = this.#root;
    let depth = 0;
    while (ref > 0) {
      ref =
        keyBit(key, depth) === 1
          ? (this.#right[ref - 1] as number)
          : (this.#left[ref - 1] as number);
      depth++;
    }
    if (depth > MAX_DEPTH) throw new RangeError('prefix tree: terminal node deeper than 255');
    if (ref === EMPTY) return { type: 'nonInclusionParent', depth };
    const o = (-ref - 1) * REC;
    const leafKey = this.#leafRecords.slice(o + 1, o + 33);
    if (equal32(leafKey, key)) return { type: 'inclusion', depth };
    return {
      type: 'nonInclusionLeaf',
      depth,
      leaf: { key: leafKey, commitment: this.#leafRecords.slice(o + 33, o + 65) },
    };
  }

  /** Appends copath values for the searches `keys` below `ref`, left to right. */
  #collect(ref: number, depth: number, keys: readonly Uint8Array[], out: Uint8Array[]): void {
    if (ref <= 0) return; // a terminal: the result type says what it is
    const p = ref - 1;
    const goLeft: Uint8Array[] = [];
    const goRight: Uint8Array[] = [];
    for (const key of keys) (keyBit(key, depth) === 1 ? goRight : goLeft).push(key);
    const left = this.#left[p] as number;
    const right = this.#right[p] as number;
    if (goLeft.length === 0) out.push(this.#hashOf(left).slice());
    else this.#collect(left, depth + 1, goLeft, out);
    if (goRight.length === 0) out.push(this.#hashOf(right).slice());
    else this.#collect(right, depth + 1, goRight, out);
  }

  #growLeaves(need: number, headroom: number): void {
    const have = this.#leafHashes.length / 32;
    if (need <= have) return;
    const cap = Math.max(need + headroom, Math.ceil(have * 1.5), 16);
    const records = new Uint8Array(cap * REC);
    records.set(this.#leafRecords.subarray(0, this.#leafCount * REC));
    const hashes = new Uint8Array(cap * 32);
    hashes.set(this.#leafHashes.subarray(0, this.#leafCount * 32));
    this.#leafRecords = records;
    this.#leafHashes = hashes;
  }

  #reserveParents(need: number): void {
    if (need <= this.#left.length) return;
    const cap = Math.max(need, Math.ceil(this.#left.length * 1.5), 16);
    const l = new Int32Array(cap);
    l.set(this.#left.subarray(0, this.#parentCount));
    const r = new Int32Array(cap);
    r.set(this.#right.subarray(0, this.#parentCount));
    const h = new Uint8Array(cap * 32);
    h.set(this.#parentHashes.subarray(0, this.#parentCount * 32));
    this.#left = l;
    this.#right = r;
    this.#parentHashes = h;
  }

  #newParent(left: number, right: number): number {
    const p = this.#parentCount;
    if (p === this.#left.length) this.#reserveParents(p + 1);
    this.#parentCount = p + 1;
    this.#left[p] = left;
    this.#right[p] = right;
    this.#hashParent(p);
    return p + 1;
  }

  /** Copies the value of `ref` into the scratch buffer at `at`, without allocating. */
  #copyHash(ref: number, at: number): void {
    const s = this.#scratch;
    if (ref === EMPTY) {
      s.fill(0, at, at + 32);
      return;
    }
    const src = ref < 0 ? this.#leafHashes : this.#parentHashes;
    const o = (ref < 0 ? -ref - 1 : ref - 1) * 32;
    for (let i = 0; i < 32; i++) s[at + i] = src[o + i] as number;
  }

  #hashParent(p: number): void {
    const s = this.#scratch;
    s[0] = PARENT_HASH_PREFIX;
    this.#copyHash(this.#left[p] as number, 1);
    this.#copyHash(this.#right[p] as number, 33);
    this.#parentHashes.set(sha256(s), p * 32);
  }

  #compareLeaves(a: number, b: number): number {
    const keys = this.#leafRecords;
    const oa = a * REC + 1;
    const ob = b * REC + 1;
    for (let i = 0; i < 32; i++) {
      const d = (keys[oa + i] as number) - (keys[ob + i] as number);
      if (d !== 0) return d;
    }
    return 0;
  }

  /**
   * Sorts leaf indices by key. Large batches are bucketed by their first 16 bits first (keys
   * are VRF outputs, so buckets stay tiny); any distribution still sorts correctly.
   */
  #sortByKey(order: Int32Array): void {
    const cmp = (a: number, b: number): number => this.#compareLeaves(a, b);
    const n = order.length;
    if (n < 4096) {
      order.sort(cmp);
      return;
    }
    const rec = this.#leafRecords;
    const bucketOf = (leaf: number): number =>
      ((rec[leaf * REC + 1] as number) << 8) | (rec[leaf * REC + 2] as number);
    const start = new Int32Array(65537);
    for (let i = 0; i < n; i++) {
      const b = bucketOf(order[i] as number) + 1;
      start[b] = (start[b] as number) + 1;
    }
    for (let b = 0; b < 65536; b++) start[b + 1] = (start[b + 1] as number) + (start[b] as number);
    const next = start.slice(0, 65536);
    const sorted = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const leaf = order[i] as number;
      const b = bucketOf(leaf);
      sorted[next[b] as number] = leaf;
      next[b] = (next[b] as number) + 1;
    }
    for (let b = 0; b < 65536; b++) {
      const lo = start[b] as number;
      const hi = start[b + 1] as number;
      if (hi - lo > 1) sorted.subarray(lo, hi).sort(cmp);
    }
    order.set(sorted);
  }

  #add(entries: readonly PrefixEntry[], presorted: boolean): void {
    const n = entries.length;
    if (n === 0) return;
    const first = this.#leafCount;
    for (const { key, commitment } of entries) {
      checkBytes(key, KEY_SIZE, 'key');
      checkBytes(commitment, HASH_SIZE, 'commitment');
    }
    // A bulk build reserves 1/8 headroom so the next epochs' inserts do not copy everything.
    this.#growLeaves(first + n, presorted ? n >>> 3 : 0);
    const records = this.#leafRecords;
    for (let i = 0; i < n; i++) {
      const e = entries[i] as PrefixEntry;
      const o = (first + i) * REC;
      records[o] = LEAF_HASH_PREFIX;
      records.set(e.key, o + 1);
      records.set(e.commitment, o + 33);
    }
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = first + i;
    // Check everything before linking: #leafCount is unchanged until then, so on an error the
    // appended leaves stay unreachable and the tree is unchanged.
    if (presorted) {
      for (let i = 1; i < n; i++) {
        const d = this.#compareLeaves(first + i - 1, first + i);
        if (d === 0) throw new KtError('ERR_PREFIX_TREE_DUPLICATE_KEY', 'a key occurs twice');
        if (d > 0) throw new RangeError('build: entries must be sorted by key');
      }
    } else {
      this.#sortByKey(order);
      for (let i = 1; i < n; i++) {
        if (this.#compareLeaves(order[i - 1] as number, order[i] as number) === 0) {
          throw new KtError('ERR_PREFIX_TREE_DUPLICATE_KEY', 'a key occurs twice in the batch');
        }
      }
      if (this.#root !== EMPTY) {
        for (let i = 0; i < n; i++) {
          const key = (entries[i] as PrefixEntry).key;
          if (this.#find(key) >= 0) {
            throw new KtError('ERR_PREFIX_TREE_DUPLICATE_KEY', 'a key is already in the tree');
          }
        }
      }
    }
    for (let i = first; i < first + n; i++) {
      this.#leafHashes.set(sha256(records.subarray(i * REC, i * REC + REC)), i * 32);
    }
    // Random keys need about 1.44 parents per leaf; reserving up front avoids repeated
    // reallocation of large arrays (each one can force a full garbage collection).
    this.#reserveParents(this.#parentCount + Math.ceil(n * (presorted ? 1.7 : 1.5)) + 16);
    this.#leafCount = first + n;
    this.#order = order;
    this.#root = this.#merge(this.#root, 0, 0, n);
    this.#order = new Int32Array(0);
  }

  /** First index in [lo, hi) of the sorted batch whose key has bit `depth` set. */
  #split(lo: number, hi: number, depth: number): number {
    const order = this.#order;
    let a = lo;
    let b = hi;
    while (a < b) {
      const m = (a + b) >>> 1;
      if (this.#bit(order[m] as number, depth) === 1) b = m;
      else a = m + 1;
    }
    return a;
  }

  /** First bit at or after `from` where the keys of two leaves differ (256 if equal). */
  #lcp(a: number, b: number, from: number): number {
    const keys = this.#leafRecords;
    const oa = a * REC + 1;
    const ob = b * REC + 1;
    for (let i = from >>> 3; i < 32; i++) {
      const x = (keys[oa + i] as number) ^ (keys[ob + i] as number);
      if (x !== 0) return i * 8 + Math.clz32(x) - 24;
    }
    // Unreachable: keys are distinct (duplicates are rejected before any merge).
    /* v8 ignore next */
    return 256;
  }

  /**
   * Merges batch keys [lo, hi) into the subtree `ref` at `depth` (they all share its first
   * `depth` bits) and returns the new reference. Untouched subtrees keep their hashes.
   */
  #merge(ref: number, depth: number, lo: number, hi: number): number {
    if (lo === hi) return ref;
    if (ref === EMPTY) return this.#buildRange(depth, lo, hi, -1);
    if (ref < 0) return this.#buildRange(depth, lo, hi, -ref - 1);
    const p = ref - 1;
    const mid = this.#split(lo, hi, depth);
    // Merge into locals first: a merge can grow (replace) the child arrays, and
    // `this.#left[p] = …` would evaluate the old array before the call.
    const left = this.#merge(this.#left[p] as number, depth + 1, lo, mid);
    const right = this.#merge(this.#right[p] as number, depth + 1, mid, hi);
    this.#left[p] = left;
    this.#right[p] = right;
    this.#hashParent(p);
    return ref;
  }

  /**
   * Builds the subtree for batch keys [lo, hi) plus, if `extra` ≥ 0, the existing leaf `extra`,
   * all sharing their first `depth` bits. Returns its reference.
   */
  #buildRange(depth: number, lo: number, hi: number, extra: number): number {
    const order = this.#order;
    const count = hi - lo + (extra >= 0 ? 1 : 0);
    if (count === 1) return -((hi > lo ? (order[lo] as number) : extra) + 1);
    // count ≥ 2, so the batch range is not empty.
    const firstLeaf = order[lo] as number;
    // The longest common prefix of a sorted set is that of its first and last keys; the
    // extra leaf can sit anywhere in the order, so compare it separately.
    let d = hi - lo >= 2 ? this.#lcp(firstLeaf, order[hi - 1] as number, depth) : 256;
    if (extra >= 0) d = Math.min(d, this.#lcp(firstLeaf, extra, depth));
    const mid = this.#split(lo, hi, d);
    const extraBit = extra >= 0 ? this.#bit(extra, d) : -1;
    const left = this.#buildRange(d + 1, lo, mid, extraBit === 0 ? extra : -1);
    const right = this.#buildRange(d + 1, mid, hi, extraBit === 1 ? extra : -1);
    let node = this.#newParent(left, right);
    // Bits depth..d-1 are shared by every key here: a chain of parents with one missing child.
    for (let j = d - 1; j >= depth; j--) {
      node =
        this.#bit(firstLeaf, j) === 1 ? this.#newParent(EMPTY, node) : this.#newParent(node, EMPTY);
    }
    return node;
  }
}

// ---- verification ----

const KIND = { unknown: 0, empty: 1, leaf: 2, parent: 3 } as const;

interface SkeletonNode {
  kind: 0 | 1 | 2 | 3;
  value: Uint8Array | undefined; // unknown: the copath value once filled
  key: Uint8Array | undefined; // leaf
  commitment: Uint8Array | undefined; // leaf
  left: SkeletonNode | undefined;
  right: SkeletonNode | undefined;
}

function node(kind: SkeletonNode['kind']): SkeletonNode {
  return {
    kind,
    value: undefined,
    key: undefined,
    commitment: undefined,
    left: undefined,
    right: undefined,
  };
}

function invalid(message: string): VerificationError {
  return new VerificationError('ERR_PREFIX_PROOF_INVALID', message);
}

function malformedProof(message: string): MalformedError {
  return new MalformedError('ERR_PREFIX_TREE_MALFORMED', message);
}

function checkResultShape(result: PrefixSearchResult): void {
  if (!Number.isInteger(result.depth) || result.depth < 0 || result.depth > MAX_DEPTH) {
    throw malformedProof('result depth must be an integer in 0..255');
  }
  if (!(result.type in RESULT_CODES)) throw malformedProof('unknown result type');
  if (result.type === 'nonInclusionLeaf') {
    const { key, commitment } = result.leaf;
    if (!(key instanceof Uint8Array) || key.length !== KEY_SIZE) {
      throw malformedProof('leaf key must be 32 bytes');
    }
    if (!(commitment instanceof Uint8Array) || commitment.length !== HASH_SIZE) {
      throw malformedProof('leaf commitment must be 32 bytes');
    }
  }
}

/** Grafts one search's terminal node into the skeleton, checking it against earlier searches. */
function addToSkeleton(root: SkeletonNode, search: PrefixSearch, result: PrefixSearchResult): void {
  const key = search.key;
  const target = result.depth;
  let n = root;
  let depth = 0;
  for (;;) {
    if (n.kind === KIND.parent) {
      n = (keyBit(key, depth) === 1 ? n.right : n.left) as SkeletonNode;
      depth++;
      continue;
    }
    if (n.kind === KIND.unknown) {
      if (depth < target) {
        n.kind = KIND.parent;
        n.left = node(KIND.unknown);
        n.right = node(KIND.unknown);
        continue;
      }
      if (depth > target) throw invalid('a search ends above a node another search passes');
      placeTerminal(n, search, result);
      return;
    }
    // An empty slot or a leaf that an earlier search of this proof placed: both searches must
    // describe the same node.
    if (depth !== target) throw invalid('searches disagree about the depth of a terminal node');
    if (n.kind === KIND.empty) {
      if (result.type !== 'nonInclusionParent') throw invalid('searches disagree about a node');
      return;
    }
    const leafKey = n.key as Uint8Array;
    const leafCommitment = n.commitment as Uint8Array;
    if (result.type === 'inclusion') {
      if (!equal32(leafKey, key)) throw invalid('inclusion result at the leaf of another key');
      if (search.commitment === undefined || !equal32(search.commitment, leafCommitment)) {
        throw invalid('searches disagree about a commitment');
      }
      return;
    }
    if (result.type === 'nonInclusionLeaf') {
      if (!equal32(result.leaf.key, leafKey) || !equal32(result.leaf.commitment, leafCommitment)) {
        throw invalid('searches disagree about a leaf');
      }
      if (equal32(leafKey, key)) throw invalid('non-inclusion result at the leaf of the key');
      return;
    }
    throw invalid('searches disagree about a node');
  }
}

function placeTerminal(n: SkeletonNode, search: PrefixSearch, result: PrefixSearchResult): void {
  const key = search.key;
  switch (result.type) {
    case 'inclusion':
      if (search.commitment === undefined) {
        throw invalid('an inclusion result needs the expected commitment');
      }
      n.kind = KIND.leaf;
      n.key = key;
      n.commitment = search.commitment;
      return;
    case 'nonInclusionLeaf': {
      const leaf = result.leaf;
      // A leaf really reached by this search shares the bits walked and holds another key.
      if (equal32(leaf.key, key)) throw invalid('non-inclusion result carries the searched key');
      for (let i = 0; i < result.depth; i++) {
        if (keyBit(leaf.key, i) !== keyBit(key, i)) {
          throw invalid('non-inclusion leaf is not on the search path');
        }
      }
      n.kind = KIND.leaf;
      n.key = leaf.key;
      n.commitment = leaf.commitment;
      return;
    }
    case 'nonInclusionParent':
      n.kind = KIND.empty;
      return;
  }
}

function fillCopath(n: SkeletonNode, elements: readonly Uint8Array[], at: { i: number }): void {
  if (n.kind === KIND.unknown) {
    const e = elements[at.i];
    if (e === undefined) throw invalid('proof has too few copath elements');
    n.value = e;
    at.i++;
  } else if (n.kind === KIND.parent) {
    fillCopath(n.left as SkeletonNode, elements, at);
    fillCopath(n.right as SkeletonNode, elements, at);
  }
}

function valueOf(n: SkeletonNode, buf: Uint8Array): Uint8Array {
  switch (n.kind) {
    case KIND.unknown:
      return n.value as Uint8Array;
    case KIND.empty:
      return ZERO_HASH;
    case KIND.leaf:
      buf[0] = LEAF_HASH_PREFIX;
      buf.set(n.key as Uint8Array, 1);
      buf.set(n.commitment as Uint8Array, 33);
      return sha256(buf);
    default: {
      const left = valueOf(n.left as SkeletonNode, buf);
      const right = valueOf(n.right as SkeletonNode, buf);
      buf[0] = PARENT_HASH_PREFIX;
      buf.set(left, 1);
      buf.set(right, 33);
      return sha256(buf);
    }
  }
}

/**
 * Recomputes the root a proof implies for the given searches (KEYTRANS clients compare it with
 * the prefix root of a log entry). Prefer {@link verifyMany} when the root is known.
 * @throws RangeError if a search key or commitment is not 32 bytes, or a key repeats.
 * @throws MalformedError `ERR_PREFIX_TREE_MALFORMED` for a result or element of the wrong shape.
 * @throws VerificationError `ERR_PREFIX_PROOF_INVALID` if the results contradict each other or
 *   the searched keys, an inclusion result lacks its commitment, or the number of elements is
 *   not exactly the number needed.
 */
export function evaluate(searches: readonly PrefixSearch[], proof: PrefixProof): Uint8Array {
  const seen = new Set<string>();
  for (const s of searches) {
    checkBytes(s.key, KEY_SIZE, 'key');
    if (s.commitment !== undefined) checkBytes(s.commitment, HASH_SIZE, 'commitment');
    const id = String.fromCharCode(...s.key);
    if (seen.has(id)) throw new RangeError('evaluate: a key repeats');
    seen.add(id);
  }
  for (const r of proof.results) checkResultShape(r);
  for (const e of proof.elements) {
    if (!(e instanceof Uint8Array) || e.length !== HASH_SIZE) {
      throw malformedProof('copath elements must be 32 bytes');
    }
  }
  if (proof.results.length !== searches.length) {
    throw invalid(`proof has ${proof.results.length} results for ${searches.length} searches`);
  }
  const root = node(KIND.unknown);
  searches.forEach((s, i) => {
    addToSkeleton(root, s, proof.results[i] as PrefixSearchResult);
  });
  const at = { i: 0 };
  fillCopath(root, proof.elements, at);
  if (at.i !== proof.elements.length) throw invalid('proof has too many copath elements');
  return valueOf(root, new Uint8Array(65)).slice();
}

/**
 * Verifies several searches against a root.
 * @returns one verification per search, in order.
 * @throws RangeError if `root` is not 32 bytes, or as {@link evaluate}.
 * @throws MalformedError `ERR_PREFIX_TREE_MALFORMED` as {@link evaluate}.
 * @throws VerificationError `ERR_PREFIX_PROOF_INVALID` as {@link evaluate}, or if the
 *   recomputed root differs from `root`.
 */
export function verifyMany(
  root: Uint8Array,
  searches: readonly PrefixSearch[],
  proof: PrefixProof,
): PrefixVerification[] {
  checkBytes(root, HASH_SIZE, 'root');
  if (!equal32(evaluate(searches, proof), root)) {
    throw invalid('proof does not lead to the expected root');
  }
  return proof.results.map((result) => ({ included: result.type === 'inclusion', result }));
}

/**
 * Verifies the search for one key against a root.
 * @param commitment - the commitment expected if the key is present; without it only
 *   non-inclusion can be verified.
 * @example
 * ```ts
 * const { included } = prefixTree.verify(root, vrfOutput, proof, commitment);
 * ```
 * @throws as {@link verifyMany}.
 */
export function verify(
  root: Uint8Array,
  key: Uint8Array,
  proof: PrefixProof,
  commitment?: Uint8Array,
): PrefixVerification {
  const search: PrefixSearch = commitment === undefined ? { key } : { key, commitment };
  return verifyMany(root, [search], proof)[0] as PrefixVerification;
}

/**
 * Appends the wire encoding of a proof to `w`.
 * @throws MalformedError `ERR_ENCODING_TOO_LARGE` with more than 255 results or 65535 elements.
 * @throws MalformedError `ERR_PREFIX_TREE_MALFORMED` for a result or element of the wrong shape.
 */
export function writeProof(w: Writer, proof: PrefixProof): void {
  if (proof.results.length > 0xff || proof.elements.length > 0xffff) {
    throw new MalformedError('ERR_ENCODING_TOO_LARGE', 'too many results or elements');
  }
  w.u8(proof.results.length);
  for (const r of proof.results) {
    checkResultShape(r);
    w.u8(RESULT_CODES[r.type]);
    if (r.type === 'nonInclusionLeaf') w.bytes(r.leaf.key).bytes(r.leaf.commitment);
    w.u8(r.depth);
  }
  w.u16(proof.elements.length);
  for (const e of proof.elements) {
    if (!(e instanceof Uint8Array) || e.length !== HASH_SIZE) {
      throw malformedProof('copath elements must be 32 bytes');
    }
    w.bytes(e);
  }
}

/**
 * Reads a proof from `r`. Bounded: no more elements than the results' depths can use (one for
 * a proof without results), checked before they are read.
 * @throws MalformedError `ERR_ENCODING_MALFORMED` (truncated), `ERR_PREFIX_TREE_MALFORMED`
 *   (unknown result type, too many elements).
 */
export function readProof(r: Reader): PrefixProof {
  const n = r.u8();
  const results: PrefixSearchResult[] = [];
  let depthSum = 0;
  for (let i = 0; i < n; i++) {
    const type = r.u8();
    let result: PrefixSearchResult;
    if (type === RESULT_CODES.inclusion) {
      result = { type: 'inclusion', depth: r.u8() };
    } else if (type === RESULT_CODES.nonInclusionLeaf) {
      const key = r.fixed(KEY_SIZE);
      const commitment = r.fixed(HASH_SIZE);
      result = { type: 'nonInclusionLeaf', depth: r.u8(), leaf: { key, commitment } };
    } else if (type === RESULT_CODES.nonInclusionParent) {
      result = { type: 'nonInclusionParent', depth: r.u8() };
    } else {
      throw malformedProof(`unknown prefix search result type ${type}`);
    }
    depthSum += result.depth;
    results.push(result);
  }
  const m = r.u16();
  // Every copath element is the sibling of a distinct node on some search path.
  if (m > (n === 0 ? 1 : depthSum)) throw malformedProof('more copath elements than searches use');
  const elements: Uint8Array[] = [];
  for (let i = 0; i < m; i++) elements.push(r.fixed(HASH_SIZE));
  return { results, elements };
}

/** The wire encoding of a proof. @throws as {@link writeProof}. */
export function encodeProof(proof: PrefixProof): Uint8Array {
  const w = new Writer(3 + proof.results.length * 66 + proof.elements.length * HASH_SIZE);
  writeProof(w, proof);
  return w.finish();
}

/**
 * Decodes a proof strictly (no trailing bytes).
 * @throws MalformedError `ERR_ENCODING_MALFORMED`, `ERR_ENCODING_TRAILING_BYTES`,
 *   `ERR_PREFIX_TREE_MALFORMED`
 */
export function decodeProof(bytes: Uint8Array): PrefixProof {
  const r = new Reader(bytes);
  const proof = readProof(r);
  r.end();
  return proof;
}
