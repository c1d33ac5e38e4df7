/**
 * Evidence files: what the auditor saves when a check fails, in a form anyone can re-check
 * offline with `keytrail-audit verify-evidence FILE` (or by hand, from this description).
 *
 * `keytrail-audit-evidence/v1` is a JSON object:
 * ```
 * format        "keytrail-audit-evidence/v1"
 * check         the failed check (see findings.ts), epoch (number | null), message
 * attributable  whether the evidence is signed by the directory key (see findings.ts)
 * observedAt    POSIX seconds when the auditor saw it
 * directory     {url, origin, logKey, witnesses, quorum, maxAgeSeconds}: the auditor's trust file
 * notes         checkpoint notes exactly as served (C2SP signed notes)
 * records       [{index, record, proof}]: encoded epoch records (base64) with RFC 9162 inclusion
 *               proofs in the tree of notes[recordsNote]
 * consistency   {from, to, proof, oldRoot?}: an RFC 9162 consistency proof (base64 hashes); for a
 *               fork between two sizes, `oldRoot` is the old tree's real root when the proof
 *               omits it (old size a power of two)
 * frontier      {size, hashes}: the epoch log's compact range at `size` (for log-leaves-mismatch)
 * leaves        encoded epoch records served after `frontier.size` (base64)
 * inserts       base64 of the epoch's inserts exactly as served, label[32]||commitment[32] each
 * priorTree     base64 of the pruned prefix tree of epoch − 1 along the inserted labels
 *               (encoding in partial-tree.ts)
 * witness       the witness vkey concerned (cosignature-timestamp-backwards)
 * ```
 * Verification re-runs the failed check from these artifacts alone, with the directory key from
 * the file or one the checker pins, and says whether the claimed misbehaviour is confirmed.
 * @module
 */
import { createHash } from 'node:crypto';
import {
  bytes,
  checkpoint,
  cosignature,
  epoch as epochRecord,
  merkle,
  note,
  KtError,
} from '@keytrail/core';
import { AuditError } from './errors.ts';
import { CHECKS, type CheckName } from './findings.ts';
import { PartialTree } from './partial-tree.ts';
import { checkDirectoryCheckpoint } from './checkpoint-policy.ts';
import { parseTrustConfig, trustPolicy, type TrustConfig } from './trust.ts';

/** Format tag of evidence files. */
export const EVIDENCE_FORMAT = 'keytrail-audit-evidence/v1';

/** An epoch record with its inclusion proof. */
export interface ProvenRecord {
  readonly index: number;
  readonly record: string;
  readonly proof: readonly string[];
}

/** The evidence file. */
export interface Evidence {
  readonly format: typeof EVIDENCE_FORMAT;
  readonly check: CheckName;
  readonly epoch: number | null;
  readonly message: string;
  readonly attributable: boolean;
  readonly observedAt: number;
  readonly directory: TrustConfig & { readonly url: string };
  readonly notes: readonly string[];
  readonly recordsNote?: number;
  readonly records?: readonly ProvenRecord[];
  readonly consistency?: {
    readonly from: number;
    readonly to: number;
    readonly proof: readonly string[];
    /** The old tree's root as the auditor computed it (needed when `from` is a power of two). */
    readonly oldRoot?: string;
  };
  readonly frontier?: { readonly size: number; readonly hashes: readonly string[] };
  readonly leaves?: readonly string[];
  readonly inserts?: string;
  readonly priorTree?: string;
  readonly witness?: string;
}

/** Outcome of re-checking an evidence file. */
export interface EvidenceVerdict {
  readonly check: CheckName;
  readonly epoch: number | null;
  /** True if the artifacts show the claimed misbehaviour. */
  readonly confirmed: boolean;
  /** True if, in addition, the artifacts are signed by the directory key used. */
  readonly attributable: boolean;
  /** The directory key the notes were checked against. */
  readonly logKey: string;
  /** What was checked, step by step, and the conclusion. */
  readonly steps: readonly string[];
}

