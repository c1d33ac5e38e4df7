/**
 * Merkle tree hashing for append-only logs, RFC 9162 §2.1 (identical to RFC 6962 §2.1):
 * leaf and node hashes, the tree head of a list, inclusion and consistency proofs (generation
 * per RFC 6962 §2.1.1 PATH and §2.1.2 PROOF/SUBPROOF, verification per RFC 9162 §2.1.3.2 and
 * §2.1.4.2), the compact range (the "frontier": one hash per complete subtree of the prefix) and
 * an in-memory tree that keeps every level so any proof costs O(log n).
 *
 * Verification is strict, as transparency-dev/merkle is: every hash is exactly 32 bytes, the
 * number of proof elements must be exactly what the sizes call for, an index must lie inside the
 * tree, a consistency proof from the empty tree is rejected, and equal sizes need an empty proof
 * and equal roots.
 *
 * Error kinds:
 * - `ERR_PROOF_MALFORMED` ({@link MalformedError}): a hash that is not 32 bytes, a size or index
 *   that is not a non-negative safe integer, an index outside the tree, an old size larger than
 *   the new size, or an old size of 0;
 * - `ERR_INCLUSION_PROOF_INVALID` / `ERR_CONSISTENCY_PROOF_INVALID` ({@link VerificationError}):
 *   well-formed input whose proof does not hold, including a proof with too few or too many
 *   elements (it is a proof of something else).
 *
 * Sizes and indexes are JavaScript numbers, so trees are limited to 2^53 − 1 leaves.
 *
 * All hashing goes through the crypto seam (`./crypto.ts`). Interior nodes are hashed by copying
 * both children into one reused 65-byte buffer, so the only allocation per node is the digest.
 * @module
 */
import { equalBytes } from './bytes.ts';
import { getCryptoBackend, type CryptoBackend } from './crypto.ts';
import { MalformedError, VerificationError } from './errors.ts';

/** Size in bytes of every hash in the tree (SHA-256). */
export const HASH_SIZE = 32;
/** Domain-separation prefix of leaf hashes (RFC 6962 §2.1). */
export const RFC6962_LEAF_HASH_PREFIX = 0x00;
/** Domain-separation prefix of interior-node hashes (RFC 6962 §2.1). */
export const RFC6962_NODE_HASH_PREFIX = 0x01;
/** Largest tree size (and index bound) this module handles: 2^53 − 1. */
export const MAX_TREE_SIZE: number = Number.MAX_SAFE_INTEGER;

// One scratch buffer for every interior-node hash: 0x01 || left || right. Hashing is
// synchronous and the backend copies its input, so sharing it is safe.
const NODE_INPUT = new Uint8Array(1 + 2 * HASH_SIZE);
NODE_INPUT[0] = RFC6962_NODE_HASH_PREFIX;

type Backend = CryptoBackend;

function hashChildren(b: Backend, left: Uint8Array, right: Uint8Array): Uint8Array {
  NODE_INPUT.set(left, 1);
  NODE_INPUT.set(right, 1 + HASH_SIZE);
  return b.sha256(NODE_INPUT);
}

function assertHash(value: Uint8Array, label: string): void {
  if (!(value instanceof Uint8Array) || value.length !== HASH_SIZE) {
    throw new RangeError(`${label}: expected a ${HASH_SIZE}-byte hash`);
  }
}

