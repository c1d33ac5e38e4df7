/**
 * The IETF KEYTRANS binary ladder (draft-ietf-keytrans-protocol §6.2) and the probe sets that
 * Keytrail's lookup and owner-history proofs carry.
 *
 * The full ladder for a greatest version `t`: the versions 0, 1, 3, 7, …, 2^i−1 up to and
 * including the first one greater than `t`, then a binary search between the last one ≤ t and
 * that one, until the search interval closes on `t` and `t + 1`. A version ≤ t on the ladder
 * must be included in the prefix tree, a version > t must not. For any two targets t ≠ t′ the
 * two ladders contain a version with opposite expected results; that is what lets an owner's
 * monitoring catch a version inserted behind its back, whatever its number (PROTOCOL.md §5).
 * @module
 */

/** The greatest version a label may have: `t + 1` must still fit in a uint32. */
export const MAX_VERSION = 0xffff_fffe;

/** One lookup in a prefix tree: a version and whether it must be present. */
export interface Probe {
  readonly version: number;
  readonly included: boolean;
}

function checkTarget(t: number): void {
  if (!Number.isInteger(t) || t < -1 || t > MAX_VERSION) {
    throw new RangeError(`ladder: ${String(t)} is not a version`);
  }
}

/**
 * The full binary ladder for greatest version `t`, in ladder order. For `t = -1` (no version)
 * it is `[0 absent]`.
 * @throws RangeError if `t` is not in [-1, MAX_VERSION].
 */
export function fullLadder(t: number): Probe[] {
  checkTarget(t);
  const out: Probe[] = [];
  let lo = -1;
  let i = 0;
  while (2 ** i - 1 <= t) {
    lo = 2 ** i - 1;
    out.push({ version: lo, included: true });
    i++;
  }
  let hi = 2 ** i - 1;
  out.push({ version: hi, included: false });
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    const included = mid <= t;
    out.push({ version: mid, included });
    if (included) lo = mid;
    else hi = mid;
  }
  return out;
}

function sortProbes(probes: Iterable<Probe>): Probe[] {
  const byVersion = new Map<number, Probe>();
  for (const p of probes) byVersion.set(p.version, p);
  return [...byVersion.values()].sort((a, b) => a.version - b.version);
}

/**
 * The probes of a lookup proof for greatest version `t`, sorted by version: every ladder
 * version ≤ t (present) and `t + 1` (absent). A viewer needs no more: the owner's monitoring
 * covers the other direction (PROTOCOL.md §5).
 * @throws RangeError if `t` is not in [-1, MAX_VERSION].
 */
export function lookupProbes(t: number): Probe[] {
  return sortProbes([
    ...fullLadder(t).filter((p) => p.included),
    { version: t + 1, included: false },
  ]);
}

/**
 * The probes of an owner-history proof, sorted by version: each listed version (present) and
 * every version of the full ladder of the greatest listed version that is not listed (absent).
 * @param versions - the versions the directory lists for the account, each distinct.
 * @throws RangeError if a version is out of range.
 */
export function historyProbes(versions: readonly number[]): Probe[] {
  const listed = new Set(versions);
  // A loop, not Math.max(...versions): spreading a long history overflows the call stack.
  let t = -1;
  for (const v of versions) {
    if (!Number.isInteger(v) || v < 0 || v > MAX_VERSION) {
      throw new RangeError(`ladder: ${String(v)} is not a version`);
    }
    if (v > t) t = v;
  }
  const absent = fullLadder(t).filter((p) => !listed.has(p.version));
  return sortProbes([
    ...absent.map((p) => ({ version: p.version, included: false })),
    ...versions.map((v) => ({ version: v, included: true })),
  ]);
}