class NotConfirmed extends Error {}

function malformed(what: string, cause?: unknown): AuditError {
  return new AuditError('ERR_AUDIT_EVIDENCE_MALFORMED', `evidence: ${what}`, { cause });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function b64(text: string, what: string): Uint8Array {
  try {
    return bytes.fromBase64(text);
  } catch (e) {
    throw malformed(`${what} is not base64`, e);
  }
}

function hashes(list: readonly string[], what: string): Uint8Array[] {
  return list.map((h) => {
    const d = b64(h, what);
    if (d.length !== 32) throw malformed(`${what} has an element that is not 32 bytes`);
    return d;
  });
}

/**
 * Parses an evidence file's text.
 * @throws AuditError `ERR_AUDIT_EVIDENCE_MALFORMED`
 */
export function parseEvidence(text: string): Evidence {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw malformed('not JSON', e);
  }
  if (!isRecord(j) || j.format !== EVIDENCE_FORMAT) throw malformed(`not ${EVIDENCE_FORMAT}`);
  if (typeof j.check !== 'string' || !(j.check in CHECKS)) throw malformed('unknown check');
  if (!(j.epoch === null || isIndex(j.epoch))) throw malformed('"epoch" must be null or an index');
  if (typeof j.message !== 'string' || !isIndex(j.observedAt) || !isStringArray(j.notes)) {
    throw malformed('missing message, observedAt or notes');
  }
  if (!isRecord(j.directory) || typeof j.directory.url !== 'string') {
    throw malformed('missing directory');
  }
  const trust = parseTrustConfig(j.directory);
  if (j.records !== undefined) {
    if (!Array.isArray(j.records) || !isIndex(j.recordsNote)) throw malformed('bad records');
    for (const r of j.records as unknown[]) {
      if (
        !isRecord(r) ||
        !isIndex(r.index) ||
        typeof r.record !== 'string' ||
        !isStringArray(r.proof)
      ) {
        throw malformed('bad record entry');
      }
    }
  }
  const c = j.consistency;
  if (
    c !== undefined &&
    !(
      isRecord(c) &&
      isIndex(c.from) &&
      isIndex(c.to) &&
      isStringArray(c.proof) &&
      (c.oldRoot === undefined || typeof c.oldRoot === 'string')
    )
  ) {
    throw malformed('bad consistency proof');
  }
  const f = j.frontier;
  if (f !== undefined && !(isRecord(f) && isIndex(f.size) && isStringArray(f.hashes))) {
    throw malformed('bad frontier');
  }
  if (j.leaves !== undefined && !isStringArray(j.leaves)) throw malformed('bad leaves');
  for (const k of ['inserts', 'priorTree', 'witness'] as const) {
    if (j[k] !== undefined && typeof j[k] !== 'string') throw malformed(`bad ${k}`);
  }
  return { ...(j as unknown as Evidence), directory: { ...trust, url: j.directory.url } };
}

/** Serialises evidence (stable member order, one member per line at the top level). */
export function formatEvidence(e: Evidence): string {
  return JSON.stringify(e, null, 1) + '\n';
}

/** Sorted-by-label digest of packed inserts, as the epoch record's `inserts_digest` defines. */
export function digestOfPacked(packed: Uint8Array): Uint8Array {
  const n = packed.length / 64;
  const order = Array.from({ length: n }, (_, i) => i);
  order.sort((a, b) => compare32(packed, a * 64, packed, b * 64) || a - b);
  const h = createHash('sha256');
  for (const i of order) h.update(packed.subarray(i * 64, i * 64 + 64));
  return new Uint8Array(h.digest());
}

