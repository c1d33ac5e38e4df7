/**
 * The directory's in-memory view of its published state: the prefix tree (KEYTRANS), the epoch
 * log (RFC 9162 `MemoryTree`) and the latest released checkpoint. Built from stored leaves with
 * `PrefixTree.build` at start (no history replay), then advanced epoch by epoch, either by the
 * sequencer of this process or by following the database.
 *
 * The prefix tree is mutable, so reads see it only through {@link DirectoryState.read}: while
 * the sequencer has inserted an epoch that is not yet released, reads wait (a few
 * milliseconds: the epoch's final statements, commit and cosigning).
 * @module
 */
import {
  prefixTree,
  merkle,
  epoch as epochRecord,
  checkpoint as cp,
  note,
  vrf,
} from '@keytrail/core';
import type { KtStore } from './store.ts';

/** The released state a proof is made against. */
export interface Snapshot {
  /** Newest epoch; the checkpoint's tree size is `epoch + 1`. */
  readonly epoch: number;
  readonly record: epochRecord.EpochRecord;
  /** The released checkpoint note (with any cosignatures). */
  readonly note: string;
}

/** Keys and names the state needs. */
export interface Identity {
  readonly origin: string;
  readonly vrfPublicKey: Uint8Array;
  readonly logPublicKey: Uint8Array;
  /** The signed-note verifier key string of the checkpoints. */
  readonly logKey: string;
}

/** The in-memory published state. */
export class DirectoryState {
  readonly identity: Identity;
  tree: prefixTree.PrefixTree;
  log: merkle.MemoryTree;
  #snapshot: Snapshot | undefined;
  #gate: Promise<void> | undefined;
  #openGate: (() => void) | undefined;

  private constructor(identity: Identity, tree: prefixTree.PrefixTree, log: merkle.MemoryTree) {
    this.identity = identity;
    this.tree = tree;
    this.log = log;
  }

  /** Identity from the stored secrets. */
  static identity(origin: string, logSecret: Uint8Array, vrfSecret: Uint8Array): Identity {
    const signer = note.ed25519Signer(origin, logSecret);
    return {
      origin,
      vrfPublicKey: vrf.publicKey(vrfSecret),
      logPublicKey: signer.publicKey,
      logKey: note.formatVerifierKey(origin, signer.publicKey),
    };
  }

  /**
   * Loads the state of the newest released epoch: its leaves (one sorted query, then a
   * bottom-up build) and every epoch record.
   * @throws Error if the rebuilt tree does not match the stored record (corrupt storage).
   */
  static async load(store: KtStore, identity: Identity): Promise<DirectoryState> {
    const r = await store.db.query<{ size: number | null }>(
      'SELECT max(size)::bigint AS size FROM kt_checkpoints WHERE released',
    );
    const size = r.rows[0]?.size ?? 0;
    const records = await store.records(0, size);
    const log = merkle.MemoryTree.from(records.map((x) => merkle.leafHash(x)));
    const tree =
      size === 0
        ? new prefixTree.PrefixTree()
        : prefixTree.PrefixTree.build(await store.leaves(size - 1));
    const state = new DirectoryState(identity, tree, log);
    if (size > 0) {
      const record = epochRecord.decodeEpochRecord(records[size - 1] as Uint8Array);
      state.#check(record);
      const cpRow = await store.checkpoint(size);
      if (!cpRow) throw new Error(`checkpoint ${size} missing`);
      state.#snapshot = { epoch: size - 1, record, note: cpRow.note };
    }
    return state;
  }

