/**
 * Wiring the witness collector into the directory (a few lines in `main.ts`):
 *
 * ```ts
 * await migrate(db, 'directory');
 * await migrate(db, 'witnessing');                       // migrations/witnessing/
 * const collector = await createWitnessCollector(db, env['KEYTRAIL_WITNESS_POLICY'], logger);
 * const directory = await Directory.open({ db, cosigner: collector, … });
 * if (collector) attachLatePublisher(collector, directory.store, directory.state);
 * // /metrics: Registry.merge([directory.metrics.registry, collector.registry])
 * // /v1/config: witnessConfig(collector policy) for "witnesses" and "quorum"
 * ```
 * @module
 */
import { readFile } from 'node:fs/promises';
import { note } from '@keytrail/core';
import type { Db } from '@keytrail/server-kit';
import type { KtStore } from '../kt/store.ts';
import type { DirectoryState } from '../kt/state.ts';
import {
  WitnessCollector,
  type CollectorLogger,
  type WitnessCollectorOptions,
} from './collector.ts';
import { flatQuorum, parseWitnessPolicy, type WitnessPolicy } from './policy.ts';
import { PgWitnessingStore } from './store.ts';

/**
 * Reads the tlog-policy file at `policyFile` and creates the collector over the directory's
 * database, or returns undefined when no policy is configured (checkpoints are then published
 * with the log's signature only).
 * @throws WitnessPolicyError for a policy that does not parse.
 */
export async function createWitnessCollector(
  db: Db,
  policyFile: string | undefined,
  logger?: CollectorLogger,
  options: Partial<WitnessCollectorOptions> = {},
): Promise<WitnessCollector | undefined> {
  if (!policyFile) return undefined;
  const policy = parseWitnessPolicy(await readFile(policyFile, 'utf8'));
  return WitnessCollector.create({
    policy,
    store: new PgWitnessingStore(db),
    ...(logger ? { logger } : {}),
    ...options,
  });
}

/**
 * Merges the signature lines of `late` into `stored` (same checkpoint text): lines of keys
 * already present are replaced by the late ones (fresher timestamps), others are added.
 * @throws MalformedError if either is not a note, Error if their texts differ.
 */
export function mergeCosignedNotes(stored: string, late: string): string {
  const a = note.parse(stored);
  const b = note.parse(late);
  if (a.text !== b.text) throw new Error('mergeCosignedNotes: different checkpoints');
  return note.addSignatures(stored, b.signatures);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Publishes cosignatures that arrive after the sequencer released a checkpoint: waits for the
 * release (the sequencer stores the note right after `cosign` returns), merges, stores, and
 * updates the served snapshot if it is still that checkpoint.
 */
export function attachLatePublisher(
  collector: WitnessCollector,
  store: KtStore,
  state: DirectoryState,
  waitMs = 5000,
): void {
  collector.setLatePublisher(async (size, late) => {
    const until = Date.now() + waitMs;
    for (;;) {
      const row = await store.checkpoint(size);
      if (row?.released) {
        const merged = mergeCosignedNotes(row.note, late);
        await store.releaseCheckpoint(size, merged);
        state.updateNote(size - 1, merged);
        return;
      }
      if (Date.now() > until) return;
      await sleep(20);
    }
  });
}

/** The `witnesses` and `quorum` of `/v1/config` (informational; clients pin their own). */
export function witnessConfig(policy: WitnessPolicy): {
  witnesses: { name: string; vkey: string; url: string }[];
  quorum: number;
} {
  const flat = flatQuorum(policy);
  return {
    witnesses: policy.witnesses.map((w) => ({ name: w.name, vkey: w.vkey, url: w.url })),
    // A nested group policy has no single k; 0 tells clients to use their own policy.
    quorum: flat?.k ?? 0,
  };
}
