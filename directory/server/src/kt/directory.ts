/**
 * Wires the key directory together: settings and keys, the in-memory state, the VRF prover,
 * the sequencer, the write path and the proof builder. `app.ts` serves it over HTTP.
 *
 * Keys: the checkpoint signing key and the VRF key are created on first start and stored in
 * the database (`kt_settings`), not in a key file, so that every process able to take the
 * sequencer over signs with the same keys and a database backup is a complete backup.
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Db } from '@keytrail/server-kit';
import { KtStore } from './store.ts';
import { DirectoryState, type Identity } from './state.ts';
import { createFastProver, type VrfProver } from './vrf-prover.ts';
import { VrfWorkerPool } from './vrf-pool.ts';
import { Sequencer, type Logger, type SequencerOptions } from './sequencer.ts';
import { WriteService } from './writes.ts';
import { ProofBuilder } from './proofs.ts';
import { createMetrics, type DirectoryMetrics } from './metrics.ts';
import {
  adminTokenAuthorizer,
  composeAuthorizers,
  deviceSignatureAuthorizer,
  internalAuthorizer,
  type UpdateAuthorizer,
} from './authorization.ts';
import type { CheckpointCosigner } from './cosigner.ts';

/** The default checkpoint origin when ORIGIN is not set at first start. */
export const DEFAULT_ORIGIN = 'localhost/keytrail-directory';

/** Options of {@link Directory.open}. */
export interface DirectoryOptions {
  readonly db: Db;
  readonly origin?: string | undefined;
  readonly adminToken?: string | undefined;
  readonly epochMs?: number;
  readonly epochMaxUpdates?: number;
  readonly epochIdleMs?: number;
  /** Worker threads for VRF proving; 0 proves on the main thread. */
  readonly vrfWorkers?: number;
  /** Prove with the native addon when it is built (default true; false: sodium-native). */
  readonly vrfAddon?: boolean;
  readonly maxPending?: number;
  /** Whether this process competes for the sequencer lock (default true). */
  readonly sequencer?: boolean;
  readonly cosigner?: CheckpointCosigner;
  /** Extra authorisers tried before the built-in ones (identity sessions). */
  readonly authorizers?: readonly UpdateAuthorizer[];
  readonly logger?: Logger;
  readonly now?: () => number;
  readonly testing?: SequencerOptions['testing'];
}

/** A running key directory (without HTTP). */
export class Directory {
  readonly store: KtStore;
  readonly state: DirectoryState;
  readonly identity: Identity;
  readonly prover: VrfProver;
  readonly sequencer: Sequencer | undefined;
  readonly writes: WriteService;
  readonly proofs: ProofBuilder;
  readonly metrics: DirectoryMetrics;
  readonly adminToken: string | undefined;

  private constructor(
    store: KtStore,
    state: DirectoryState,
    prover: VrfProver,
    sequencer: Sequencer | undefined,
    writes: WriteService,
    metrics: DirectoryMetrics,
    adminToken: string | undefined,
  ) {
    this.store = store;
    this.state = state;
    this.identity = state.identity;
    this.prover = prover;
    this.sequencer = sequencer;
    this.writes = writes;
    this.proofs = new ProofBuilder(store, state, prover);
    this.metrics = metrics;
    this.adminToken = adminToken;
  }

  /**
   * Loads (or on first start creates) the directory's keys and state. Migrations must have run.
   * @throws Error if ORIGIN differs from the origin fixed at first start.
   */
  static async open(o: DirectoryOptions): Promise<Directory> {
    const store = new KtStore(o.db);
    let settings = await store.settings();
    settings ??= await store.initSettings(
      o.origin ?? DEFAULT_ORIGIN,
      randomBytes(32),
      randomBytes(32),
    );
    if (o.origin !== undefined && o.origin !== settings.origin) {
      throw new Error(
        `ORIGIN "${o.origin}" differs from the origin fixed at first start ("${settings.origin}")`,
      );
    }
    const identity = DirectoryState.identity(
      settings.origin,
      settings.logSecret,
      settings.vrfSecret,
    );
    const state = await DirectoryState.load(store, identity);
    const workers = o.vrfWorkers ?? 0;
    const prover: VrfProver =
      workers > 0
        ? new VrfWorkerPool(settings.vrfSecret, workers, o.vrfAddon ?? true)
        : createFastProver(settings.vrfSecret, o.vrfAddon ?? true);
    const metrics = createMetrics();
    const sequencer =
      o.sequencer === false
        ? undefined
        : new Sequencer({
            store,
            state,
            prover,
            logSecret: settings.logSecret,
            epochMs: o.epochMs ?? 1000,
            epochMaxUpdates: o.epochMaxUpdates ?? 10_000,
            epochIdleMs: o.epochIdleMs ?? 60_000,
            metrics,
            ...(o.cosigner ? { cosigner: o.cosigner } : {}),
            ...(o.logger ? { logger: o.logger } : {}),
            ...(o.now ? { now: o.now } : {}),
            ...(o.testing ? { testing: o.testing } : {}),
          });
    const authorizer = composeAuthorizers(
      ...(o.authorizers ?? []),
      deviceSignatureAuthorizer,
      adminTokenAuthorizer(o.adminToken),
      internalAuthorizer,
    );
    const writes = new WriteService(store, authorizer, o.maxPending ?? 200_000, o.now ?? Date.now);
    if (sequencer) {
      writes.onCommitted = (receipts) => {
        sequencer.hint(receipts);
      };
    }
    return new Directory(store, state, prover, sequencer, writes, metrics, o.adminToken);
  }

  #follow: ReturnType<typeof setInterval> | undefined;
  #following = false;

  /**
   * Starts competing for the sequencer lock; a process without a sequencer (a read replica)
   * follows the released epochs instead, every 250 ms.
   */
  start(): void {
    if (this.sequencer) {
      this.sequencer.start();
      return;
    }
    this.#follow ??= setInterval(() => {
      if (this.#following) return;
      this.#following = true;
      this.state
        .catchUp(this.store)
        .catch(() => undefined)
        .finally(() => {
          this.#following = false;
        });
    }, 250);
  }

  /** Resolves once epoch `epoch` is released in this process (polling the database if following). */
  async waitForEpoch(epoch: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.state.snapshot?.epoch ?? -1) < epoch) {
      if (Date.now() > deadline)
        throw new Error(`epoch ${epoch} not released within ${timeoutMs} ms`);
      if (!this.sequencer?.isLeader) await this.state.catchUp(this.store);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Stops the sequencer and the prover threads (the database stays open). */
  async close(): Promise<void> {
    if (this.#follow) clearInterval(this.#follow);
    await this.sequencer?.stop();
    await this.prover.close();
  }
}
