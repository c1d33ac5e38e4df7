/**
 * The sequencer: the one writer of the key directory (directory/PROTOCOL.md §4).
 *
 * Exactly one process sequences: it holds a session-level PostgreSQL advisory lock on a
 * dedicated connection; others wait (following the published epochs meanwhile) and take over
 * when that session ends, for instance because its process died. Every epoch is one
 * transaction on the lock's own session: compare-and-swap of `published_epoch`, the versions'
 * VRF labels and proofs, random openings and commitments, the epoch record (RFC 9162 log
 * leaf) and the signed C2SP checkpoint. After commit the checkpoint goes to the
 * {@link CheckpointCosigner} and is released with what comes back.
 *
 * An epoch closes `epochMs` after the previous one closed if updates wait, at
 * `epochMaxUpdates` waiting updates, or `epochIdleMs` after the previous one without any (so
 * freshness never depends on traffic). Closing advances
 * `open_epoch` under the exclusive epoch lock, which every write holds shared while it
 * inserts: so a write's receipt names exactly the epoch it will appear in.
 * @module
 */
import { randomFillSync } from 'node:crypto';
import { commitment, epoch as epochRecord, note, vrf } from '@keytrail/core';
import { accountLabel } from '@keytrail/client';
import type { Db, Queryable } from '@keytrail/server-kit';
import { KtStore, SEQUENCER_LOCK, EPOCH_LOCK, type LeafUpdate, type PendingRow } from './store.ts';
import { readStoredEpoch, type DirectoryState } from './state.ts';
import type { VrfOutput, VrfProver } from './vrf-prover.ts';
import { LOG_SIGNATURE_ONLY, type CheckpointCosigner } from './cosigner.ts';
import type { DirectoryMetrics } from './metrics.ts';

/** A minimal logger (pino-compatible). */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Options of the {@link Sequencer}. */
export interface SequencerOptions {
  readonly store: KtStore;
  readonly state: DirectoryState;
  readonly prover: VrfProver;
  readonly logSecret: Uint8Array;
  readonly cosigner?: CheckpointCosigner;
  readonly epochMs: number;
  readonly epochMaxUpdates: number;
  readonly epochIdleMs: number;
  readonly now?: () => number;
  readonly logger?: Logger;
  readonly metrics?: DirectoryMetrics;
  /** Test-only hooks that force races (torchwood `testingOnlyStallRequest`). */
  readonly testing?: {
    /** Sequence without taking the lock, as a split-brain process would. */
    readonly skipLock?: boolean;
    /** Awaited inside the epoch transaction, before its first write. */
    readonly beforeWrite?: (epoch: number) => Promise<void>;
  };
}

