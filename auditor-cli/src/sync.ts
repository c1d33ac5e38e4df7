/**
 * `keytrail-audit sync`: incremental audit of the directory's epoch log (ARCHITECTURE.md
 * §Protocol 9; the Directory HTTP API of CONTRACT.md).
 *
 * One run:
 * 1. rebuilds the replayed prefix tree from the stored inserts and checks it against the last
 *    committed prefix root (local state is never trusted blindly);
 * 2. fetches the latest checkpoint and accepts it only if the directory signed it, its origin is
 *    the pinned one and a quorum of trusted witnesses cosigned it recently (C2SP
 *    tlog-checkpoint / tlog-cosignature);
 * 3. compares it with what was accepted before: a smaller size is a rollback or a fork, the same
 *    size with another root is a fork, a larger size needs a valid RFC 9162 consistency proof;
 * 4. downloads the new epoch records and checks that they hash to the signed root. Every record
 *    accepted so far hashes, with these, to the new root, so the new checkpoint is consistent
 *    with *every* checkpoint accepted before (each was checked against a prefix of the same
 *    records). Records must decode, leaf i must be epoch i, timestamps must not go backwards;
 * 5. replays each new epoch: streams its inserts (sorted by label), checks their count and
 *    digest against the record, refuses any label already in the tree — a duplicate, or an
 *    existing leaf rewritten (the akd #495 batch-insertion bypass) — and checks that the
 *    replayed tree's root is exactly the record's prefix root.
 *
 * The first failed check stops the run with a {@link MisbehaviourError}; its evidence is saved
 * (see `evidence.ts`) and the state stays at the last verified epoch, so every later run finds
 * the same misbehaviour again. Progress is committed atomically at least once a second and on
 * interruption, so a killed sync resumes where it stopped.
 *
 * Epochs whose record says `insert_count = 0` are checked without a request (digest of nothing,
 * root unchanged): an idle directory may publish many of them.
 * @module
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { bytes, checkpoint, epoch as epochRecord, merkle, note, KtError } from '@keytrail/core';
import { AuditError, MisbehaviourError } from './errors.ts';
import { CHECKS, type CheckName, type Finding } from './findings.ts';
import { checkDirectoryCheckpoint, type AcceptedCheckpoint } from './checkpoint-policy.ts';
import {
  INSERT_SIZE,
  MAX_INSERTS_PER_REQUEST,
  MAX_LEAVES_PER_REQUEST,
  type DirectorySource,
  type InsertsPage,
} from './directory-source.ts';
import {
  compare32,
  digestOfPacked,
  EVIDENCE_FORMAT,
  formatEvidence,
  type Evidence,
  type ProvenRecord,
} from './evidence.ts';
import { ReplayTree } from './replay-tree.ts';
import { HashPool } from './hash-pool.ts';
import { SILENT_PROGRESS, type Progress } from './progress.ts';
import type { StateStore, AuditState } from './state-store.ts';
import { trustPolicy, type TrustPolicy } from './trust.ts';

/** Options of {@link sync}. */
export interface SyncOptions {
  /** The opened (locked) state directory. */
  readonly store: StateStore;
  /** Where to read the directory from. */
  readonly source: DirectorySource;
  /** Current POSIX time in seconds (default: the system clock). */
  readonly now?: () => number;
  /** Progress sink (default: silent). */
  readonly progress?: Progress;
  /** Aborts between epochs; progress is committed first. */
  readonly signal?: AbortSignal;
  /** Longest time between two commits during replay, in ms (default 1000). */
  readonly commitIntervalMs?: number;
  /** Inserts per request (default and maximum 10,000). */
  readonly insertsPerRequest?: number;
  /**
   * Hashing worker threads for large replays (default: one per extra CPU core, at most 3;
   * 0 hashes on the main thread only). They start only when the replay ahead holds at least
   * {@link PARALLEL_MIN_INSERTS} inserts.
   */
  readonly threads?: number;
  /** Fewest inserts ahead for which the workers start (default {@link PARALLEL_MIN_INSERTS}). */
  readonly parallelMinInserts?: number;
}

/** Fewest inserts to replay (or rebuild) for which hashing workers are started. */
export const PARALLEL_MIN_INSERTS = 50_000;

/** The default number of hashing workers: one per extra core, at most 3. */
export function defaultThreads(): number {
  return Math.max(0, Math.min(3, availableParallelism() - 1));
}