function isSize(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** Largest power of two strictly below `n` (n ≥ 2). */
function splitPoint(n: number): number {
  if (n <= 0x1_0000_0000) return 2 ** (31 - Math.clz32(n - 1));
  let k = 0x1_0000_0000;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && splitPoint(n + 1) === n;
}

/** ⌊n / 2⌋ for safe integers (bit shifts would truncate to 32 bits). */
function half(n: number): number {
  return (n - (n % 2)) / 2;
}

function popCount(n: number): number {
  let c = 0;
  for (let x = n; x > 0; x = half(x)) c += x % 2;
  return c;
}

/** SHA-256 of the empty string: the root of the empty tree. */
export function emptyRoot(): Uint8Array {
  return getCryptoBackend().sha256(new Uint8Array(0));
}

/** The leaf hash `SHA-256(0x00 || data)` of one log entry. */
export function leafHash(data: Uint8Array): Uint8Array {
  const input = new Uint8Array(1 + data.length);
  input[0] = RFC6962_LEAF_HASH_PREFIX;
  input.set(data, 1);
  return getCryptoBackend().sha256(input);
}

/**
 * The interior-node hash `SHA-256(0x01 || left || right)`.
 * @throws RangeError if either child is not 32 bytes.
 */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  assertHash(left, 'nodeHash left');
  assertHash(right, 'nodeHash right');
  return hashChildren(getCryptoBackend(), left, right);
}

/**
 * Root of the leaves `leaves[start:end)` by the frontier method: after leaf i is added, merge
 * once per trailing one bit of i, then fold what is left from the right. n − 1 node hashes,
 * O(log n) memory, identical to RFC 6962's recursive MTH.
 */
function rangeRoot(
  h: Backend,
  leaves: readonly Uint8Array[],
  start: number,
  end: number,
): Uint8Array {
  const stack: Uint8Array[] = [];
  for (let i = start; i < end; i++) {
    let node = leaves[i];
    if (node?.length !== HASH_SIZE) throw new RangeError(`leaf hash ${i}: expected 32 bytes`);
    for (let c = i - start; c % 2 === 1; c = half(c)) {
      node = hashChildren(h, stack.pop() as Uint8Array, node);
    }
    stack.push(node);
  }
  let root = stack.pop();
  if (root === undefined) return h.sha256(new Uint8Array(0));
  for (let left = stack.pop(); left !== undefined; left = stack.pop()) {
    root = hashChildren(h, left, root);
  }
  return root;
}

/**
 * The Merkle tree head (RFC 9162 §2.1.1 MTH) of a list of leaf hashes.
 * @throws RangeError if a leaf hash is not 32 bytes.
 * @example
 * ```ts
 * const leaves = ['a', 'b', 'c'].map((s) => merkle.leafHash(new TextEncoder().encode(s)));
 * const root = merkle.rootHash(leaves);
 * ```
 */
export function rootHash(leafHashes: readonly Uint8Array[]): Uint8Array {
  return rangeRoot(getCryptoBackend(), leafHashes, 0, leafHashes.length);
}

/** `rangeHash(start, end)` returns the hash of the RFC 6962 subtree over leaves [start, end). */
type RangeHash = (start: number, end: number) => Uint8Array;

/** RFC 6962 §2.1.1 PATH(m, D[0:n]), iteratively: outer siblings are collected, then reversed. */
function buildInclusion(index: number, size: number, rangeHash: RangeHash): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  let n = size;
  let m = index;
  while (n > 1) {
    const k = splitPoint(n);
    if (m < k) {
      out.push(rangeHash(start + k, start + n));
      n = k;
    } else {
      out.push(rangeHash(start, start + k));
      start += k;
      m -= k;
      n -= k;
    }
  }
  return out.reverse();
}

/** RFC 6962 §2.1.2 SUBPROOF(m, D[0:n], true), iteratively. Requires 0 < m < n. */
function buildConsistency(oldSize: number, newSize: number, rangeHash: RangeHash): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  let n = newSize;
  let m = oldSize;
  let complete = true;
  while (m !== n) {
    const k = splitPoint(n);
    if (m <= k) {
      out.push(rangeHash(start + k, start + n));
      n = k;
    } else {
      out.push(rangeHash(start, start + k));
      start += k;
      m -= k;
      n -= k;
      complete = false;
    }
  }
  if (!complete) out.push(rangeHash(start, start + n));
  return out.reverse();
}

/**
 * The inclusion proof (audit path, RFC 9162 §2.1.3.1) of leaf `index` in the tree of all
 * `leafHashes`. O(n); servers use {@link MemoryTree} for O(log n).
 * @throws RangeError if `index` is outside the tree or a leaf hash is not 32 bytes.
 */