/** Compares two 32-byte strings inside larger arrays. */
export function compare32(a: Uint8Array, aOff: number, b: Uint8Array, bOff: number): number {
  for (let i = 0; i < 32; i++) {
    const d = (a[aOff + i] ?? 0) - (b[bOff + i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function codeOf(e: unknown): string {
  return e instanceof KtError || e instanceof AuditError ? e.code : String(e);
}

/**
 * Re-checks an evidence file.
 * @param options.logKey a directory key to pin instead of the one in the file.
 * @throws AuditError `ERR_AUDIT_EVIDENCE_MALFORMED` when the file lacks what its check needs.
 */
export function verifyEvidence(ev: Evidence, options: { logKey?: string } = {}): EvidenceVerdict {
  const trust: TrustConfig = parseTrustConfig({
    ...ev.directory,
    logKey: options.logKey ?? ev.directory.logKey,
    origin: ev.directory.origin,
  });
  const policy = trustPolicy(trust);
  const steps: string[] = [];
  const step = (s: string): void => {
    steps.push(s);
  };
  const refute = (s: string): never => {
    throw new NotConfirmed(s);
  };

  const noteAt = (i: number): string => {
    const n = ev.notes[i];
    if (n === undefined) throw malformed(`notes[${i}] is missing`);
    return n;
  };
  /** Opens notes[i] under the directory key only (signature, not policy). */
  const signed = (i: number): checkpoint.Checkpoint => {
    let cp: checkpoint.Checkpoint;
    try {
      cp = checkpoint.parse(note.open(noteAt(i), [policy.log]).text);
    } catch (e) {
      return refute(`notes[${i}] does not verify under the directory key (${codeOf(e)})`);
    }
    step(
      `notes[${i}] is signed by the directory key: ${cp.origin} size ${cp.size} root ${bytes.toBase64(cp.root)}`,
    );
    return cp;
  };
  const records = (): { cp: checkpoint.Checkpoint; list: Map<number, Uint8Array> } => {
    if (ev.records === undefined || ev.recordsNote === undefined) throw malformed('no records');
    const cp = signed(ev.recordsNote);
    const list = new Map<number, Uint8Array>();
    for (const r of ev.records) {
      const rec = b64(r.record, 'record');
      try {
        merkle.verifyInclusion(
          merkle.leafHash(rec),
          r.index,
          cp.size,
          hashes(r.proof, 'proof'),
          cp.root,
        );
      } catch (e) {
        refute(`record ${r.index} is not included in notes[${ev.recordsNote}] (${codeOf(e)})`);
      }
      step(`record ${r.index} is included in the tree of notes[${ev.recordsNote}]`);
      list.set(r.index, rec);
    }
    return { cp, list };
  };
  const decoded = (list: Map<number, Uint8Array>, index: number): epochRecord.EpochRecord => {
    const rec = list.get(index);
    if (rec === undefined) throw malformed(`record ${index} is missing`);
    try {
      return epochRecord.decodeEpochRecord(rec);
    } catch (e) {
      return refute(`record ${index} does not decode (${codeOf(e)})`);
    }
  };

  const run = (): string => {
    switch (ev.check) {
      case 'checkpoint-signature':
      case 'witness-cosignature-invalid':
      case 'witness-quorum':
      case 'checkpoint-stale':
      case 'checkpoint-origin': {
        const v = checkDirectoryCheckpoint(noteAt(0), policy, ev.observedAt);
        if (v.ok) refute('notes[0] is accepted under the trust policy');
        else if (v.problem.check !== ev.check) {
          refute(`notes[0] fails a different check: ${v.problem.check}`);
        } else step(`notes[0] at time ${ev.observedAt}: ${v.problem.message}`);
        return `the checkpoint fails ${ev.check}`;
      }
      case 'checkpoint-fork': {
        const a = signed(0);
        const b = signed(1);
        if (a.origin !== b.origin) refute('the two checkpoints have different origins');
        if (a.size === b.size) {
          if (bytes.equalBytes(a.root, b.root)) refute('the two checkpoints have the same root');
          step('same origin, same size, different roots');
          return 'the directory signed two different trees of the same size (a fork)';
        }
        const [small, big] = a.size < b.size ? [a, b] : [b, a];
        if (!ev.consistency) throw malformed('a fork between two sizes needs a consistency proof');
        const { from, to } = ev.consistency;
        if (from !== small.size || to !== big.size)
          refute('the consistency proof is for other sizes');
        const given = ev.consistency.oldRoot;
        const implied = rootsFromConsistencyProof(
          from,
          to,
          hashes(ev.consistency.proof, 'proof'),
          given === undefined ? undefined : hashes([given], 'oldRoot')[0],
        );
        if (!implied) return refute('the consistency proof is malformed for these sizes');
        if (!bytes.equalBytes(implied.newRoot, big.root)) {
          refute('the consistency proof does not lead to the larger checkpoint root');
        }
        step(`the consistency proof ${from}→${to} leads to the size-${to} root`);
        if (bytes.equalBytes(implied.oldRoot, small.root)) {
          refute('the proof shows the two checkpoints are consistent');
        }
        step(
          `it fixes the size-${from} root to ${bytes.toBase64(implied.oldRoot)}, not the signed one`,
        );
        return 'the directory signed two checkpoints that no append-only log can both satisfy (a fork)';
      }
      case 'checkpoint-rollback': {
        const a = signed(0);
        const b = signed(1);
        if (b.size >= a.size) refute('the later checkpoint is not smaller');
        step(`notes[1] (size ${b.size}) was served after notes[0] (size ${a.size})`);
        return 'the directory served a checkpoint older than one it had published (a rollback)';
      }
      case 'log-consistency': {
        const a = signed(0);
        const b = signed(1);
        if (!ev.consistency) throw malformed('no consistency proof');
        const proof = hashes(ev.consistency.proof, 'proof');
        try {
          merkle.verifyConsistency(a.size, b.size, proof, a.root, b.root);
        } catch (e) {
          step(`the served consistency proof ${a.size}→${b.size} fails (${codeOf(e)})`);
          return 'the directory served no valid consistency proof between its checkpoints';
        }
        return refute('the consistency proof verifies');
      }
      case 'log-leaves-mismatch': {
        if (!ev.frontier || !ev.leaves) throw malformed('no frontier or leaves');
        // notes = [old, new], or [new] alone when nothing had been accepted (frontier size 0).
        const b = signed(ev.notes.length - 1);
        const a = ev.frontier.size === 0 ? null : signed(0);
        if (a !== null && ev.frontier.size !== a.size) {
          refute('the frontier is not at the size of notes[0]');
        }
        let range: merkle.CompactRange;
        try {
          range = merkle.CompactRange.from(
            ev.frontier.size,
            hashes(ev.frontier.hashes, 'frontier'),
          );
        } catch (e) {
          return refute(`the frontier is malformed (${codeOf(e)})`);
        }
        if (a !== null) {
          if (!bytes.equalBytes(range.root(), a.root)) {
            refute('the frontier does not hash to notes[0]');
          }
          step(`the frontier hashes to the root of notes[0] (size ${a.size})`);
        }
        for (const l of ev.leaves) range.append(merkle.leafHash(b64(l, 'leaf')));
        if (range.size !== b.size) refute('the leaves do not reach the new checkpoint size');
        if (bytes.equalBytes(range.root(), b.root)) {
          refute('the leaves hash to the new checkpoint root');
        }
        step(`the ${ev.leaves.length} records served do not hash to the new checkpoint root`);
        return 'the epoch records the directory served are not the ones its checkpoint commits to';
      }
      case 'epoch-record-malformed': {
        const { list } = records();
        const [index] = [...list.keys()];
        if (index === undefined) throw malformed('no record');
        try {
          epochRecord.decodeEpochRecord(list.get(index) as Uint8Array);
        } catch (e) {
          step(`record ${index} does not decode (${codeOf(e)})`);
          return 'the signed log holds a malformed epoch record';
        }
        return refute(`record ${index} decodes`);
      }
      case 'epoch-order': {
        const { list } = records();
        const [index] = [...list.keys()];
        if (index === undefined) throw malformed('no record');
        const rec = decoded(list, index);
        if (rec.epoch === index) refute(`leaf ${index} is the record of epoch ${index}`);
        step(`leaf ${index} is the record of epoch ${rec.epoch}`);
        return 'the signed log holds epoch records out of order';
      }
      case 'timestamp-backwards': {
        const { list } = records();
        const e = ev.epoch;
        if (e === null || e === 0) throw malformed('needs an epoch after 0');
        const prev = decoded(list, e - 1);
        const cur = decoded(list, e);
        if (cur.timestampMs >= prev.timestampMs) refute('the timestamps do not go backwards');
        step(`epoch ${e - 1} at ${prev.timestampMs} ms, epoch ${e} at ${cur.timestampMs} ms`);
        return 'the signed log has an epoch timestamp going backwards';
      }
      case 'cosignature-timestamp-backwards': {
        if (ev.witness === undefined) throw malformed('no witness');
        const w = cosignature.parseVerifierKey(ev.witness);
        const stamp = (i: number): { size: number; ts: number } => {
          const cp = signed(i);
          const body = note.parse(noteAt(i));
          const sig = body.signatures.find((s) => s.name === w.name && s.keyId === w.keyId);
          if (!sig) return refute(`notes[${i}] has no cosignature from ${w.name}`);
          let ts: number;
          try {
            ts = cosignature.verify(body.text, sig, w).timestamp;
          } catch (e) {
            return refute(`the cosignature of ${w.name} on notes[${i}] fails (${codeOf(e)})`);
          }
          step(`${w.name} cosigned size ${cp.size} at ${ts}`);
          return { size: cp.size, ts };
        };
        const a = stamp(0);
        const b = stamp(1);
        if (!(b.size > a.size && b.ts < a.ts)) refute('the cosignatures are in order');
        return `witness ${w.name} cosigned a larger tree with an earlier timestamp`;
      }
      case 'insert-count-mismatch':
      case 'inserts-digest-mismatch':
      case 'inserts-unsorted':
      case 'duplicate-label':
      case 'leaf-rewritten':
      case 'prefix-root-mismatch':
        return replayCheck();
    }
  };

  const replayCheck = (): string => {
    const e = ev.epoch;
    if (e === null) throw malformed('no epoch');
    if (ev.inserts === undefined) throw malformed('no inserts');
    const packed = b64(ev.inserts, 'inserts');
    if (packed.length % 64 !== 0) throw malformed('inserts are not 64-byte entries');
    const n = packed.length / 64;
    const { list } = records();
    const rec = decoded(list, e);
    step(`epoch ${e}'s inserts as served: ${n}`);
    if (n !== rec.insertCount) {
      if (ev.check === 'insert-count-mismatch') {
        step(`the record commits to insert_count ${rec.insertCount}`);
        return 'the inserts served do not match the signed insert count';
      }
      refute(`the served inserts (${n}) are not the ${rec.insertCount} the record commits to`);
    }
    const digest = digestOfPacked(packed);
    if (!bytes.equalBytes(digest, rec.insertsDigest)) {
      if (ev.check === 'inserts-digest-mismatch') {
        step(
          `their digest ${bytes.toBase64(digest)} is not the record's ${bytes.toBase64(rec.insertsDigest)}`,
        );
        return 'the inserts served are not the ones the signed record commits to';
      }
      refute("the served inserts do not match the record's inserts_digest");
    }
    step("they match the record's insert_count and inserts_digest (so the record commits to them)");
    for (let i = 1; i < n; i++) {
      if (compare32(packed, (i - 1) * 64, packed, i * 64) > 0) {
        if (ev.check === 'inserts-unsorted') {
          step(`insert ${i} sorts before insert ${i - 1}`);
          return 'the inserts are not sorted by label';
        }
        refute('the inserts are not sorted');
      }
    }
    let prior: PartialTree;
    if (e === 0) {
      prior = PartialTree.empty();
      step('epoch 0 starts from the empty tree');
    } else {
      const prev = decoded(list, e - 1);
      if (ev.priorTree === undefined) throw malformed('no prior tree');
      prior = PartialTree.decode(b64(ev.priorTree, 'priorTree'));
      if (!bytes.equalBytes(prior.root(), prev.prefixRoot)) {
        refute(`the pruned tree does not hash to epoch ${e - 1}'s prefix root`);
      }
      step(`the pruned tree hashes to epoch ${e - 1}'s signed prefix root`);
    }
    const before = new Map<string, Uint8Array | null>();
    for (let i = 0; i < n; i++) {
      const key = packed.subarray(i * 64, i * 64 + 32);
      const id = bytes.toHex(key);
      if (!before.has(id)) before.set(id, prior.get(key));
    }
    for (let i = 0; i < n; i++) {
      const key = packed.subarray(i * 64, i * 64 + 32);
      const commitment = packed.subarray(i * 64 + 32, i * 64 + 64);
      const r = prior.insert(key, commitment);
      if (r.kind === 'inserted') continue;
      const old = before.get(bytes.toHex(key)) ?? null;
      const rewritten = old !== null && !bytes.equalBytes(old, commitment);
      const found: CheckName = rewritten ? 'leaf-rewritten' : 'duplicate-label';
      if (found !== ev.check) refute(`the replay fails ${found} instead`);
      step(
        old === null
          ? `label ${bytes.toHex(key)} is inserted twice in epoch ${e}`
          : rewritten
            ? `label ${bytes.toHex(key)} already maps to another commitment before epoch ${e}`
            : `label ${bytes.toHex(key)} was already inserted before epoch ${e}`,
      );
      return rewritten
        ? 'a batch changes an existing leaf (the akd #495 batch-insertion bypass)'
        : 'a label is inserted twice';
    }
    const root = prior.root();
    if (bytes.equalBytes(root, rec.prefixRoot)) refute('the replay gives the committed root');
    if (ev.check !== 'prefix-root-mismatch')
      refute('the replay fails prefix-root-mismatch instead');
    step(
      `the replay gives ${bytes.toBase64(root)}, the record commits to ${bytes.toBase64(rec.prefixRoot)}`,
    );
    return "the epoch's inserts do not give its committed prefix root";
  };

  let confirmed: boolean;
  try {
    steps.push(`conclusion: ${run()}`);
    confirmed = true;
  } catch (e) {
    if (!(e instanceof NotConfirmed)) throw e;
    steps.push(`not confirmed: ${e.message}`);
    confirmed = false;
  }
  return {
    check: ev.check,
    epoch: ev.epoch,
    confirmed,
    attributable: confirmed && CHECKS[ev.check].attributable,
    logKey: trust.logKey,
    steps,
  };
}

/**
 * The two roots an RFC 9162 consistency proof fixes: §2.1.4.2 run without the final comparison,
 * returning `fr` (the old tree's root) and `sr` (the new tree's root). When `oldSize` is a power
 * of two the old root is itself the first hash of the path and the proof omits it, so the caller
 * supplies it as `oldRoot`. Null if the proof has the wrong shape for the sizes.
 */
export function rootsFromConsistencyProof(
  oldSize: number,
  newSize: number,
  proof: readonly Uint8Array[],
  oldRoot?: Uint8Array,
): { oldRoot: Uint8Array; newRoot: Uint8Array } | null {
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize)) return null;
  if (oldSize < 1 || oldSize >= newSize || proof.length === 0) return null;
  let p2 = oldSize;
  while (p2 % 2 === 0) p2 /= 2;
  const path = [...proof];
  if (p2 === 1) {
    if (oldRoot === undefined) return null;
    path.unshift(oldRoot);
  }
  const half = (n: number): number => (n - (n % 2)) / 2;
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0] as Uint8Array;
  let sr = fr;
  for (const c of path.slice(1)) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      fr = merkle.nodeHash(c, fr);
      sr = merkle.nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = merkle.nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) return null;
  return { oldRoot: fr, newRoot: sr };
}
