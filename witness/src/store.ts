/**
 * `WitnessStore`: the narrow storage interface of the witness (STYLE §2), with a PostgreSQL
 * implementation over `@keytrail/server-kit`'s `Db` (pg or PGlite) and an in-memory one for
 * unit tests and benchmark baselines.
 *
 * The security-relevant state change is a compare-and-swap, as torchwood's `persistTreeHead`:
 * `UPDATE … WHERE origin = $1 AND tree_size = $2`, and exactly one row must change. That makes
 * "check the old size, then store" atomic across requests, processes and hosts sharing the
 * database, so a slow request for size N can never roll back a stored N + K (C2SP
 * tlog-witness v1.0.0, the race at the end of `add-checkpoint`).
 * @module
 */
import { createHash } from 'node:crypto';
import { bytes } from '@keytrail/core';
import type { Db, Queryable } from '@keytrail/server-kit';

/** The root of the empty tree, SHA-256(""). */
export const EMPTY_ROOT: Uint8Array = new Uint8Array(createHash('sha256').digest());

/** What the witness holds for one log. */
export interface LogState {
  readonly size: number;
  readonly root: Uint8Array;
  /** The latest cosigned checkpoint note (text and verified log signatures), if any. */
  readonly checkpoint: string | null;
}

/** A followed log and its trusted keys. */
export interface FollowedLog {
  readonly origin: string;
  /** C2SP signed-note verifier keys (Ed25519, 0x01). */
  readonly vkeys: readonly string[];
  readonly qpd?: number | null;
  readonly contact?: string | null;
}

/** A followed log with its state, for listings. */
export interface LogListing extends FollowedLog {
  readonly size: number;
  readonly root: Uint8Array;
  /** Timestamp (POSIX seconds) of the latest cosignature, or null if never cosigned. */
  readonly cosignedAt: number | null;
}

/** The new state after a successful `add-checkpoint`. */
export interface CosignedState {
  readonly size: number;
  readonly root: Uint8Array;
  readonly checkpoint: string;
  /** The cosignature line(s) returned to the client. */
  readonly cosignature: string;
  /** Their timestamp, POSIX seconds. */
  readonly timestamp: number;
}

/** Kinds of equivocation evidence. */
export type EvidenceKind = 'same_size_fork' | 'consistency_proof_failed';

/** A validly signed checkpoint that contradicts the stored one. */
export interface EvidenceInput {
  readonly origin: string;
  readonly kind: EvidenceKind;
  readonly stored: LogState;
  readonly oldSize: number;
  readonly proof: readonly Uint8Array[];
  readonly receivedCheckpoint: string;
  readonly receivedText: string;
  readonly receivedSize: number;
  readonly receivedRoot: Uint8Array;
}

/** A stored evidence record. */
export interface Evidence {
  readonly id: number;
  readonly origin: string;
  readonly kind: EvidenceKind;
  readonly storedSize: number;
  readonly storedRoot: Uint8Array;
  readonly storedCheckpoint: string | null;
  readonly oldSize: number;
  readonly proof: readonly Uint8Array[];
  readonly receivedCheckpoint: string;
  readonly receivedSize: number;
  readonly receivedRoot: Uint8Array;
  readonly receivedAt: Date;
}

/** Result of {@link WitnessStore.addLog}. */
export interface AddLogResult {
  /** True when the origin was new. */
  readonly created: boolean;
  /** Keys that were not known before. */
  readonly addedKeys: readonly string[];
}

/** The witness's storage. */
export interface WitnessStore {
  /** Every followed log with its keys and state, by origin. */
  listLogs(): Promise<LogListing[]>;
  /** One log's state, read from storage (not a cache). */
  getState(origin: string): Promise<LogState | undefined>;
  /**
   * Compare-and-swap: moves `origin` from `oldSize` to `next` iff the stored size is still
   * `oldSize`. Returns false (and changes nothing) otherwise.
   */
  advance(origin: string, oldSize: number, next: CosignedState): Promise<boolean>;
  /**
   * Records a fresh cosignature on the checkpoint already stored (same size and root). Returns
   * false when the stored size or root is no longer `next.size`/`next.root`.
   */
  refresh(origin: string, next: CosignedState): Promise<boolean>;
  /** Keeps evidence; one record per (origin, kind, checkpoint text). */
  recordEvidence(evidence: EvidenceInput): Promise<void>;
  /** Evidence with id > `afterId`, oldest first. */
  listEvidence(afterId?: number, limit?: number): Promise<Evidence[]>;
  /** Follows a log (or adds keys to a followed one). Never removes anything. */
  addLog(log: FollowedLog): Promise<AddLogResult>;
  /** The latest cosigned checkpoint note with this witness's cosignature appended. */
  latestCosigned(originSha256: Uint8Array): Promise<string | undefined>;
}

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

