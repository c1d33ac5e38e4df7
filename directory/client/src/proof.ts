/**
 * Keytrail's lookup and owner-history proofs: one binary structure each (base64 in JSON), built
 * by the directory and checked here, so prover and verifier share one code path.
 *
 * ```
 * struct {
 *   uint8  format = 1;
 *   opaque epoch_record[85];                 // the EpochRecord of the checkpoint's last epoch
 *   uint32 version_plus_one;                 // greatest version t + 1; 0: no version
 *   opaque vrf_proofs[n][80];                // one per probe, probes sorted by version
 *   opaque commitments[m][32];               // per present probe but the greatest, in order
 *   opaque opening[16];                      // the greatest version's opening (t ≥ 0 only);
 *                                            // its commitment is recomputed (KEYTRANS)
 *   PrefixProof prefix;                      // core prefixTree wire format, n searches
 *   opaque log_inclusion<0..2^8-1>;          // 32-byte hashes: the record's RFC 9162 inclusion
 * } LookupProof;                             // probes: lookupProbes(t), see ladder.ts
 *
 * struct {
 *   uint32 version; uint64 epoch; opaque opening[16]; opaque value<0..2^32-1>;
 * } HistoryEntry;
 * struct {
 *   uint8  format = 2;
 *   opaque epoch_record[85];
 *   HistoryEntry entries<0..2^32-1>;         // sorted by version, distinct, ≤ 100,000
 *   opaque vrf_proofs[n][80];                // probes: historyProbes(entries' versions)
 *   uint16 batch_count;                      // exactly ⌈n / 255⌉
 *   PrefixProof prefix[batch_count];         // batch i: probes [255·i, min(255·i + 255, n)),
 *                                            // each against the record's prefix root
 *   opaque log_inclusion<0..2^8-1>;
 * } HistoryProof;
 * ```
 * A `PrefixProof` counts its results in one byte (KEYTRANS as katie encodes it), so an owner
 * history, which has one probe per version, is split into batches of at most 255 probes, each
 * its own batch proof against the one root. Format 1 (a single `PrefixProof`) is not accepted.
 * The value (the device list) travels next to the proof; the checkpoint note too.
 * @module
 */
import {
  encoding,
  epoch as epochRecord,
  vrf,
  commitment as commitments,
  merkle,
  bytes,
  prefixTree,
  KtError,
  type epoch,
} from '@keytrail/core';
import { ClientError, MalformedResponseError, ProofError } from './errors.ts';
import { lookupProbes, historyProbes, type Probe, MAX_VERSION } from './ladder.ts';

type BatchPrefixProof = prefixTree.PrefixProof;

/** Format byte of lookup proofs. */
export const PROOF_FORMAT = 1;
/** Format byte of owner-history proofs: 2, split into prefix-proof batches. */
export const HISTORY_PROOF_FORMAT = 2;
/** Probes per prefix proof of a history: `PrefixProof` counts its results in a uint8. */
export const HISTORY_BATCH_PROBES = 255;
/**
 * Most versions one history proof may list. Decoders refuse more, so a directory must not
 * send more (the server answers 422 `ERR_HISTORY_TOO_LONG`). It bounds the work an answer can
 * demand: with at most 65 absent ladder probes, ⌈(100,000 + 65) / 255⌉ = 393 batches, far below
 * the uint16 batch count.
 */
export const MAX_HISTORY_VERSIONS = 100_000;
const VRF_PROOF_SIZE = 80;
const OPENING_SIZE = 16;
/** Largest value (an encoded device list) a proof may carry. */
export const MAX_VALUE: number = 1 << 20;

/** A decoded lookup proof. */
export interface LookupProof {
  readonly record: epoch.EpochRecord;
  /** Greatest version, -1 when the account has none. */
  readonly version: number;
  readonly vrfProofs: readonly Uint8Array[];
  readonly commitments: readonly Uint8Array[];
  readonly opening: Uint8Array | undefined;
  readonly prefix: BatchPrefixProof;
  readonly logInclusion: readonly Uint8Array[];
}