  #check(record: epochRecord.EpochRecord): void {
    const root = this.tree.root();
    if (Buffer.compare(Buffer.from(root), Buffer.from(record.prefixRoot)) !== 0) {
      throw new Error(`prefix tree root does not match the record of epoch ${record.epoch}`);
    }
  }

  /** The released snapshot, undefined before epoch 0 exists. */
  get snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  /** Newest epoch in the tree (released or being released). */
  get epoch(): number {
    return this.log.size - 1;
  }

  /**
   * Runs `fn` synchronously against a released snapshot once no epoch is being inserted.
   * @returns undefined before the first epoch exists.
   */
  async read<T>(fn: (s: Snapshot) => T): Promise<T | undefined> {
    while (this.#gate) await this.#gate;
    return this.#snapshot ? fn(this.#snapshot) : undefined;
  }

  /** Closes the gate before the sequencer mutates the tree; the returned function reopens it. */
  hold(): () => void {
    if (this.#gate) throw new Error('DirectoryState.hold: already held');
    this.#gate = new Promise((resolve) => {
      this.#openGate = resolve;
    });
    return () => {
      this.#gate = undefined;
      this.#openGate?.();
      this.#openGate = undefined;
    };
  }

  /** Appends the record of an epoch whose inserts are in the tree (not yet released). */
  append(record: epochRecord.EpochRecord, encoded: Uint8Array): void {
    if (record.epoch !== this.log.size) throw new Error('append: epochs must be consecutive');
    this.#check(record);
    this.log.append(merkle.leafHash(encoded));
  }

  /** Releases the newest appended epoch with its (cosigned) note. */
  release(record: epochRecord.EpochRecord, noteText: string): void {
    if (record.epoch !== this.epoch) throw new Error('release: not the newest epoch');
    this.#snapshot = { epoch: record.epoch, record, note: noteText };
  }

  /** Throws the in-memory state away and loads it again (after a failed epoch commit). */
  async reload(store: KtStore): Promise<void> {
    const fresh = await DirectoryState.load(store, this.identity);
    this.tree = fresh.tree;
    this.log = fresh.log;
    this.#snapshot = fresh.#snapshot;
  }

  /** Replaces the snapshot's note (cosignatures added later). */
  updateNote(epoch: number, noteText: string): void {
    if (this.#snapshot?.epoch === epoch) this.#snapshot = { ...this.#snapshot, note: noteText };
  }

  /**
   * Applies released epochs committed by another process (a follower, or a sequencer taking
   * over): replays each epoch's inserts and checks the resulting root against its record.
   * @returns the number of epochs applied.
   */
  async catchUp(store: KtStore): Promise<number> {
    const r = await store.db.query<{ size: number | null }>(
      'SELECT max(size)::bigint AS size FROM kt_checkpoints WHERE released',
    );
    const target = (r.rows[0]?.size ?? 0) - 1;
    let applied = 0;
    while (this.epoch < target) {
      const { record, encoded, inserts, note } = await readStoredEpoch(store, this.epoch + 1);
      const release = this.hold();
      try {
        this.tree.insertBatch(inserts);
        this.append(record, encoded);
        this.release(record, note);
      } finally {
        release();
      }
      applied++;
    }
    return applied;
  }

  /** The checkpoint body of the current log, for signing. */
  checkpointBody(size: number): string {
    return cp.format({
      origin: this.identity.origin,
      size,
      root: this.log.root(size),
      extensions: [],
    });
  }
}

/** One committed epoch as stored: its record, its inserts and its checkpoint note. */
export interface StoredEpoch {
  readonly record: epochRecord.EpochRecord;
  readonly encoded: Uint8Array;
  readonly inserts: { key: Uint8Array; commitment: Uint8Array }[];
  readonly note: string;
}

/**
 * Reads epoch `e` back from storage, for a sequencer that takes over and for read replicas.
 * @throws Error when the epoch's record or checkpoint is missing.
 */
export async function readStoredEpoch(store: KtStore, e: number): Promise<StoredEpoch> {
  const [encoded] = await store.records(e, e + 1);
  const cpRow = await store.checkpoint(e + 1);
  if (!encoded || !cpRow) throw new Error(`epoch ${String(e)} missing`);
  const inserts = (await store.epochInserts(e, undefined, 0x7fffffff)).map((x) => ({
    key: x.label,
    commitment: x.commitment,
  }));
  return { record: epochRecord.decodeEpochRecord(encoded), encoded, inserts, note: cpRow.note };
}