function encodeProof(proof: readonly Uint8Array[]): string {
  return proof.map((h) => bytes.toBase64(h)).join('\n');
}

function decodeProof(text: string): Uint8Array[] {
  return text === '' ? [] : text.split('\n').map((l) => bytes.fromBase64(l));
}

interface LogRow {
  origin: string;
  tree_size: number;
  root_hash: Uint8Array;
  checkpoint: string | null;
  cosigned_at: number | null;
  qpd: number | null;
  contact: string | null;
  vkeys: string[] | null;
}

interface EvidenceRow {
  id: number;
  origin: string;
  kind: EvidenceKind;
  stored_size: number;
  stored_root: Uint8Array;
  stored_checkpoint: string | null;
  old_size: number;
  proof: string;
  received_checkpoint: string;
  received_size: number;
  received_root: Uint8Array;
  received_at: Date;
}

/** {@link WitnessStore} on PostgreSQL or PGlite (tables from `migrations/witness/`). */
export class PgWitnessStore implements WitnessStore {
  readonly #db: Db;
  readonly #batch: CasBatcher | undefined;

  /**
   * @param options.batch group concurrent compare-and-swaps of different logs into one
   *   statement and one commit (default true); false runs one statement per request.
   */
  constructor(db: Db, options: { readonly batch?: boolean } = {}) {
    this.#db = db;
    this.#batch = options.batch === false ? undefined : new CasBatcher(db);
  }

  async listLogs(): Promise<LogListing[]> {
    const r = await this.#db.query<LogRow>(
      `SELECT l.origin, l.tree_size, l.root_hash, l.checkpoint, l.cosigned_at, l.qpd, l.contact,
              array_agg(k.vkey ORDER BY k.added_at, k.vkey) FILTER (WHERE k.vkey IS NOT NULL) AS vkeys
         FROM witness_logs l LEFT JOIN witness_log_keys k ON k.origin = l.origin
        GROUP BY l.origin ORDER BY l.origin`,
    );
    return r.rows.map((row) => ({
      origin: row.origin,
      vkeys: row.vkeys ?? [],
      qpd: row.qpd,
      contact: row.contact,
      size: row.tree_size,
      root: new Uint8Array(row.root_hash),
      cosignedAt: row.cosigned_at,
    }));
  }

  async getState(origin: string): Promise<LogState | undefined> {
    const r = await this.#db.query<LogRow>(
      'SELECT tree_size, root_hash, checkpoint FROM witness_logs WHERE origin = $1',
      [origin],
    );
    const row = r.rows[0];
    if (!row) return undefined;
    return { size: row.tree_size, root: new Uint8Array(row.root_hash), checkpoint: row.checkpoint };
  }

  async advance(origin: string, oldSize: number, next: CosignedState): Promise<boolean> {
    if (this.#batch) return this.#batch.submit(origin, oldSize, next);
    // The compare-and-swap. Exactly one row changes, or the request lost a race.
    const r = await this.#db.query(
      `UPDATE witness_logs
          SET tree_size = $3, root_hash = $4, checkpoint = $5, cosignature = $6, cosigned_at = $7
        WHERE origin = $1 AND tree_size = $2`,
      [origin, oldSize, next.size, next.root, next.checkpoint, next.cosignature, next.timestamp],
    );
    return r.rowCount === 1;
  }

  async refresh(origin: string, next: CosignedState): Promise<boolean> {
    const r = await this.#db.query(
      `UPDATE witness_logs SET checkpoint = $4, cosignature = $5, cosigned_at = $6
        WHERE origin = $1 AND tree_size = $2 AND root_hash = $3`,
      [origin, next.size, next.root, next.checkpoint, next.cosignature, next.timestamp],
    );
    return r.rowCount === 1;
  }

  async recordEvidence(e: EvidenceInput): Promise<void> {
    await this.#db.query(
      `INSERT INTO witness_evidence (origin, kind, stored_size, stored_root, stored_checkpoint,
          old_size, proof, received_checkpoint, received_size, received_root, received_sha256)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
       ON CONFLICT (origin, kind, received_sha256) DO NOTHING`,
      [
        e.origin,
        e.kind,
        e.stored.size,
        e.stored.root,
        e.stored.checkpoint,
        e.oldSize,
        encodeProof(e.proof),
        e.receivedCheckpoint,
        e.receivedSize,
        e.receivedRoot,
        sha256(bytes.utf8(e.receivedText)),
      ],
    );
  }

  async listEvidence(afterId = 0, limit = 100): Promise<Evidence[]> {
    const r = await this.#db.query<EvidenceRow>(
      `SELECT id, origin, kind, stored_size, stored_root, stored_checkpoint, old_size, proof,
              received_checkpoint, received_size, received_root, received_at
         FROM witness_evidence WHERE id > $1 ORDER BY id LIMIT $2`,
      [afterId, limit],
    );
    return r.rows.map((row) => ({
      id: row.id,
      origin: row.origin,
      kind: row.kind,
      storedSize: row.stored_size,
      storedRoot: new Uint8Array(row.stored_root),
      storedCheckpoint: row.stored_checkpoint,
      oldSize: row.old_size,
      proof: decodeProof(row.proof),
      receivedCheckpoint: row.received_checkpoint,
      receivedSize: row.received_size,
      receivedRoot: new Uint8Array(row.received_root),
      receivedAt: row.received_at,
    }));
  }

  async addLog(log: FollowedLog): Promise<AddLogResult> {
    return this.#db.transaction(async (tx) => addLogTx(tx, log));
  }

  async latestCosigned(originSha256: Uint8Array): Promise<string | undefined> {
    const r = await this.#db.query<{ checkpoint: string; cosignature: string }>(
      `SELECT checkpoint, cosignature FROM witness_logs
        WHERE origin_sha256 = $1 AND checkpoint IS NOT NULL AND cosignature IS NOT NULL`,
      [originSha256],
    );
    const row = r.rows[0];
    return row ? row.checkpoint + row.cosignature : undefined;
  }
}