/** One version in an owner's history. */
export interface HistoryEntry {
  readonly version: number;
  /** The epoch the directory says the version was published in (informational). */
  readonly epoch: number;
  readonly opening: Uint8Array;
  readonly value: Uint8Array;
}

/** A decoded owner-history proof. */
export interface HistoryProof {
  readonly record: epoch.EpochRecord;
  readonly entries: readonly HistoryEntry[];
  readonly vrfProofs: readonly Uint8Array[];
  /**
   * One batch prefix proof per {@link HISTORY_BATCH_PROBES} probes, in probe order, each
   * against the record's prefix root: see {@link historyBatches}.
   */
  readonly prefixes: readonly BatchPrefixProof[];
  readonly logInclusion: readonly Uint8Array[];
}

/**
 * Splits a history's probes (or anything in probe order: search keys, VRF proofs) into the
 * batches its proof carries, {@link HISTORY_BATCH_PROBES} each, the last one shorter.
 * @example
 * ```ts
 * const prefixes = historyBatches(keys).map((batch) => tree.proveMany(batch));
 * ```
 */
export function historyBatches<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += HISTORY_BATCH_PROBES) {
    out.push(items.slice(i, i + HISTORY_BATCH_PROBES));
  }
  return out;
}

function writeLog(w: encoding.Writer, log: readonly Uint8Array[]): void {
  w.u8(log.length);
  for (const h of log) w.fixed(h, 32);
}

function writeTail(w: encoding.Writer, prefix: BatchPrefixProof, log: readonly Uint8Array[]): void {
  prefixTree.writeProof(w, prefix);
  writeLog(w, log);
}

function readLog(r: encoding.Reader): Uint8Array[] {
  const n = r.u8();
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) out.push(r.fixed(32));
  return out;
}

/** Encodes a lookup proof. @throws RangeError on inconsistent input. */
export function encodeLookupProof(p: LookupProof): Uint8Array {
  const probes = lookupProbes(p.version);
  const present = probes.filter((x) => x.included && x.version !== p.version).length;
  if (p.vrfProofs.length !== probes.length || p.commitments.length !== present) {
    throw new RangeError('encodeLookupProof: wrong number of VRF proofs or commitments');
  }
  if (p.version >= 0 !== (p.opening !== undefined)) {
    throw new RangeError('encodeLookupProof: an opening goes with a version');
  }
  const w = new encoding.Writer();
  w.u8(PROOF_FORMAT)
    .bytes(epochRecord.encodeEpochRecord(p.record))
    .u32(p.version + 1);
  for (const v of p.vrfProofs) w.fixed(v, VRF_PROOF_SIZE);
  for (const c of p.commitments) w.fixed(c, 32);
  if (p.opening) w.fixed(p.opening, OPENING_SIZE);
  writeTail(w, p.prefix, p.logInclusion);
  return w.finish();
}

function malformed(message: string, cause?: unknown): MalformedResponseError {
  return new MalformedResponseError(
    'ERR_RESPONSE_MALFORMED',
    message,
    cause === undefined ? {} : { cause },
  );
}

function decoding<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ClientError) throw err;
    if (err instanceof KtError) throw malformed('proof does not decode', err);
    throw err;
  }
}