export function inclusionProof(leafHashes: readonly Uint8Array[], index: number): Uint8Array[] {
  const size = leafHashes.length;
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
    throw new RangeError(`inclusionProof: index ${index} outside a tree of size ${size}`);
  }
  const h = getCryptoBackend();
  return buildInclusion(index, size, (a, b) => rangeRoot(h, leafHashes, a, b));
}

/**
 * The consistency proof (RFC 9162 §2.1.4.1) from the tree of the first `oldSize` leaves to the
 * tree of all `leafHashes`. Empty when `oldSize` is 0 (what tlog-witness sends for `old 0`) or
 * equals the size. O(n); servers use {@link MemoryTree} for O(log n).
 * @throws RangeError if `oldSize` is not in [0, leafHashes.length] or a leaf hash is not 32 bytes.
 */
export function consistencyProof(leafHashes: readonly Uint8Array[], oldSize: number): Uint8Array[] {
  const size = leafHashes.length;
  if (!Number.isSafeInteger(oldSize) || oldSize < 0 || oldSize > size) {
    throw new RangeError(`consistencyProof: old size ${oldSize} outside [0, ${size}]`);
  }
  if (oldSize === 0 || oldSize === size) return [];
  const h = getCryptoBackend();
  return buildConsistency(oldSize, size, (a, b) => rangeRoot(h, leafHashes, a, b));
}

function malformed(message: string): MalformedError {
  return new MalformedError('ERR_PROOF_MALFORMED', message);
}

function checkProofHashes(proof: readonly Uint8Array[]): void {
  if (!Array.isArray(proof)) throw malformed('proof is not a list of hashes');
  for (const p of proof) {
    // Attacker-controlled: every element must be exactly one hash, not a prefix or a suffix.
    if (!(p instanceof Uint8Array) || p.length !== HASH_SIZE) {
      throw malformed('proof element is not a 32-byte hash');
    }
  }
}

function checkHash(value: Uint8Array, what: string): void {
  if (!(value instanceof Uint8Array) || value.length !== HASH_SIZE) {
    throw malformed(`${what} is not a 32-byte hash`);
  }
}

/**
 * The root that an inclusion proof yields for `leafHash` at `index` in a tree of `size` leaves
 * (RFC 9162 §2.1.3.2 steps 1–4), without comparing it to anything.
 * @throws MalformedError `ERR_PROOF_MALFORMED` for a hash that is not 32 bytes, a non-integer
 *   size or index, or `index ≥ size`.
 * @throws VerificationError `ERR_INCLUSION_PROOF_INVALID` if the proof has the wrong length.
 */
export function rootFromInclusionProof(
  leafHash: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
): Uint8Array {
  if (!isSize(index) || !isSize(size)) throw malformed('index and size must be safe integers');
  if (index >= size) throw malformed('leaf index outside the tree');
  checkHash(leafHash, 'leaf hash');
  checkProofHashes(proof);
  const h = getCryptoBackend();
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) throw invalidInclusion();
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(h, p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = hashChildren(h, r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) throw invalidInclusion();
  return r;
}

function invalidInclusion(): VerificationError {
  return new VerificationError('ERR_INCLUSION_PROOF_INVALID', 'inclusion proof does not verify');
}

function invalidConsistency(): VerificationError {
  return new VerificationError(
    'ERR_CONSISTENCY_PROOF_INVALID',
    'consistency proof does not verify',
  );
}

/**
 * Verifies that `leafHash` is leaf `index` of the tree of `size` leaves with head `root`
 * (RFC 9162 §2.1.3.2).
 * @throws MalformedError `ERR_PROOF_MALFORMED` (see {@link rootFromInclusionProof}).
 * @throws VerificationError `ERR_INCLUSION_PROOF_INVALID` if the proof does not hold.
 * @example
 * ```ts
 * const proof = merkle.inclusionProof(leaves, 1);
 * merkle.verifyInclusion(leaves[1], 1, leaves.length, proof, merkle.rootHash(leaves));
 * ```
 */