interface CasEntry {
  readonly origin: string;
  readonly oldSize: number;
  readonly next: CosignedState;
  readonly resolve: (swapped: boolean) => void;
  readonly reject: (err: unknown) => void;
}

/** Most compare-and-swaps in one statement. */
const MAX_BATCH = 256;

/**
 * Group commit for the compare-and-swap: requests arriving while a statement is in flight are
 * sent together as one `UPDATE … FROM unnest(…)` in one transaction, so N concurrent
 * cosignatures cost one round trip and one WAL flush instead of N. Each row keeps its own
 * condition (`tree_size = old`), so the semantics are exactly those of N separate statements;
 * two requests for the same log never share a statement (the second waits for the next one,
 * where its condition is checked against the first's result). Callers are answered only after
 * the commit.
 */
class CasBatcher {
  readonly #db: Db;
  #queue: CasEntry[] = [];
  #running = false;

  constructor(db: Db) {
    this.#db = db;
  }

  submit(origin: string, oldSize: number, next: CosignedState): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ origin, oldSize, next, resolve, reject });
      if (!this.#running) {
        this.#running = true;
        // Let the requests of this event-loop turn join before the first statement.
        setImmediate(() => {
          void this.#drain();
        });
      }
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch: CasEntry[] = [];
      const rest: CasEntry[] = [];
      const origins = new Set<string>();
      for (const e of this.#queue) {
        if (batch.length < MAX_BATCH && !origins.has(e.origin)) {
          origins.add(e.origin);
          batch.push(e);
        } else {
          rest.push(e);
        }
      }
      this.#queue = rest;
      try {
        const r = await this.#db.query<{ origin: string }>(
          `UPDATE witness_logs AS w
              SET tree_size = v.new_size, root_hash = decode(v.root, 'hex'),
                  checkpoint = v.checkpoint, cosignature = v.cosignature, cosigned_at = v.ts
             FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[],
                         $6::text[], $7::bigint[])
                  AS v(origin, old_size, new_size, root, checkpoint, cosignature, ts)
            WHERE w.origin = v.origin AND w.tree_size = v.old_size
        RETURNING w.origin`,
          [
            batch.map((e) => e.origin),
            batch.map((e) => e.oldSize),
            batch.map((e) => e.next.size),
            batch.map((e) => bytes.toHex(e.next.root)),
            batch.map((e) => e.next.checkpoint),
            batch.map((e) => e.next.cosignature),
            batch.map((e) => e.next.timestamp),
          ],
        );
        const swapped = new Set(r.rows.map((row) => row.origin));
        for (const e of batch) e.resolve(swapped.has(e.origin));
      } catch (err) {
        for (const e of batch) e.reject(err);
      }
    }
    this.#running = false;
  }
}