/** Decodes a lookup proof strictly. @throws MalformedResponseError `ERR_RESPONSE_MALFORMED` */
export function decodeLookupProof(data: Uint8Array): LookupProof {
  return decoding(() => {
    const r = new encoding.Reader(data);
    if (r.u8() !== PROOF_FORMAT) throw malformed('unknown proof format');
    const record = epochRecord.decodeEpochRecord(r.fixed(epochRecord.EPOCH_RECORD_SIZE));
    const version = r.u32() - 1;
    if (version > MAX_VERSION) throw malformed('version out of range');
    const probes = lookupProbes(version);
    const vrfProofs = probes.map(() => r.fixed(VRF_PROOF_SIZE));
    const commitmentList = probes
      .filter((p) => p.included && p.version !== version)
      .map(() => r.fixed(32));
    const opening = version >= 0 ? r.fixed(OPENING_SIZE) : undefined;
    const prefix = prefixTree.readProof(r);
    if (prefix.results.length !== probes.length) throw malformed('wrong number of prefix results');
    const logInclusion = readLog(r);
    r.end();
    return {
      record,
      version,
      vrfProofs,
      commitments: commitmentList,
      opening,
      prefix,
      logInclusion,
    };
  });
}

/**
 * Encodes an owner-history proof.
 * @throws RangeError on inconsistent input: more than {@link MAX_HISTORY_VERSIONS} entries,
 *   versions not sorted and distinct, or VRF proofs or prefix batches that do not match the
 *   probes (one batch per {@link HISTORY_BATCH_PROBES}, each with one result per probe).
 */
export function encodeHistoryProof(p: HistoryProof): Uint8Array {
  if (p.entries.length > MAX_HISTORY_VERSIONS) {
    throw new RangeError(`encodeHistoryProof: more than ${String(MAX_HISTORY_VERSIONS)} versions`);
  }
  p.entries.forEach((e, i) => {
    const prev = p.entries[i - 1];
    if (prev !== undefined && prev.version >= e.version) {
      throw new RangeError('encodeHistoryProof: versions must be sorted and distinct');
    }
  });
  const probes = historyProbes(p.entries.map((e) => e.version));
  if (p.vrfProofs.length !== probes.length)
    throw new RangeError('encodeHistoryProof: wrong number of VRF proofs');
  const batches = historyBatches(probes);
  if (
    p.prefixes.length !== batches.length ||
    batches.some((b, i) => p.prefixes[i]?.results.length !== b.length)
  ) {
    throw new RangeError('encodeHistoryProof: prefix proofs do not match the probe batches');
  }
  const w = new encoding.Writer();
  w.u8(HISTORY_PROOF_FORMAT).bytes(epochRecord.encodeEpochRecord(p.record)).u32(p.entries.length);
  for (const e of p.entries) {
    w.u32(e.version).u64(e.epoch).fixed(e.opening, OPENING_SIZE).opaque32(e.value);
  }
  for (const v of p.vrfProofs) w.fixed(v, VRF_PROOF_SIZE);
  w.u16(p.prefixes.length);
  for (const prefix of p.prefixes) prefixTree.writeProof(w, prefix);
  writeLog(w, p.logInclusion);
  return w.finish();
}

/** Decodes an owner-history proof strictly. @throws MalformedResponseError `ERR_RESPONSE_MALFORMED` */
export function decodeHistoryProof(data: Uint8Array): HistoryProof {
  return decoding(() => {
    const r = new encoding.Reader(data);
    if (r.u8() !== HISTORY_PROOF_FORMAT) throw malformed('unknown history proof format');
    const record = epochRecord.decodeEpochRecord(r.fixed(epochRecord.EPOCH_RECORD_SIZE));
    const count = r.u32();
    if (count > MAX_HISTORY_VERSIONS) throw malformed('too many versions');
    const entries: HistoryEntry[] = [];
    for (let i = 0; i < count; i++) {
      const version = r.u32();
      if (version > MAX_VERSION) throw malformed('version out of range');
      const prev = entries[entries.length - 1];
      if (prev !== undefined && prev.version >= version)
        throw malformed('versions must be sorted and distinct');
      entries.push({
        version,
        epoch: r.u64Number(),
        opening: r.fixed(OPENING_SIZE),
        value: r.opaque32({ max: MAX_VALUE }),
      });
    }
    const probes = historyProbes(entries.map((e) => e.version));
    const vrfProofs = probes.map(() => r.fixed(VRF_PROOF_SIZE));
    // The batch layout follows from the probes; the count is checked before any batch is read.
    const batches = historyBatches(probes);
    if (r.u16() !== batches.length) throw malformed('wrong number of prefix proof batches');
    const prefixes = batches.map((batch) => {
      const prefix = prefixTree.readProof(r);
      if (prefix.results.length !== batch.length) throw malformed('wrong number of prefix results');
      return prefix;
    });
    const logInclusion = readLog(r);
    r.end();
    return { record, entries, vrfProofs, prefixes, logInclusion };
  });
}