export function verifyInclusion(
  leafHash: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  checkHash(root, 'root');
  const computed = rootFromInclusionProof(leafHash, index, size, proof);
  if (!equalBytes(computed, root)) throw invalidInclusion();
}

/**
 * Verifies that the tree of `newSize` leaves with head `newRoot` extends the tree of `oldSize`
 * leaves with head `oldRoot` (RFC 9162 §2.1.4.2). `oldSize` must be at least 1: a proof from the
 * empty tree proves nothing, so callers treat size 0 as trust on first use.
 * @throws MalformedError `ERR_PROOF_MALFORMED` for a hash that is not 32 bytes, a non-integer
 *   size, `oldSize > newSize`, or `oldSize = 0`.
 * @throws VerificationError `ERR_CONSISTENCY_PROOF_INVALID` if the proof does not hold (wrong
 *   length, a non-empty proof for equal sizes, different roots for equal sizes, or mismatch).
 */
export function verifyConsistency(
  oldSize: number,
  newSize: number,
  proof: readonly Uint8Array[],
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
): void {
  if (!isSize(oldSize) || !isSize(newSize)) throw malformed('sizes must be safe integers');
  if (oldSize > newSize) throw malformed('old size is larger than new size');
  if (oldSize === 0) throw malformed('a consistency proof from the empty tree proves nothing');
  checkHash(oldRoot, 'old root');
  checkHash(newRoot, 'new root');
  checkProofHashes(proof);
  if (oldSize === newSize) {
    if (proof.length !== 0 || !equalBytes(oldRoot, newRoot)) throw invalidConsistency();
    return;
  }
  if (proof.length === 0) throw invalidConsistency();
  const h = getCryptoBackend();
  // Step 2: when the old tree is a complete subtree, its root is the implicit first element.
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : proof;
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0] as Uint8Array;
  let sr = fr;
  for (let i = 1; i < path.length; i++) {
    const c = path[i] as Uint8Array;
    if (sn === 0) throw invalidConsistency();
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(h, c, fr);
      sr = hashChildren(h, c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = hashChildren(h, sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0 || !equalBytes(fr, oldRoot) || !equalBytes(sr, newRoot)) {
    throw invalidConsistency();
  }
}

/**
 * A compact range over leaves [0, size): the hashes of the complete subtrees that cover the
 * prefix, largest (leftmost) first — one per set bit of `size`. Appending a leaf needs only this
 * frontier, never earlier leaves, and the root is a fold over it.
 * @example
 * ```ts
 * const range = new merkle.CompactRange();
 * for (const leaf of leaves) range.append(leaf);
 * range.root(); // equals merkle.rootHash(leaves)
 * ```
 */
export class CompactRange {
  #size = 0;
  #hashes: Uint8Array[] = [];

  /**
   * Restores a compact range from its size and frontier hashes (as returned by
   * {@link CompactRange.hashes}).
   * @throws MalformedError `ERR_PROOF_MALFORMED` if the number of hashes is not the number of
   *   set bits of `size`, a hash is not 32 bytes, or `size` is not a safe integer.
   */
  static from(size: number, hashes: readonly Uint8Array[]): CompactRange {
    if (!isSize(size)) throw malformed('compact range size must be a safe integer');
    checkProofHashes(hashes);
    if (hashes.length !== popCount(size)) {
      throw malformed('compact range needs one hash per set bit of its size');
    }
    const range = new CompactRange();
    range.#size = size;
    range.#hashes = hashes.map((x) => x.slice());
    return range;
  }

  /** Number of leaves covered. */
  get size(): number {
    return this.#size;
  }

  /**
   * Appends one leaf hash, merging completed subtrees.
   * @throws RangeError if the hash is not 32 bytes or the range is full.
   */
  append(leafHash: Uint8Array): void {
    assertHash(leafHash, 'CompactRange.append');
    if (this.#size >= MAX_TREE_SIZE) throw new RangeError('CompactRange: tree is full');
    const h = getCryptoBackend();
    let node: Uint8Array = leafHash.slice();
    for (let s = this.#size; s % 2 === 1; s = half(s)) {
      node = hashChildren(h, this.#hashes.pop() as Uint8Array, node);
    }
    this.#hashes.push(node);
    this.#size++;
  }

  /** The tree head of the covered leaves (the empty-tree root for size 0). */
  root(): Uint8Array {
    const h = getCryptoBackend();
    const hs = this.#hashes;
    let root = hs[hs.length - 1];
    if (root === undefined) return h.sha256(new Uint8Array(0));
    for (let i = hs.length - 2; i >= 0; i--) root = hashChildren(h, hs[i] as Uint8Array, root);
    return root.slice();
  }

  /** Copies of the frontier hashes, largest subtree first. */
  hashes(): Uint8Array[] {
    return this.#hashes.map((x) => x.slice());
  }

  /** An independent copy. */
  clone(): CompactRange {
    return CompactRange.from(this.#size, this.#hashes);
  }
}

/** One level of a {@link MemoryTree}: node i occupies bytes [32·i, 32·i + 32). */
interface Level {
  bytes: Uint8Array;
  count: number;
}

/** A read-only view of a tree's leaf hashes. */
export interface LeafHashes extends Iterable<Uint8Array> {
  /** Number of leaves. */
  readonly length: number;
  /** A copy of leaf hash `index`, or undefined outside the tree. */
  at(index: number): Uint8Array | undefined;
}

/**
 * An append-only Merkle tree held in memory with every level kept (2n hashes in flat buffers),
 * so roots, inclusion proofs and consistency proofs for the current size or any earlier size
 * cost O(log n) hashes. Used by servers; clients only verify.
 * @example
 * ```ts
 * const tree = new merkle.MemoryTree();
 * for (const leaf of leaves) tree.append(leaf);
 * const proof = tree.inclusionProof(3);
 * merkle.verifyInclusion(leaves[3], 3, tree.size, proof, tree.root());
 * ```
 */
export class MemoryTree {
  #levels: Level[] = [];
  /** #frontier[l]: the last complete node of level l (the left sibling of the next one). */
  #frontier: Uint8Array[] = [];
  #size = 0;

  /**
   * Builds a tree from existing leaf hashes.
   * @throws RangeError if a leaf hash is not 32 bytes.
   */
  static from(leafHashes: Iterable<Uint8Array>): MemoryTree {
    const tree = new MemoryTree();
    for (const leaf of leafHashes) tree.append(leaf);
    return tree;
  }

  /** Number of leaves. */
  get size(): number {
    return this.#size;
  }

  /** A read-only view of the leaf hashes (each access copies one hash). */
  get leafHashes(): LeafHashes {
    const level = this.#levels[0];
    const length = this.#size;
    const at = (i: number): Uint8Array | undefined =>
      level && Number.isSafeInteger(i) && i >= 0 && i < length
        ? level.bytes.slice(i * HASH_SIZE, (i + 1) * HASH_SIZE)
        : undefined;
    return {
      length,
      at,
      *[Symbol.iterator]() {
        for (let i = 0; i < length; i++) yield at(i) as Uint8Array;
      },
    };
  }

  #push(levelIndex: number, hash: Uint8Array): void {
    let level = this.#levels[levelIndex];
    if (level === undefined) {
      level = { bytes: new Uint8Array(HASH_SIZE * 16), count: 0 };
      this.#levels[levelIndex] = level;
    }
    const offset = level.count * HASH_SIZE;
    if (offset + HASH_SIZE > level.bytes.length) {
      const grown = new Uint8Array(level.bytes.length * 2);
      grown.set(level.bytes);
      level.bytes = grown;
    }
    level.bytes.set(hash, offset);
    level.count++;
  }

  /**
   * Appends one leaf hash; completes O(1) amortised interior nodes.
   * @throws RangeError if the hash is not 32 bytes.
   */
  append(leafHash: Uint8Array): void {
    assertHash(leafHash, 'MemoryTree.append');
    const h = getCryptoBackend();
    this.#push(0, leafHash);
    // The frontier keeps the left siblings as separate arrays, so hashing needs no views.
    let node = leafHash;
    let l = 0;
    for (let index = this.#size; index % 2 === 1; index = half(index)) {
      node = hashChildren(h, this.#frontier[l] as Uint8Array, node);
      this.#push(++l, node);
    }
    this.#frontier[l] = l === 0 ? leafHash.slice() : node;
    this.#size++;
  }

  /** View of the complete subtree at `level`, position `index` (must exist). */
  #node(level: number, index: number): Uint8Array {
    const bytes = (this.#levels[level] as Level).bytes;
    return bytes.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE);
  }

  /** Hash of the RFC 6962 subtree over [start, end), end ≤ size; O(log n). */
  #rangeHash(h: Backend, start: number, end: number): Uint8Array {
    const n = end - start;
    if (isPowerOfTwo(n)) {
      const level = Math.round(Math.log2(n));
      return this.#node(level, start / n);
    }
    // Only the right child can be incomplete, so the recursion follows one spine.
    const k = splitPoint(n);
    const left = this.#node(Math.round(Math.log2(k)), start / k);
    const right = this.#rangeHash(h, start + k, end);
    return hashChildren(h, left, right);
  }

  #checkSize(size: number, what: string): void {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.#size) {
      throw new RangeError(`MemoryTree: ${what} ${size} outside [0, ${this.#size}]`);
    }
  }

  /**
   * The tree head at `size` (default: the current size).
   * @throws RangeError if `size` exceeds the current size.
   */
  root(size: number = this.#size): Uint8Array {
    this.#checkSize(size, 'size');
    const h = getCryptoBackend();
    if (size === 0) return h.sha256(new Uint8Array(0));
    return this.#rangeHash(h, 0, size).slice();
  }

  /**
   * The inclusion proof of leaf `index` in the tree of `size` leaves (default: current size).
   * @throws RangeError if `size` exceeds the current size or `index ≥ size`.
   */
  inclusionProof(index: number, size: number = this.#size): Uint8Array[] {
    this.#checkSize(size, 'size');
    if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
      throw new RangeError(`MemoryTree: index ${index} outside a tree of size ${size}`);
    }
    const h = getCryptoBackend();
    return buildInclusion(index, size, (a, b) => this.#rangeHash(h, a, b).slice());
  }

  /**
   * The consistency proof from `oldSize` to `newSize` (default: current size). Empty when
   * `oldSize` is 0 or equals `newSize`.
   * @throws RangeError unless 0 ≤ oldSize ≤ newSize ≤ size.
   */
  consistencyProof(oldSize: number, newSize: number = this.#size): Uint8Array[] {
    this.#checkSize(newSize, 'new size');
    if (!Number.isSafeInteger(oldSize) || oldSize < 0 || oldSize > newSize) {
      throw new RangeError(`MemoryTree: old size ${oldSize} outside [0, ${newSize}]`);
    }
    if (oldSize === 0 || oldSize === newSize) return [];
    const h = getCryptoBackend();
    return buildConsistency(oldSize, newSize, (a, b) => this.#rangeHash(h, a, b).slice());
  }

  /**
   * The compact range (frontier) of the tree at `size` (default: current size).
   * @throws RangeError if `size` exceeds the current size.
   */
  compactRange(size: number = this.#size): CompactRange {
    this.#checkSize(size, 'size');
    const hashes: Uint8Array[] = [];
    let start = 0;
    // One complete subtree per set bit of size, largest first.
    for (let bit = size > 0 ? splitPoint(size + 1) : 0; start < size; bit /= 2) {
      if (start + bit <= size) {
        hashes.push(this.#node(Math.round(Math.log2(bit)), start / bit));
        start += bit;
      }
    }
    return CompactRange.from(size, hashes);
  }
}