/** What a successful sync verified. */
export interface SyncReport {
  readonly origin: string;
  /** Size of the accepted checkpoint (the number of epochs). */
  readonly size: number;
  /** Root of the accepted checkpoint (base64). */
  readonly root: string;
  /** Whether this run accepted a new checkpoint. */
  readonly newCheckpoint: boolean;
  /** Witnesses counted towards the quorum of the latest checkpoint. */
  readonly cosigners: readonly { readonly name: string; readonly timestamp: number }[];
  /** Epochs replayed by this run. */
  readonly epochsReplayed: number;
  /** Inserts replayed by this run. */
  readonly insertsReplayed: number;
  /** Epochs replayed overall. */
  readonly totalEpochs: number;
  /** Inserts replayed overall (leaves of the prefix tree). */
  readonly totalInserts: number;
  /** Prefix root after the last replayed epoch (base64). */
  readonly prefixRoot: string | null;
}

const EMPTY_DIGEST = new Uint8Array(createHash('sha256').digest());
const LEAVES_BUFFER_BYTES = 4 * 1024 * 1024;

function codeOf(e: unknown): string {
  return e instanceof KtError || e instanceof AuditError ? e.code : String(e);
}

/** The checkpoint body of a note accepted earlier (its signature was checked then). */
function bodyOf(noteText: string): checkpoint.Checkpoint {
  return checkpoint.parse(note.parse(noteText).text);
}

/** Runs one sync. @throws MisbehaviourError, AuditError */
export async function sync(options: SyncOptions): Promise<SyncReport> {
  return new SyncRun(options).run();
}

/** Rebuilds the replayed prefix tree from the committed inserts and checks its root. */
export async function loadReplayTree(
  store: StateStore,
  leaves = store.state.leaves,
  pool?: HashPool,
  progress: Progress = SILENT_PROGRESS,
): Promise<ReplayTree> {
  const tree = new ReplayTree(Math.max(1024, leaves), pool ? { pool } : {});
  let inserted = 0;
  progress.start('rebuild', leaves);
  await store.forEachLeavesChunk(
    (packed) => {
      for (let off = 0; off < packed.length; off += INSERT_SIZE) {
        if (tree.insert(packed, off) !== -1) {
          throw new AuditError('ERR_AUDIT_STATE_CORRUPT', 'leaves.bin holds a label twice');
        }
      }
      inserted += packed.length / INSERT_SIZE;
      progress.update(inserted);
    },
    65536,
    leaves,
  );
  progress.stop();
  if (inserted !== leaves) throw new AuditError('ERR_AUDIT_STATE_CORRUPT', 'leaves.bin is short');
  return tree;
}

class SyncRun {
  readonly #o: SyncOptions;
  readonly #store: StateStore;
  readonly #policy: TrustPolicy;
  readonly #progress: Progress;
  readonly #now: () => number;
  #epochsReplayed = 0;
  #insertsReplayed = 0;
  #cosigners: readonly { name: string; timestamp: number }[] = [];

  constructor(options: SyncOptions) {
    this.#o = options;
    this.#store = options.store;
    this.#policy = trustPolicy(options.store.config.trust);
    this.#progress = options.progress ?? SILENT_PROGRESS;
    this.#now = options.now ?? ((): number => Math.floor(Date.now() / 1000));
  }