/** Thrown when another sequencer published the epoch first; this one steps down. */
export class LostLeadershipError extends Error {
  constructor(epoch: number) {
    super(`epoch ${epoch} was published by another sequencer`);
    this.name = 'LostLeadershipError';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A version of an account. */
export interface VersionKey {
  readonly tenant: string;
  readonly account: string;
  readonly version: number;
}

/** A version and the epoch it was written into. */
export interface EpochVersion extends VersionKey {
  readonly epoch: number;
}

/** Hinted versions waiting at most (about 100 bytes each). */
const MAX_HINTS = 100_000;
/** Hinted versions proven per batch. */
const HINT_BATCH = 2000;
const rowKey = (t: string, a: string, v: number): string => `${t}\u0000${a}\u0000${v}`;

/** The directory's single writer. */
export class Sequencer {
  readonly #o: SequencerOptions;
  readonly #db: Db;
  readonly #now: () => number;
  #stopped = true;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #leader = false;
  #lastEpochAt = 0;
  /**
   * VRF labels proven ahead, while their epoch is still open (row key → label, proof, and the
   * epoch of the version that needed it: dropped once that epoch is published).
   */
  readonly #ahead = new Map<string, { label: Uint8Array; proof: Uint8Array; epoch: number }>();
  #prefetch: Promise<void> | undefined;
  /** Versions this process just committed, to prove before their epoch closes. */
  readonly #hints: EpochVersion[] = [];
  #hintLoop: Promise<void> | undefined;
  /** The batch of hinted labels being proven now (an epoch waits for it rather than redo it). */
  #hintBatch: Promise<void> | undefined;
  /** Milliseconds spent in each phase of the last epoch (diagnostics, benchmarks). */
  lastEpochPhases: Readonly<Record<string, number>> = {};

  constructor(options: SequencerOptions) {
    this.#o = options;
    this.#db = options.store.db;
    this.#now = options.now ?? Date.now;
  }

  /** True once {@link stop} was called (or before {@link start}). */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** True while this process holds the sequencer lock. */
  get isLeader(): boolean {
    return this.#leader;
  }

  /** Starts competing for the lock and sequencing. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#loop = this.#run();
  }

  /** Stops after the current epoch, releasing the lock. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#wake?.();
    await this.#loop;
    await this.#hintLoop;
  }

  /** Hints that a write arrived (an epoch may close sooner). */
  notify(): void {
    this.#wake?.();
  }

  /**
   * Versions committed by this process: their VRF labels are proven in the background as they
   * arrive, so that closing the epoch finds them ready (proofs are deterministic, so nothing is
   * lost if the epoch changes). An optimisation only: an epoch proves whatever is missing, and
   * hints beyond {@link MAX_HINTS} waiting are dropped.
   */
  hint(rows: readonly EpochVersion[]): void {
    if (!this.#leader || this.#stopped || this.#hints.length + rows.length > MAX_HINTS) return;
    for (const r of rows) this.#hints.push(r);
    this.#hintLoop ??= this.#proveHints().finally(() => {
      this.#hintLoop = undefined;
    });
  }

  async #proveHints(): Promise<void> {
    while (this.#hints.length > 0 && this.#leader && !this.#stopped) {
      const batch = this.#hints
        .splice(0, HINT_BATCH)
        .filter(
          (r) =>
            r.epoch > this.#o.state.epoch &&
            (!this.#ahead.has(rowKey(r.tenant, r.account, r.version)) ||
              !this.#ahead.has(rowKey(r.tenant, r.account, r.version + 1))),
        );
      if (batch.length === 0) continue;
      this.#hintBatch = this.#labels(batch, this.#db, false).then(
        (labels) => {
          this.#keepAhead(batch, labels);
        },
        (err: unknown) => {
          this.#o.logger?.warn({ err }, 'proving ahead failed; the epoch will prove itself');
        },
      );
      await this.#hintBatch;
      this.#hintBatch = undefined;
    }
    if (!this.#leader || this.#stopped) this.#hints.length = 0;
  }

  async #nap(ms: number): Promise<void> {
    await Promise.race([sleep(ms), new Promise<void>((r) => (this.#wake = r))]);
    this.#wake = undefined;
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        await this.#db.withSession(async (session) => {
          while (!this.#stopped && !(await this.#tryLock(session))) {
            await this.#o.state.catchUp(this.#o.store);
            await this.#nap(250);
          }
          if (this.#stopped) return;
          this.#setLeader(true);
          try {
            await this.#lead(session);
          } finally {
            this.#setLeader(false);
            if (!this.#o.testing?.skipLock) {
              await session
                .query('SELECT pg_advisory_unlock($1)', [SEQUENCER_LOCK])
                .catch(() => undefined);
            }
          }
        });
      } catch (err) {
        if (this.stopped) break;
        this.#o.logger?.warn({ err }, 'sequencer stepped down; retrying');
        await this.#nap(200);
      }
    }
  }

  #setLeader(on: boolean): void {
    this.#leader = on;
    this.#o.metrics?.leader.set(on ? 1 : 0);
  }