/** What the proofs are checked against: the verified checkpoint and the directory's VRF key. */
export interface ProofContext {
  readonly vrfPublicKey: Uint8Array;
  /** The account's KEYTRANS label (account.ts). */
  readonly label: Uint8Array;
  /** Tree size and root of the verified checkpoint. */
  readonly size: number;
  readonly root: Uint8Array;
}

/**
 * Verifies the VRF proofs of `probes` and returns their search keys.
 * @throws ProofError `ERR_VRF_PROOF`
 */
export function verifyVrfProofs(
  ctx: ProofContext,
  probes: readonly Probe[],
  proofs: readonly Uint8Array[],
): Uint8Array[] {
  return probes.map((p, i) => {
    try {
      const beta = vrf.verify(
        ctx.vrfPublicKey,
        vrf.vrfInput(ctx.label, p.version),
        proofs[i] as Uint8Array,
      );
      return beta.slice(0, vrf.KT_OUTPUT_SIZE);
    } catch (err) {
      if (err instanceof KtError) {
        throw new ProofError('ERR_VRF_PROOF', `VRF proof of version ${p.version} does not verify`, {
          cause: err,
        });
      }
      throw err;
    }
  });
}

function checkLadder(
  probes: readonly Probe[],
  results: readonly prefixTree.PrefixSearchResult[],
): void {
  probes.forEach((p, i) => {
    const found = results[i]?.type === 'inclusion';
    if (found !== p.included) {
      throw new ProofError(
        'ERR_LADDER',
        `version ${p.version} must be ${p.included ? 'present' : 'absent'} for the claimed greatest version`,
      );
    }
  });
}

/**
 * Checks that a batch prefix proof leads to the record's root for these searches.
 * @throws ProofError `ERR_PREFIX_PROOF`
 */
function verifyPrefix(
  keys: readonly Uint8Array[],
  prefix: BatchPrefixProof,
  leafCommitments: readonly (Uint8Array | undefined)[],
  record: epoch.EpochRecord,
  what: string,
): void {
  const searches = keys.map((key, i) => {
    const c = leafCommitments[i];
    return c === undefined ? { key } : { key, commitment: c };
  });
  let root: Uint8Array;
  try {
    root = prefixTree.evaluate(searches, prefix);
  } catch (err) {
    if (err instanceof KtError) {
      throw new ProofError('ERR_PREFIX_PROOF', `${what} does not hold`, { cause: err });
    }
    throw err;
  }
  if (!bytes.equalBytes(root, record.prefixRoot)) {
    throw new ProofError('ERR_PREFIX_PROOF', `${what} does not lead to the epoch record root`);
  }
}

/**
 * Checks the record's inclusion as the last leaf of the checkpoint's tree (an older record
 * would serve a stale value).
 * @throws ProofError `ERR_LOG_INCLUSION`
 */
function verifyRecord(
  ctx: ProofContext,
  record: epoch.EpochRecord,
  logInclusion: readonly Uint8Array[],
): void {
  // The record must be the checkpoint's newest epoch: an older one would serve a stale value.
  if (record.epoch !== ctx.size - 1) {
    throw new ProofError(
      'ERR_LOG_INCLUSION',
      "the epoch record is not the checkpoint's newest epoch",
    );
  }
  try {
    merkle.verifyInclusion(
      merkle.leafHash(epochRecord.encodeEpochRecord(record)),
      record.epoch,
      ctx.size,
      [...logInclusion],
      ctx.root,
    );
  } catch (err) {
    if (err instanceof KtError) {
      throw new ProofError('ERR_LOG_INCLUSION', "the epoch record is not in the checkpoint's log", {
        cause: err,
      });
    }
    throw err;
  }
}

