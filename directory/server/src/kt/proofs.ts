/**
 * Builds lookup and owner-history proofs (`@keytrail/client` proof.ts formats, PROTOCOL.md §6)
 * from the released snapshot: stored VRF proofs (never re-proved for stored versions), stored
 * openings and commitments, batched prefix-tree proofs (one for a lookup; one per 255 probes
 * for a history, all against the snapshot's root) and the epoch record's log inclusion.
 * @module
 */
import { vrf } from '@keytrail/core';
import { HttpError } from '@keytrail/server-kit';
import {
  accountLabel,
  encodeLookupProof,
  encodeHistoryProof,
  lookupProbes,
  historyProbes,
  historyBatches,
  MAX_HISTORY_VERSIONS,
  type AccountRef,
} from '@keytrail/client';
import type { KtStore, VersionRow } from './store.ts';
import type { DirectoryState, Snapshot } from './state.ts';
import type { VrfProver } from './vrf-prover.ts';

/** A lookup answer before JSON encoding. */
export interface BuiltLookup {
  readonly version: number;
  readonly value: Uint8Array | undefined;
  readonly proof: Uint8Array;
  readonly checkpoint: string;
  readonly epoch: number;
}

/** A history answer before JSON encoding. */
export interface BuiltHistory {
  readonly versions: readonly { version: number; epoch: number; value: Uint8Array }[];
  readonly proof: Uint8Array;
  readonly checkpoint: string;
  readonly epoch: number;
}

/** Thrown when the snapshot moved while rows were read; the caller retries. */
class SnapshotMoved extends Error {}

/** Makes proofs for the read API. */
export class ProofBuilder {
  readonly #store: KtStore;
  readonly #state: DirectoryState;
  readonly #prover: VrfProver;

  constructor(store: KtStore, state: DirectoryState, prover: VrfProver) {
    this.#store = store;
    this.#state = state;
    this.#prover = prover;
  }

  async #withSnapshot<T>(fn: (s: Snapshot) => Promise<(s: Snapshot) => T>): Promise<T | undefined> {
    for (;;) {
      const snap = this.#state.snapshot;
      if (!snap) return undefined;
      const finish = await fn(snap);
      try {
        return await this.#state.read((now) => {
          if (now.epoch !== snap.epoch) throw new SnapshotMoved();
          return finish(now);
        });
      } catch (err) {
        if (!(err instanceof SnapshotMoved)) throw err;
      }
    }
  }

  #log(epoch: number): Uint8Array[] {
    return this.#state.log.inclusionProof(epoch, epoch + 1);
  }

  /** The lookup of an account's greatest version against the released snapshot. */
  async lookup(ref: AccountRef): Promise<BuiltLookup | undefined> {
    const label = accountLabel(ref);
    return this.#withSnapshot(async (snap) => {
      // One query: an account has few versions, and a lookup needs most of them.
      const all = await this.#store.versions(ref.tenant, ref.account, snap.epoch);
      // The greatest version is the end of the run 0, 1, 2, …: the sequencer only ever stores
      // that run, and a version past a gap (written into storage behind the sequencer's back)
      // could not be proven by any ladder anyway.
      let t = -1;
      for (const row of all) {
        if (row.version !== t + 1) break;
        t = row.version;
      }
      const probes = lookupProbes(t);
      const rows = all.filter((r) => r.version <= t + 1);
      const byVersion = new Map(rows.map((r) => [r.version, r]));
      const vrfProofs: Uint8Array[] = [];
      const keys: Uint8Array[] = [];
      for (const p of probes) {
        const row = byVersion.get(p.version);
        const prevRow = byVersion.get(p.version - 1);
        if (p.included && row) {
          vrfProofs.push(row.vrfProof);
          keys.push(row.label);
        } else if (!p.included && prevRow && p.version === t + 1) {
          vrfProofs.push(prevRow.nextVrfProof);
          keys.push(prevRow.nextLabel);
        } else {
          // No stored version (an absent account's version 0): prove now.
          const [proof] = await this.#prover.prove([vrf.vrfInput(label, p.version)]);
          vrfProofs.push(proof as Uint8Array);
          keys.push(vrf.proofToHash(proof as Uint8Array).slice(0, vrf.KT_OUTPUT_SIZE));
        }
      }
      const top = byVersion.get(t);
      return (now: Snapshot): BuiltLookup => {
        const prefix = this.#state.tree.proveMany(keys);
        const proof = encodeLookupProof({
          record: now.record,
          version: t,
          vrfProofs,
          commitments: probes
            .filter((p) => p.included && p.version !== t)
            .map((p) => (byVersion.get(p.version) as VersionRow).commitment),
          opening: top?.opening,
          prefix,
          logInclusion: this.#log(now.epoch),
        });
        return { version: t, value: top?.value, proof, checkpoint: now.note, epoch: now.epoch };
      };
    });
  }

  /**
   * The owner's full history against the released snapshot.
   * @throws HttpError 422 `ERR_HISTORY_TOO_LONG` for more than `MAX_HISTORY_VERSIONS` versions.
   */
  async history(ref: AccountRef): Promise<BuiltHistory | undefined> {
    const label = accountLabel(ref);
    return this.#withSnapshot(async (snap) => {
      const rows = await this.#store.versions(ref.tenant, ref.account, snap.epoch);
      if (rows.length > MAX_HISTORY_VERSIONS) {
        // Clients refuse a longer history proof (it bounds the work one answer can demand).
        throw new HttpError(
          422,
          'ERR_HISTORY_TOO_LONG',
          `a history proof lists at most ${String(MAX_HISTORY_VERSIONS)} versions; this account has ${String(rows.length)}`,
        );
      }
      const byVersion = new Map(rows.map((r) => [r.version, r]));
      const probes = historyProbes(rows.map((r) => r.version));
      const missing = probes.filter((p) => !p.included && !byVersion.get(p.version - 1));
      const proven = await this.#prover.prove(missing.map((p) => vrf.vrfInput(label, p.version)));
      const provenBy = new Map(missing.map((p, i) => [p.version, proven[i] as Uint8Array]));
      const vrfProofs: Uint8Array[] = [];
      const keys: Uint8Array[] = [];
      for (const p of probes) {
        const row = byVersion.get(p.version);
        const prev = byVersion.get(p.version - 1);
        if (row) {
          vrfProofs.push(row.vrfProof);
          keys.push(row.label);
        } else if (prev) {
          vrfProofs.push(prev.nextVrfProof);
          keys.push(prev.nextLabel);
        } else {
          const proof = provenBy.get(p.version) as Uint8Array;
          vrfProofs.push(proof);
          keys.push(vrf.proofToHash(proof).slice(0, vrf.KT_OUTPUT_SIZE));
        }
      }
      return (now: Snapshot): BuiltHistory => {
        const entries = rows.map((r) => ({
          version: r.version,
          epoch: r.epoch,
          opening: r.opening,
          value: r.value,
        }));
        const proof = encodeHistoryProof({
          record: now.record,
          entries,
          vrfProofs,
          // One batch proof per 255 probes (a PrefixProof counts results in a byte), all
          // against the tree of `now`, whose root the record carries.
          prefixes: historyBatches(keys).map((batch) => this.#state.tree.proveMany(batch)),
          logInclusion: this.#log(now.epoch),
        });
        return { versions: entries, proof, checkpoint: now.note, epoch: now.epoch };
      };
    });
  }
}