  async #tryLock(session: Queryable): Promise<boolean> {
    if (this.#o.testing?.skipLock) return true;
    const r = await session.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [
      SEQUENCER_LOCK,
    ]);
    return r.rows[0]?.ok === true;
  }

  /** One transaction on the lock's session (PGlite: its own serialised transaction). */
  async #tx<T>(session: Queryable, fn: (q: Queryable) => Promise<T>): Promise<T> {
    if (this.#db.kind === 'pglite') return this.#db.transaction(fn);
    await session.query('BEGIN');
    try {
      const out = await fn(session);
      await session.query('COMMIT');
      return out;
    } catch (err) {
      await session.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  async #lead(session: Queryable): Promise<void> {
    const { store, state } = this.#o;
    await state.catchUp(store);
    await this.#recover();
    this.#ahead.clear();
    this.#lastEpochAt = this.#now();
    while (!this.#stopped) {
      const s = await store.settings();
      if (!s) throw new Error('kt_settings missing');
      if (s.openEpoch === s.publishedEpoch + 2) {
        await this.#sequence(session, s.openEpoch - 1);
        continue;
      }
      const since = this.#now() - this.#lastEpochAt;
      const pending = await store.pendingCount(s.openEpoch);
      const due =
        s.publishedEpoch < 0 ||
        pending >= this.#o.epochMaxUpdates ||
        (pending > 0 && since >= this.#o.epochMs) ||
        since >= this.#o.epochIdleMs;
      if (!due) {
        // Prove the open epoch's labels while it fills: VRF proving is the slow part of an
        // epoch, and proofs are deterministic, so nothing is lost if the epoch changes.
        if (pending > 0 && this.#prefetch === undefined) {
          this.#prefetch = this.#proveAhead(s.openEpoch).finally(() => {
            this.#prefetch = undefined;
          });
        }
        await this.#nap(Math.max(5, Math.min(50, this.#o.epochMs - since)));
        continue;
      }
      await this.#prefetch;
      await this.#tx(session, async (q) => {
        await q.query('SELECT pg_advisory_xact_lock($1)', [EPOCH_LOCK]);
        const r = await q.query(
          'UPDATE kt_settings SET open_epoch = open_epoch + 1 WHERE id = 1 AND open_epoch = $1 AND published_epoch = $2',
          [s.openEpoch, s.publishedEpoch],
        );
        if (r.rowCount !== 1) throw new LostLeadershipError(s.openEpoch);
      });
      // The cadence runs from one close to the next, so a write waits at most EPOCH_MS for its
      // epoch to close whatever the time spent sequencing the previous one.
      this.#lastEpochAt = this.#now();
    }
  }

  /** Releases epochs a predecessor committed but did not release (it died while cosigning). */
  async #recover(): Promise<void> {
    const { store, state } = this.#o;
    const latest = await store.latestEpoch();
    while (state.epoch < latest) {
      const { record, encoded, inserts, note } = await readStoredEpoch(store, state.epoch + 1);
      const open = state.hold();
      try {
        state.tree.insertBatch(inserts);
        state.append(record, encoded);
        await this.#publish(record, note);
      } catch (err) {
        await state.reload(store);
        throw err;
      } finally {
        open();
      }
    }
  }

  async #publish(record: epochRecord.EpochRecord, logSigned: string): Promise<void> {
    const { store, state } = this.#o;
    const size = record.epoch + 1;
    const cosigned = await (this.#o.cosigner ?? LOG_SIGNATURE_ONLY).cosign({
      checkpoint: logSigned,
      size,
      consistencyProof: (oldSize) => state.log.consistencyProof(oldSize, size),
    });
    await store.releaseCheckpoint(size, cosigned);
    state.release(record, cosigned);
    this.#o.metrics?.publishedEpoch.set(record.epoch);
  }

  /**
   * Labels (and proofs) of every version and its successor: those proven ahead, a version's own
   * label stored with its predecessor (when `stored`), and the rest proven now. Without
   * `stored` (proving ahead of an epoch) a version's own label is left to the epoch unless the
   * version is 0: it is almost always stored with the previous version already.
   */
  async #labels(
    rows: readonly VersionKey[],
    q: Queryable,
    stored = true,
  ): Promise<Map<string, { label: Uint8Array; proof: Uint8Array }>> {
    const out = new Map<string, { label: Uint8Array; proof: Uint8Array }>();
    const missingOwn: VersionKey[] = [];
    for (const r of rows) {
      for (const v of [r.version, r.version + 1]) {
        const key = rowKey(r.tenant, r.account, v);
        const ahead = this.#ahead.get(key);
        if (ahead) out.set(key, ahead);
      }
      if (r.version > 0 && !out.has(rowKey(r.tenant, r.account, r.version))) missingOwn.push(r);
    }
    if (stored && missingOwn.length > 0) {
      const known = await this.#o.store.nextProbes(
        missingOwn.map((r) => ({ tenant: r.tenant, account: r.account, version: r.version - 1 })),
        q,
      );
      for (const r of missingOwn) {
        const prev = known.get(rowKey(r.tenant, r.account, r.version - 1));
        if (prev) out.set(rowKey(r.tenant, r.account, r.version), prev);
      }
    }
    const want: { key: string; alpha: Uint8Array }[] = [];
    const wanted = new Set<string>();
    for (const r of rows) {
      for (const v of [r.version, r.version + 1]) {
        if (!stored && v === r.version && v > 0) continue;
        const key = rowKey(r.tenant, r.account, v);
        if (out.has(key) || wanted.has(key)) continue;
        wanted.add(key);
        want.push({
          key,
          alpha: vrf.vrfInput(accountLabel({ tenant: r.tenant, account: r.account }), v),
        });
      }
    }
    const started = performance.now();
    const proven = await this.#o.prover.proveWithOutputs(want.map((w) => w.alpha));
    this.#o.metrics?.vrfSeconds.observe((performance.now() - started) / 1000);
    want.forEach((w, i) => {
      const r = proven[i] as VrfOutput;
      out.set(w.key, { label: r.output.slice(0, vrf.KT_OUTPUT_SIZE), proof: r.proof });
    });
    return out;
  }

  /** Proves, ahead of time, up to 2000 labels the open epoch will need. */
  async #proveAhead(epoch: number): Promise<void> {
    try {
      const rows = (await this.#o.store.pending(epoch, this.#db)).filter(
        (r) =>
          !this.#ahead.has(rowKey(r.tenant, r.account, r.version)) ||
          !this.#ahead.has(rowKey(r.tenant, r.account, r.version + 1)),
      );
      const batch = rows.slice(0, 1000);
      if (batch.length === 0) return;
      const labels = await this.#labels(batch, this.#db);
      this.#keepAhead(
        batch.map((r) => ({ ...r, epoch })),
        labels,
      );
    } catch (err) {
      this.#o.logger?.warn({ err }, 'proving ahead failed; the epoch will prove itself');
    }
  }

  /** Keeps proven labels for versions whose epoch is not published yet. */
  #keepAhead(
    rows: readonly EpochVersion[],
    labels: ReadonlyMap<string, { label: Uint8Array; proof: Uint8Array }>,
  ): void {
    for (const r of rows) {
      if (r.epoch <= this.#o.state.epoch) continue; // sequenced meanwhile
      for (const v of [r.version, r.version + 1]) {
        const key = rowKey(r.tenant, r.account, v);
        const l = labels.get(key);
        if (l) this.#ahead.set(key, { label: l.label, proof: l.proof, epoch: r.epoch });
      }
    }
  }

  /** Labels proven ahead and not yet used (diagnostics; 0 when every epoch is published). */
  get provenAhead(): number {
    return this.#ahead.size;
  }

  async #sequence(session: Queryable, e: number): Promise<void> {
    const { store, state } = this.#o;
    const started = performance.now();
    if (state.epoch !== e - 1)
      throw new Error(`in-memory state at ${state.epoch}, sequencing ${e}`);
    const phases: Record<string, number> = {};
    let mark = performance.now();
    const phase = (name: string): void => {
      const t = performance.now();
      phases[name] = t - mark;
      mark = t;
    };
    const rows = await store.pending(e, this.#db);
    phase('pending');
    await this.#hintBatch;
    const labels = await this.#labelsFast(rows);
    phase('vrf');
    // One call to the system's random source for every opening of the epoch.
    const openings = randomFillSync(new Uint8Array(commitment.OPENING_SIZE * rows.length));
    const leaves: LeafUpdate[] = rows.map((r, i) => {
      const l = labels.get(rowKey(r.tenant, r.account, r.version));
      const n = labels.get(rowKey(r.tenant, r.account, r.version + 1));
      if (!l || !n) throw new Error('missing VRF label');
      const opening = openings.subarray(
        commitment.OPENING_SIZE * i,
        commitment.OPENING_SIZE * (i + 1),
      );
      return {
        ...r,
        label: l.label,
        vrfProof: l.proof,
        opening,
        commitment: commitment.commit(
          opening,
          accountLabel({ tenant: r.tenant, account: r.account }),
          r.version,
          r.value,
        ),
        nextLabel: n.label,
        nextVrfProof: n.proof,
      };
    });
    const inserts = leaves.map((l) => ({ label: l.label, commitment: l.commitment }));
    phase('commitments');
    const prev = state.snapshot?.record.timestampMs ?? 0;
    // Timestamps are strictly monotonic even if the clock steps back.
    const timestampMs = Math.max(this.#now(), prev + 1);
    let committed = false;
    let held: (() => void) | undefined;
    try {
      const { record, logSigned } = await this.#tx(session, async (q) => {
        const cas = await q.query(
          'UPDATE kt_settings SET published_epoch = $1 WHERE id = 1 AND published_epoch = $2 AND open_epoch = $3',
          [e, e - 1, e + 1],
        );
        if (cas.rowCount !== 1) throw new LostLeadershipError(e);
        await this.#o.testing?.beforeWrite?.(e);
        const written = await store.writeLeaves(leaves, q);
        if (written !== leaves.length) throw new LostLeadershipError(e);
        phase('writeLeaves');
        held = state.hold();
        state.tree.insertBatch(inserts.map((i) => ({ key: i.label, commitment: i.commitment })));
        const rec: epochRecord.EpochRecord = {
          epoch: e,
          timestampMs,
          prefixRoot: state.tree.root(),
          insertCount: inserts.length,
          insertsDigest: epochRecord.insertsDigest(inserts),
        };
        const encoded = epochRecord.encodeEpochRecord(rec);
        state.append(rec, encoded);
        const signed = note.sign(state.checkpointBody(e + 1), [
          note.ed25519Signer(state.identity.origin, this.#o.logSecret),
        ]);
        phase('tree+sign');
        await q.query('INSERT INTO kt_epochs (epoch, record) VALUES ($1, $2)', [e, encoded]);
        await q.query('INSERT INTO kt_checkpoints (size, note) VALUES ($1, $2)', [e + 1, signed]);
        return { record: rec, logSigned: signed };
      });
      committed = true;
      phase('commit');
      await this.#publish(record, logSigned);
      phase('cosign+release');
    } catch (err) {
      // The tree or log may hold an epoch the database does not: start again from storage.
      if (held !== undefined || committed) await state.reload(store);
      throw err;
    } finally {
      held?.();
    }
    for (const [key, a] of this.#ahead) if (a.epoch <= e) this.#ahead.delete(key);
    phases['updates'] = rows.length;
    this.lastEpochPhases = phases;
    this.#o.metrics?.epochs.inc();
    this.#o.metrics?.updatesSequenced.inc(rows.length);
    this.#o.metrics?.epochSeconds.observe((performance.now() - started) / 1000);
  }

  /** {@link #labels} outside the epoch transaction (proving is slow; nothing here writes). */
  #labelsFast(
    rows: readonly PendingRow[],
  ): Promise<Map<string, { label: Uint8Array; proof: Uint8Array }>> {
    return this.#labels(rows, this.#db);
  }
}