/**
 * Verifies a lookup proof for `value` against a verified checkpoint.
 * @returns the greatest version (-1: the account has none) and the epoch record.
 * @throws ProofError `ERR_VRF_PROOF`, `ERR_LADDER`, `ERR_PREFIX_PROOF` (also for a value or
 *   opening that does not match the tree), `ERR_LOG_INCLUSION`; MalformedResponseError when a
 *   value is missing or unexpected.
 */
export function verifyLookupProof(
  ctx: ProofContext,
  proof: LookupProof,
  value: Uint8Array | undefined,
): void {
  const probes = lookupProbes(proof.version);
  if (
    proof.version >= 0 !== (value !== undefined) ||
    (value !== undefined) !== (proof.opening !== undefined)
  ) {
    throw malformed('a value goes with a version');
  }
  const keys = verifyVrfProofs(ctx, probes, proof.vrfProofs);
  checkLadder(probes, proof.prefix.results);
  // The greatest version's commitment is recomputed from its opening and the value, so the
  // value is bound by the prefix tree itself (KEYTRANS sends no target commitment either).
  const leafCommitments: (Uint8Array | undefined)[] = [];
  let ci = 0;
  for (const p of probes) {
    if (!p.included) leafCommitments.push(undefined);
    else if (p.version === proof.version && value !== undefined && proof.opening !== undefined) {
      leafCommitments.push(commitments.commit(proof.opening, ctx.label, p.version, value));
    } else leafCommitments.push(proof.commitments[ci++]);
  }
  verifyPrefix(keys, proof.prefix, leafCommitments, proof.record, 'prefix proof');
  verifyRecord(ctx, proof.record, proof.logInclusion);
}

/**
 * Verifies an owner-history proof: every listed version is present with its value, and the
 * versions of the full ladder of the greatest one that are not listed are absent. Each batch of
 * {@link HISTORY_BATCH_PROBES} probes has its own prefix proof, and every one of them must lead
 * to the record's prefix root.
 * @throws ProofError `ERR_VRF_PROOF`, `ERR_LADDER`, `ERR_PREFIX_PROOF`, `ERR_LOG_INCLUSION`;
 *   MalformedResponseError `ERR_RESPONSE_MALFORMED` if the batches do not match the probes (a
 *   proof that did not come from {@link decodeHistoryProof}).
 */
export function verifyHistoryProof(ctx: ProofContext, proof: HistoryProof): void {
  const probes = historyProbes(proof.entries.map((e) => e.version));
  const batches = historyBatches(probes);
  if (
    proof.prefixes.length !== batches.length ||
    batches.some((b, i) => proof.prefixes[i]?.results.length !== b.length)
  ) {
    throw malformed('prefix proof batches do not match the probes');
  }
  const keys = verifyVrfProofs(ctx, probes, proof.vrfProofs);
  checkLadder(
    probes,
    proof.prefixes.flatMap((prefix) => prefix.results),
  );
  const byVersion = new Map(proof.entries.map((e) => [e.version, e]));
  const leafCommitments = probes.map((p) => {
    const e = byVersion.get(p.version);
    return p.included && e
      ? commitments.commit(e.opening, ctx.label, e.version, e.value)
      : undefined;
  });
  const keyBatches = historyBatches(keys);
  const commitmentBatches = historyBatches(leafCommitments);
  // Every batch against the one root: together they are one proof of all the probes.
  proof.prefixes.forEach((prefix, i) => {
    verifyPrefix(
      keyBatches[i] ?? [],
      prefix,
      commitmentBatches[i] ?? [],
      proof.record,
      `prefix proof batch ${String(i)}`,
    );
  });
  verifyRecord(ctx, proof.record, proof.logInclusion);
}