  get #state(): AuditState {
    return this.#store.state;
  }

  async run(): Promise<SyncReport> {
    const threads = this.#o.threads ?? defaultThreads();
    const minInserts = this.#o.parallelMinInserts ?? PARALLEL_MIN_INSERTS;
    let pool: HashPool | undefined;
    try {
      if (threads > 0 && this.#state.leaves >= minInserts) {
        pool = await HashPool.start(threads);
      }
      return await this.#run(pool, async () => {
        // A large replay ahead (a first sync, a long absence): share the hashing from here on.
        if (pool || threads === 0) return;
        if ((await this.#insertsAhead()) < minInserts) return;
        pool = await HashPool.start(threads);
        return pool;
      });
    } finally {
      await pool?.close();
    }
  }

  /** Inserts committed to by the accepted records that are not replayed yet. */
  async #insertsAhead(): Promise<number> {
    let n = 0;
    const { replayed, records } = this.#state;
    for (let e = replayed; e < records; e += 65536) {
      for (const r of await this.#store.readRecords(e, Math.min(records, e + 65536))) {
        // insert_count is the uint32 at bytes 49..53 of an 85-byte record; a record that does
        // not decode fails later, where it is reported.
        n += r.length === 85 ? new DataView(r.buffer, r.byteOffset, r.length).getUint32(49) : 0;
      }
    }
    return n;
  }

  async #run(
    pool: HashPool | undefined,
    poolForReplay: () => Promise<HashPool | undefined>,
  ): Promise<SyncReport> {
    const tree = await loadReplayTree(this.#store, this.#state.leaves, pool, this.#progress);
    const committedRoot = this.#state.prefixRoot;
    if (committedRoot !== null && bytes.toBase64(tree.root()) !== committedRoot) {
      throw new AuditError(
        'ERR_AUDIT_STATE_CORRUPT',
        'the stored inserts do not rebuild the committed prefix root',
      );
    }
    const noteText = await this.#o.source.checkpoint();
    const verdict = checkDirectoryCheckpoint(noteText, this.#policy, this.#now());
    if (!verdict.ok) {
      return this.#finding(
        verdict.problem.check,
        null,
        verdict.problem.message,
        { notes: [noteText] },
        safeSize(noteText),
      );
    }
    let newCheckpoint = false;
    const cp = verdict.accepted.checkpoint;
    this.#cosigners = verdict.accepted.cosigners.map(({ name, timestamp }) => ({
      name,
      timestamp,
    }));
    const prevNote = this.#state.checkpoint;
    if (prevNote === null) {
      await this.#accept(verdict.accepted, null);
      newCheckpoint = true;
    } else {
      const prev = bodyOf(prevNote);
      if (cp.size < prev.size) {
        return this.#smaller(noteText, cp, prevNote, prev);
      } else if (cp.size === prev.size) {
        if (!bytes.equalBytes(cp.root, prev.root)) {
          return this.#finding(
            'checkpoint-fork',
            null,
            `two signed checkpoints of size ${cp.size} have different roots`,
            { notes: [prevNote, noteText] },
            cp.size,
          );
        }
      } else {
        await this.#accept(verdict.accepted, { note: prevNote, cp: prev });
        newCheckpoint = true;
      }
    }
    const late = await poolForReplay();
    if (late) tree.attachPool(late);
    await this.#replay(tree);
    const accepted = bodyOf(this.#state.checkpoint ?? noteText);
    return {
      origin: accepted.origin,
      size: accepted.size,
      root: bytes.toBase64(accepted.root),
      newCheckpoint,
      cosigners: this.#cosigners,
      epochsReplayed: this.#epochsReplayed,
      insertsReplayed: this.#insertsReplayed,
      totalEpochs: this.#state.replayed,
      totalInserts: this.#state.leaves,
      prefixRoot: this.#state.prefixRoot,
    };
  }

  /** A checkpoint smaller than the latest accepted: a fork if it disagrees, else a rollback. */
  async #smaller(
    noteText: string,
    cp: checkpoint.Checkpoint,
    prevNote: string,
    prev: checkpoint.Checkpoint,
  ): Promise<never> {
    for (const old of await this.#store.readCheckpoints()) {
      const o = bodyOf(old);
      if (o.size === cp.size && !bytes.equalBytes(o.root, cp.root)) {
        return this.#finding(
          'checkpoint-fork',
          null,
          `two signed checkpoints of size ${cp.size} have different roots`,
          { notes: [old, noteText] },
          cp.size,
        );
      }
    }
    if (cp.size > 0) {
      const leafHashes = await this.#recordLeafHashes(prev.size);
      const ours = merkle.rootHash(leafHashes.slice(0, cp.size));
      if (!bytes.equalBytes(ours, cp.root)) {
        const proof = merkle.consistencyProof(leafHashes, cp.size);
        return this.#finding(
          'checkpoint-fork',
          null,
          `the signed checkpoint of size ${cp.size} is not a prefix of the accepted size-${prev.size} log`,
          {
            notes: [noteText, prevNote],
            consistency: {
              from: cp.size,
              to: prev.size,
              proof: proof.map(bytes.toBase64),
              oldRoot: bytes.toBase64(ours),
            },
          },
          cp.size,
        );
      }
    }
    return this.#finding(
      'checkpoint-rollback',
      null,
      `the directory serves a checkpoint of size ${cp.size} after one of size ${prev.size}`,
      { notes: [prevNote, noteText] },
      cp.size,
    );
  }

  /** Verifies and commits a larger (or first) checkpoint and its new epoch records. */
  async #accept(
    accepted: AcceptedCheckpoint,
    prev: { note: string; cp: checkpoint.Checkpoint } | null,
  ): Promise<void> {
    const cp = accepted.checkpoint;
    const noteText = accepted.note;
    const state = this.#state;
    const start = state.records;
    if (prev !== null && prev.cp.size >= 1) {
      const proof = await this.#o.source.consistency(prev.cp.size, cp.size);
      try {
        merkle.verifyConsistency(prev.cp.size, cp.size, proof, prev.cp.root, cp.root);
      } catch (e) {
        await this.#finding(
          'log-consistency',
          null,
          `the consistency proof from size ${prev.cp.size} to ${cp.size} does not verify (${codeOf(e)})`,
          {
            notes: [prev.note, noteText],
            consistency: { from: prev.cp.size, to: cp.size, proof: proof.map(bytes.toBase64) },
          },
          cp.size,
        );
      }
    }
    const range = merkle.CompactRange.from(
      start,
      state.recordsFrontier.map((h) => bytes.fromBase64(h)),
    );
    const fresh: Uint8Array[] = [];
    this.#progress.start('records', cp.size - start);
    for (let s = start; s < cp.size; s += MAX_LEAVES_PER_REQUEST) {
      const end = Math.min(cp.size, s + MAX_LEAVES_PER_REQUEST);
      for (const leaf of await this.#o.source.leaves(s, end)) {
        range.append(merkle.leafHash(leaf));
        fresh.push(leaf);
      }
      this.#progress.update(end - start);
    }
    this.#progress.stop();
    if (!bytes.equalBytes(range.root(), cp.root)) {
      await this.#finding(
        'log-leaves-mismatch',
        null,
        `the epoch records ${start}..${cp.size - 1} served do not hash to the signed root of size ${cp.size}`,
        {
          notes: prev === null ? [noteText] : [prev.note, noteText],
          frontier: { size: start, hashes: [...state.recordsFrontier] },
          leaves: fresh.map(bytes.toBase64),
        },
        cp.size,
      );
    }
    // From here on the records are committed to by the signed checkpoint: findings about them
    // are attributable, proven by inclusion in `noteText`.
    const all = async (): Promise<Uint8Array[]> => [
      ...(await this.#store.readRecords(0, start)),
      ...fresh,
    ];
    let prevRec: epochRecord.EpochRecord | null =
      start > 0
        ? epochRecord.decodeEpochRecord(
            (await this.#store.readRecords(start - 1, start))[0] as Uint8Array,
          )
        : null;
    for (const [i, leaf] of fresh.entries()) {
      const index = start + i;
      let rec: epochRecord.EpochRecord;
      try {
        rec = epochRecord.decodeEpochRecord(leaf);
      } catch (e) {
        return this.#finding(
          'epoch-record-malformed',
          index,
          `the record of epoch ${index} does not decode (${codeOf(e)})`,
          await provenRecords(noteText, await all(), [index]),
        );
      }
      if (rec.epoch !== index) {
        return this.#finding(
          'epoch-order',
          index,
          `leaf ${index} of the epoch log is the record of epoch ${rec.epoch}`,
          await provenRecords(noteText, await all(), [index]),
        );
      }
      if (prevRec !== null && rec.timestampMs < prevRec.timestampMs) {
        return this.#finding(
          'timestamp-backwards',
          index,
          `epoch ${index} is timestamped ${rec.timestampMs} ms, before epoch ${index - 1} (${prevRec.timestampMs} ms)`,
          await provenRecords(noteText, await all(), [index - 1, index]),
        );
      }
      prevRec = rec;
    }
    const witnessTimes: Record<string, number> = { ...state.witnessTimes };
    if (prev !== null) {
      for (const c of accepted.cosigners) {
        const vkey = this.#witnessVkey(c.name, c.keyId);
        const seen = witnessTimes[vkey];
        if (seen !== undefined && c.timestamp < seen) {
          const earlier = await this.#noteCosignedAt(vkey, seen);
          await this.#finding(
            'cosignature-timestamp-backwards',
            null,
            `witness ${c.name} cosigned size ${cp.size} at ${c.timestamp}, before its cosignature of a smaller tree at ${seen}`,
            { notes: [earlier ?? prev.note, noteText], witness: vkey },
            cp.size,
          );
        }
      }
    }
    for (const c of accepted.cosigners) {
      const vkey = this.#witnessVkey(c.name, c.keyId);
      witnessTimes[vkey] = Math.max(witnessTimes[vkey] ?? 0, c.timestamp);
    }
    await this.#store.appendRecords(fresh);
    await this.#store.appendCheckpoint(noteText);
    await this.#store.commit({
      ...state,
      checkpoint: noteText,
      checkpointsCount: state.checkpointsCount + 1,
      records: cp.size,
      recordsFrontier: range.hashes().map(bytes.toBase64),
      witnessTimes,
    });
  }

  #witnessVkey(name: string, keyId: number): string {
    const i = this.#policy.witnesses.findIndex((w) => w.name === name && w.keyId === keyId);
    return this.#policy.config.witnesses[i] ?? name;
  }

  async #noteCosignedAt(vkey: string, timestamp: number): Promise<string | undefined> {
    const w = this.#policy.witnesses[this.#policy.config.witnesses.indexOf(vkey)];
    if (!w) return undefined;
    for (const n of (await this.#store.readCheckpoints()).reverse()) {
      const sig = note.parse(n).signatures.find((s) => s.name === w.name && s.keyId === w.keyId);
      if (!sig || sig.signature.length < 8) continue;
      const view = new DataView(sig.signature.buffer, sig.signature.byteOffset, 8);
      const ts = view.getUint32(0) * 0x1_0000_0000 + view.getUint32(4);
      if (ts === timestamp) return n;
    }
    return undefined;
  }

  async #recordLeafHashes(count: number): Promise<Uint8Array[]> {
    return (await this.#store.readRecords(0, count)).map((r) => merkle.leafHash(r));
  }

  /** Replays the accepted epochs not yet replayed. */
  async #replay(tree: ReplayTree): Promise<void> {
    const total = this.#state.records;
    let replayed = this.#state.replayed;
    if (replayed >= total) return;
    const limit = Math.min(
      MAX_INSERTS_PER_REQUEST,
      this.#o.insertsPerRequest ?? MAX_INSERTS_PER_REQUEST,
    );
    const interval = this.#o.commitIntervalMs ?? 1000;
    let prefixRoot = this.#state.prefixRoot;
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    let lastCommit = performance.now();
    const flush = async (): Promise<void> => {
      if (pending.length > 0) await this.#store.appendLeaves(bytes.concatBytes(...pending));
      pending = [];
      pendingBytes = 0;
    };
    const commit = async (): Promise<void> => {
      await flush();
      await this.#store.commit({
        ...this.#state,
        replayed,
        leaves: this.#store.leavesWritten,
        prefixRoot,
      });
      lastCommit = performance.now();
    };
    const source = this.#o.source;
    const firstPage = (e: number, count: number): Promise<InsertsPage> | null => {
      if (count === 0) return null;
      const p = source.inserts(e, null, limit);
      p.catch(() => undefined); // awaited later; never an unhandled rejection
      return p;
    };
    this.#progress.start('replay', total - replayed);
    const BATCH = 4096;
    let records: epochRecord.EpochRecord[] = [];
    let recordsFrom = replayed;
    const recordAt = async (e: number): Promise<epochRecord.EpochRecord | null> => {
      if (e >= total) return null;
      if (e < recordsFrom || e >= recordsFrom + records.length) {
        recordsFrom = e;
        records = (await this.#store.readRecords(e, Math.min(total, e + BATCH))).map((r) =>
          epochRecord.decodeEpochRecord(r),
        );
      }
      return records[e - recordsFrom] ?? null;
    };
    let rec = await recordAt(replayed);
    let page = rec ? firstPage(replayed, rec.insertCount) : null;
    try {
      while (rec !== null) {
        const e = replayed;
        if (this.#o.signal?.aborted === true) {
          throw new AuditError('ERR_AUDIT_INTERRUPTED', 'interrupted');
        }
        const startLeaves = tree.size;
        const { pages, count, digest, unsortedAt, conflict } = await this.#stream(
          tree,
          e,
          rec,
          page,
          limit,
        );
        const next = await recordAt(e + 1);
        // Overlap the next epoch's first download with this epoch's hashing.
        page = next ? firstPage(e + 1, next.insertCount) : null;
        const fail = async (check: CheckName, message: string, prior = false): Promise<never> => {
          await commit();
          const inserts = bytes.concatBytes(...pages);
          return this.#finding(
            check,
            e,
            message,
            await this.#replayEvidence(e, inserts, prior ? startLeaves : -1),
          );
        };
        if (count !== rec.insertCount) {
          await fail(
            'insert-count-mismatch',
            `epoch ${e}: the record commits to ${rec.insertCount} inserts, the directory served ${count}${count > rec.insertCount ? ' or more' : ''}`,
          );
        }
        // The digest is over the inserts sorted by label; the streamed one is that digest only
        // when they were served sorted.
        const specDigest = unsortedAt < 0 ? digest : digestOfPacked(bytes.concatBytes(...pages));
        if (!bytes.equalBytes(specDigest, rec.insertsDigest)) {
          await fail(
            'inserts-digest-mismatch',
            `epoch ${e}: the inserts served do not hash to the record's inserts_digest`,
          );
        }
        if (unsortedAt >= 0) {
          await fail(
            'inserts-unsorted',
            `epoch ${e}: insert ${unsortedAt} sorts before the one served before it`,
          );
        }
        if (conflict !== null) {
          const entry = tree.leafEntry(conflict.slot);
          const label = bytes.toHex(entry.subarray(0, 32));
          if (conflict.slot >= startLeaves) {
            await fail(
              'duplicate-label',
              `epoch ${e}: label ${label} is inserted twice in the epoch`,
              true,
            );
          }
          const served = conflict.commitment;
          if (bytes.equalBytes(served, entry.subarray(32, 64))) {
            await fail(
              'duplicate-label',
              `epoch ${e}: label ${label} was already inserted in an earlier epoch`,
              true,
            );
          }
          await fail(
            'leaf-rewritten',
            `epoch ${e}: the batch changes the existing leaf of label ${label} (akd #495 bypass)`,
            true,
          );
        }
        const root = tree.root();
        if (!bytes.equalBytes(root, rec.prefixRoot)) {
          await fail(
            'prefix-root-mismatch',
            `epoch ${e}: replaying its ${count} inserts gives prefix root ${bytes.toBase64(root)}, the record commits to ${bytes.toBase64(rec.prefixRoot)}`,
            true,
          );
        }
        for (const p of pages) {
          pending.push(p);
          pendingBytes += p.length;
        }
        if (pendingBytes >= LEAVES_BUFFER_BYTES) await flush();
        replayed = e + 1;
        prefixRoot = bytes.toBase64(root);
        this.#epochsReplayed++;
        this.#insertsReplayed += count;
        this.#progress.update(this.#epochsReplayed, `${this.#insertsReplayed} inserts`);
        if (performance.now() - lastCommit >= interval) await commit();
        rec = next;
      }
      await commit();
    } catch (e) {
      // A network, download or interruption error mid-replay: keep what was verified so far.
      // (Findings commit before they throw; an error from commit itself is not retried.)
      if (e instanceof AuditError && e.code !== 'ERR_AUDIT_STATE_CORRUPT') await commit();
      if (e instanceof AuditError && e.code === 'ERR_AUDIT_INTERRUPTED') {
        throw new AuditError(
          'ERR_AUDIT_INTERRUPTED',
          `interrupted; progress saved, epochs 0..${replayed - 1} verified`,
        );
      }
      throw e;
    } finally {
      this.#progress.stop();
    }
  }

  /** Streams epoch `e`'s inserts into the tree, checking order, counting and digesting. */
  async #stream(
    tree: ReplayTree,
    e: number,
    rec: epochRecord.EpochRecord,
    first: Promise<InsertsPage> | null,
    limit: number,
  ): Promise<{
    pages: Uint8Array[];
    count: number;
    digest: Uint8Array;
    unsortedAt: number;
    conflict: { slot: number; commitment: Uint8Array } | null;
  }> {
    if (first === null) {
      return { pages: [], count: 0, digest: EMPTY_DIGEST, unsortedAt: -1, conflict: null };
    }
    const hasher = createHash('sha256');
    const pages: Uint8Array[] = [];
    let count = 0;
    let unsortedAt = -1;
    let conflict: { slot: number; commitment: Uint8Array } | null = null;
    let prevLast: Uint8Array | null = null;
    let next: Promise<InsertsPage> = first;
    for (;;) {
      const page: InsertsPage = await next;
      const ent = page.entries;
      hasher.update(ent);
      pages.push(ent);
      for (let i = 0; i < page.count; i++) {
        const off = i * INSERT_SIZE;
        if (unsortedAt < 0) {
          const before =
            i > 0
              ? compare32(ent, off - INSERT_SIZE, ent, off)
              : prevLast
                ? compare32(prevLast, 0, ent, off)
                : -1;
          if (before > 0) unsortedAt = count + i;
        }
        const r = tree.insert(ent, off);
        if (r !== -1 && conflict === null) {
          conflict = { slot: r, commitment: ent.slice(off + 32, off + 64) };
        }
      }
      count += page.count;
      if (page.count > 0)
        prevLast = ent.slice((page.count - 1) * INSERT_SIZE, page.count * INSERT_SIZE);
      // More inserts than the record commits to: stop reading (a hostile server could page forever).
      if (page.next === null || count > rec.insertCount) break;
      next = this.#o.source.inserts(e, page.next, limit);
    }
    return { pages, count, digest: new Uint8Array(hasher.digest()), unsortedAt, conflict };
  }

  /** Evidence for a replay finding: records e−1 and e proven, the inserts, the prior tree. */
  async #replayEvidence(
    e: number,
    inserts: Uint8Array,
    priorLeaves: number,
  ): Promise<EvidenceParts> {
    const noteText = this.#state.checkpoint as string;
    const all = await this.#store.readRecords(0, this.#state.records);
    const parts: EvidenceParts = {
      ...(await provenRecords(noteText, all, e > 0 ? [e - 1, e] : [e])),
      inserts: bytes.toBase64(inserts),
    };
    if (priorLeaves >= 0 && e > 0) {
      const prior = await loadReplayTree(this.#store, priorLeaves);
      const keys: Uint8Array[] = [];
      for (let off = 0; off < inserts.length; off += INSERT_SIZE)
        keys.push(inserts.subarray(off, off + 32));
      return { ...parts, priorTree: bytes.toBase64(prior.exportPartial(keys)) };
    }
    return parts;
  }

  /** Saves the evidence and stops the run. */
  async #finding(
    check: CheckName,
    epoch: number | null,
    message: string,
    parts: EvidenceParts,
    size?: number,
  ): Promise<never> {
    const { config } = this.#store;
    const evidence: Evidence = {
      format: EVIDENCE_FORMAT,
      check,
      epoch,
      message,
      attributable: CHECKS[check].attributable,
      observedAt: this.#now(),
      directory: { url: config.url, ...config.trust },
      ...parts,
    };
    const name =
      epoch !== null
        ? `epoch-${epoch}-${check}.json`
        : `checkpoint-${size ?? 'unknown'}-${check}.json`;
    const evidenceFile = await this.#store.writeEvidence(name, formatEvidence(evidence));
    const finding: Finding = { check, epoch, message, evidenceFile };
    throw new MisbehaviourError(finding);
  }
}

/** The members of an evidence file that depend on the finding. */
type EvidenceParts = Partial<
  Pick<
    Evidence,
    | 'recordsNote'
    | 'records'
    | 'consistency'
    | 'frontier'
    | 'leaves'
    | 'inserts'
    | 'priorTree'
    | 'witness'
  >
> & { readonly notes: readonly string[] };

/** Records `indexes` with inclusion proofs in the tree of `all` (which `noteText` signs). */
async function provenRecords(
  noteText: string,
  all: readonly Uint8Array[],
  indexes: readonly number[],
): Promise<EvidenceParts> {
  const tree = merkle.MemoryTree.from(all.map((r) => merkle.leafHash(r)));
  const records: ProvenRecord[] = indexes.map((index) => ({
    index,
    record: bytes.toBase64(all[index] as Uint8Array),
    proof: tree.inclusionProof(index).map(bytes.toBase64),
  }));
  return Promise.resolve({ notes: [noteText], recordsNote: 0, records });
}

/** The size of a note's checkpoint if it parses at all, for naming evidence files. */
function safeSize(noteText: string): number | undefined {
  try {
    return bodyOf(noteText).size;
  } catch {
    return undefined;
  }
}
