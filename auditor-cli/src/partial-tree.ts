/**
 * A pruned prefix tree: the part of a KEYTRANS prefix tree (hashing per CONTRACT.md, structure
 * as in `replay-tree.ts`) that a batch of inserts touches, with everything else replaced by
 * its hash. It makes replay findings checkable by anyone without the whole tree: the pruned
 * tree of epoch e−1 must hash to e−1's signed prefix root, and replaying epoch e's inserts into
 * it must either give e's signed root or show why not (a label already present, a root that
 * differs).
 *
 * Encoding (pre-order, one tag byte per node):
 * ```
 * 0x00                         missing node (value: 32 zero bytes)
 * 0x01 key[32] commitment[32]  leaf
 * 0x02 <left> <right>          parent
 * 0x03 hash[32]                pruned subtree, known only by its value
 * ```
 * This module is deliberately simple — one object per node, recursion — and shares no code
 * with `replay-tree.ts`, so the two check each other in the tests.
 * @module
 */
import { sha256 } from '@keytrail/core';
import { AuditError } from './errors.ts';

type Node =
  | { readonly t: 'empty' }
  | { readonly t: 'leaf'; readonly key: Uint8Array; readonly commitment: Uint8Array }
  | { t: 'parent'; left: Node; right: Node }
  | { readonly t: 'pruned'; readonly hash: Uint8Array };

const EMPTY: Node = { t: 'empty' };
const ZERO = new Uint8Array(32);
const MAX_NODES = 1 << 24;

/** Outcome of inserting one key into a partial tree. */
export type PartialInsertResult =
  { readonly kind: 'inserted' } | { readonly kind: 'present'; readonly commitment: Uint8Array };

function bit(key: Uint8Array, depth: number): number {
  return ((key[depth >> 3] ?? 0) >> (7 - (depth & 7))) & 1;
}

function malformed(what: string): AuditError {
  return new AuditError('ERR_AUDIT_EVIDENCE_MALFORMED', `partial prefix tree: ${what}`);
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A pruned prefix tree that can be hashed and inserted into along its expanded paths. */
export class PartialTree {
  #root: Node;
  private constructor(root: Node) {
    this.#root = root;
  }

  /** An empty tree (the tree before epoch 0). */
  static empty(): PartialTree {
    return new PartialTree(EMPTY);
  }

  /**
   * Decodes the pre-order encoding.
   * @throws AuditError `ERR_AUDIT_EVIDENCE_MALFORMED` for truncated or trailing bytes, unknown
   *   tags, or leaves at a position their key does not lead to.
   */
  static decode(data: Uint8Array): PartialTree {
    let pos = 0;
    let count = 0;
    const take = (n: number): Uint8Array => {
      if (pos + n > data.length) throw malformed('truncated');
      const out = data.slice(pos, pos + n);
      pos += n;
      return out;
    };
    // Recursion is bounded: a node deeper than 256 levels is rejected. `path` holds the bits
    // that lead to the node being read, so a leaf can be checked to sit on its key's path.
    const read = (depth: number, path: readonly number[]): Node => {
      if (++count > MAX_NODES) throw malformed('too many nodes');
      if (depth > 256) throw malformed('deeper than 256 levels');
      const tag = take(1)[0];
      switch (tag) {
        case 0x00:
          return EMPTY;
        case 0x01: {
          const key = take(32);
          const commitment = take(32);
          path.forEach((b, d) => {
            if (bit(key, d) !== b) throw malformed('a leaf is off its key path');
          });
          return { t: 'leaf', key, commitment };
        }
        case 0x02: {
          const left = read(depth + 1, [...path, 0]);
          const right = read(depth + 1, [...path, 1]);
          return { t: 'parent', left, right };
        }
        case 0x03:
          return { t: 'pruned', hash: take(32) };
        default:
          throw malformed(`unknown tag ${String(tag)}`);
      }
    };
    const root = read(0, []);
    if (pos !== data.length) throw malformed('trailing bytes');
    return new PartialTree(root);
  }

  /** The root value. */
  root(): Uint8Array {
    return hashNode(this.#root).slice();
  }

  /**
   * Looks `key` up. Returns the commitment, null if the key is absent, or throws if the search
   * leads into a pruned subtree.
   * @throws AuditError `ERR_AUDIT_EVIDENCE_MALFORMED` if the path is pruned.
   */
  get(key: Uint8Array): Uint8Array | null {
    let node = this.#root;
    for (let depth = 0; ; depth++) {
      switch (node.t) {
        case 'empty':
          return null;
        case 'pruned':
          throw malformed('the search path of a key is pruned');
        case 'leaf':
          return same(node.key, key) ? node.commitment : null;
        case 'parent':
          node = bit(key, depth) === 1 ? node.right : node.left;
      }
    }
  }

  /**
   * Inserts `key → commitment` unless the key is present (then nothing changes).
   * @throws AuditError `ERR_AUDIT_EVIDENCE_MALFORMED` if the insert path is pruned.
   */
  insert(key: Uint8Array, commitment: Uint8Array): PartialInsertResult {
    if (key.length !== 32 || commitment.length !== 32) {
      throw new RangeError('PartialTree.insert: key and commitment must be 32 bytes');
    }
    const leaf: Node = { t: 'leaf', key: key.slice(), commitment: commitment.slice() };
    const place = (node: Node, depth: number): Node | PartialInsertResult => {
      switch (node.t) {
        case 'empty':
          return leaf;
        case 'pruned':
          throw malformed('the insert path of a key is pruned');
        case 'leaf': {
          if (same(node.key, key)) return { kind: 'present', commitment: node.commitment };
          // Parents down to the first bit where the keys differ.
          let d = depth;
          while (bit(node.key, d) === bit(key, d)) d++;
          let sub: Node =
            bit(key, d) === 1
              ? { t: 'parent', left: node, right: leaf }
              : { t: 'parent', left: leaf, right: node };
          for (let k = d - 1; k >= depth; k--) {
            sub =
              bit(key, k) === 1
                ? { t: 'parent', left: EMPTY, right: sub }
                : { t: 'parent', left: sub, right: EMPTY };
          }
          return sub;
        }
        case 'parent': {
          const right = bit(key, depth) === 1;
          const r = place(right ? node.right : node.left, depth + 1);
          if ('kind' in r) return r;
          if (right) node.right = r;
          else node.left = r;
          return node;
        }
      }
    };
    const r = place(this.#root, 0);
    if ('kind' in r) return r;
    this.#root = r;
    return { kind: 'inserted' };
  }
}

function hashNode(node: Node): Uint8Array {
  switch (node.t) {
    case 'empty':
      return ZERO;
    case 'pruned':
      return node.hash;
    case 'leaf': {
      const buf = new Uint8Array(65);
      buf[0] = 0x02;
      buf.set(node.key, 1);
      buf.set(node.commitment, 33);
      return sha256(buf);
    }
    case 'parent': {
      const buf = new Uint8Array(65);
      buf[0] = 0x03;
      buf.set(hashNode(node.left), 1);
      buf.set(hashNode(node.right), 33);
      return sha256(buf);
    }
  }
}
