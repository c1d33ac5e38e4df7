/**
 * The two hashing loops of the replay tree (`replay-tree.ts`), over its flat records, with the
 * KEYTRANS prefix-tree hashes of CONTRACT.md: leaf `SHA-256(0x02 || key || commitment)`,
 * parent `SHA-256(0x03 || left || right)` with 32 zero bytes for a missing child.
 *
 * They run on the main thread and, as source text (`Function.prototype.toString`), inside the
 * hashing worker threads (`hash-pool.ts`), so they must be self-contained: they use only their
 * parameters and literals — no imports, no module constants, no nested named functions. The
 * record layouts they hard-code are the replay tree's: a parent is 64 bytes (int32 left, right,
 * dirty flag, padding; hash at byte 16), a leaf 96 bytes (key, commitment, hash at byte 64); a
 * child reference is -1 for none, p ≥ 0 for parent p and -(s + 2) for leaf slot s.
 *
 * `input` is bytes 3..68 of the 72-byte buffer that `scratch32` views, so the two children land
 * on int32 word boundaries (words 1–8 and 9–16) and are copied as eight words each.
 * @module
 */

/** A SHA-256 function. */
export type Sha256 = (data: Uint8Array) => Uint8Array;

/** Hashes leaf slots `from ≤ s < to` of `leaf8` into their records. */
export function hashLeaves(
  leaf8: Uint8Array,
  from: number,
  to: number,
  input: Uint8Array,
  sha256: Sha256,
): void {
  input[0] = 0x02;
  for (let s = from; s < to; s++) {
    const base = s * 96;
    input.set(leaf8.subarray(base, base + 64), 1);
    leaf8.set(sha256(input), base + 64);
  }
}

/**
 * Rehashes, depth first, the dirty parents under `units[first]`, `units[first + step]`, … below
 * `count`; clean subtrees are skipped. Leaves must be hashed already.
 */
export function rehashUnits(
  node8: Uint8Array,
  node32: Int32Array,
  leaf32: Int32Array,
  units: Int32Array,
  first: number,
  step: number,
  count: number,
  scratch32: Int32Array,
  input: Uint8Array,
  stack: Int32Array,
  sha256: Sha256,
): void {
  for (let u = first; u < count; u += step) {
    const unit = units[u] as number;
    if (node32[unit * 16 + 2] !== 1) continue;
    // The stack holds one root-to-node path: at most 257 entries.
    let sp = 0;
    stack[sp++] = unit;
    while (sp > 0) {
      const p = stack[sp - 1] as number;
      const base = p * 16;
      const l = node32[base] as number;
      const r = node32[base + 1] as number;
      if (l >= 0 && node32[l * 16 + 2] === 1) {
        stack[sp++] = l;
        continue;
      }
      if (r >= 0 && node32[r * 16 + 2] === 1) {
        stack[sp++] = r;
        continue;
      }
      for (let side = 0; side < 2; side++) {
        const ref = side === 0 ? l : r;
        const word = side === 0 ? 1 : 9;
        if (ref === -1) {
          for (let k = 0; k < 8; k++) scratch32[word + k] = 0;
        } else if (ref >= 0) {
          const at = (ref * 64 + 16) >> 2;
          for (let k = 0; k < 8; k++) scratch32[word + k] = node32[at + k] as number;
        } else {
          const at = ((-ref - 2) * 96 + 64) >> 2;
          for (let k = 0; k < 8; k++) scratch32[word + k] = leaf32[at + k] as number;
        }
      }
      input[0] = 0x03;
      node8.set(sha256(input), p * 64 + 16);
      node32[base + 2] = 0;
      sp--;
    }
  }
}