async function addLogTx(tx: Queryable, log: FollowedLog): Promise<AddLogResult> {
  const ins = await tx.query(
    `INSERT INTO witness_logs (origin, origin_sha256, root_hash, qpd, contact)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (origin) DO NOTHING`,
    [log.origin, sha256(bytes.utf8(log.origin)), EMPTY_ROOT, log.qpd ?? null, log.contact ?? null],
  );
  const addedKeys: string[] = [];
  for (const vkey of log.vkeys) {
    const k = await tx.query(
      'INSERT INTO witness_log_keys (origin, vkey) VALUES ($1, $2) ON CONFLICT DO NOTHING',
      [log.origin, vkey],
    );
    if (k.rowCount === 1) addedKeys.push(vkey);
  }
  return { created: ins.rowCount === 1, addedKeys };
}

/** {@link WitnessStore} in memory: for unit tests and benchmark baselines only. */
export class MemoryWitnessStore implements WitnessStore {
  readonly #logs = new Map<
    string,
    FollowedLog &
      LogState & { vkeys: string[]; cosignature: string | null; cosignedAt: number | null }
  >();
  readonly #evidence: Evidence[] = [];
  readonly #evidenceKeys = new Set<string>();

  listLogs(): Promise<LogListing[]> {
    return Promise.resolve(
      [...this.#logs.values()]
        .sort((a, b) => (a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0))
        .map((l) => ({ ...l, vkeys: [...l.vkeys] })),
    );
  }

  getState(origin: string): Promise<LogState | undefined> {
    const l = this.#logs.get(origin);
    return Promise.resolve(
      l ? { size: l.size, root: l.root, checkpoint: l.checkpoint } : undefined,
    );
  }

  advance(origin: string, oldSize: number, next: CosignedState): Promise<boolean> {
    const l = this.#logs.get(origin);
    if (!l || l.size !== oldSize) return Promise.resolve(false);
    this.#logs.set(origin, {
      ...l,
      size: next.size,
      root: next.root,
      checkpoint: next.checkpoint,
      cosignature: next.cosignature,
      cosignedAt: next.timestamp,
    });
    return Promise.resolve(true);
  }

  refresh(origin: string, next: CosignedState): Promise<boolean> {
    const l = this.#logs.get(origin);
    if (!l || l.size !== next.size || !bytes.equalBytes(l.root, next.root)) {
      return Promise.resolve(false);
    }
    this.#logs.set(origin, {
      ...l,
      checkpoint: next.checkpoint,
      cosignature: next.cosignature,
      cosignedAt: next.timestamp,
    });
    return Promise.resolve(true);
  }

  recordEvidence(e: EvidenceInput): Promise<void> {
    const key = `${e.origin}\n${e.kind}\n${e.receivedText}`;
    if (this.#evidenceKeys.has(key)) return Promise.resolve();
    this.#evidenceKeys.add(key);
    this.#evidence.push({
      id: this.#evidence.length + 1,
      origin: e.origin,
      kind: e.kind,
      storedSize: e.stored.size,
      storedRoot: e.stored.root,
      storedCheckpoint: e.stored.checkpoint,
      oldSize: e.oldSize,
      proof: [...e.proof],
      receivedCheckpoint: e.receivedCheckpoint,
      receivedSize: e.receivedSize,
      receivedRoot: e.receivedRoot,
      receivedAt: new Date(),
    });
    return Promise.resolve();
  }

  listEvidence(afterId = 0, limit = 100): Promise<Evidence[]> {
    return Promise.resolve(this.#evidence.filter((e) => e.id > afterId).slice(0, limit));
  }

  addLog(log: FollowedLog): Promise<AddLogResult> {
    const existing = this.#logs.get(log.origin);
    const vkeys = existing ? existing.vkeys : [];
    const addedKeys = log.vkeys.filter((k) => !vkeys.includes(k));
    vkeys.push(...addedKeys);
    if (!existing) {
      this.#logs.set(log.origin, {
        origin: log.origin,
        vkeys,
        qpd: log.qpd ?? null,
        contact: log.contact ?? null,
        size: 0,
        root: EMPTY_ROOT,
        checkpoint: null,
        cosignature: null,
        cosignedAt: null,
      });
    }
    return Promise.resolve({ created: !existing, addedKeys });
  }

  latestCosigned(originSha256: Uint8Array): Promise<string | undefined> {
    for (const l of this.#logs.values()) {
      if (
        bytes.equalBytes(sha256(bytes.utf8(l.origin)), originSha256) &&
        l.checkpoint &&
        l.cosignature
      ) {
        return Promise.resolve(l.checkpoint + l.cosignature);
      }
    }
    return Promise.resolve(undefined);
  }
}
