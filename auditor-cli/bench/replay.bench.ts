/**
 * Replay benchmark of `keytrail-audit sync` (ARCHITECTURE.md §Protocol 9): inserted labels
 * replayed per second through the whole sync engine — checkpoint acceptance, epoch-record
 * checks, streamed inserts with their count, order and digest checks, duplicate and rewrite
 * checks, the auditor's own prefix tree rehashed per epoch and compared with the committed root,
 * inserts appended to the state directory and committed — from an in-memory log (no HTTP),
 * beside the raw native SHA-256 rate measured in the same run.
 *
 * Targets on the project's 2-core machines: ≥ 50,000 labels/s, and a 1M-account log replayed in
 * under a minute. The logs are generated in memory with `@keytrail/core`'s PrefixTree (the
 * directory's implementation), so the roots the replay must reach are not the auditor's own.
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installNodeCrypto } from '@keytrail/server-kit';
import { baselineSha256, fmt, report, type Bench } from '../../scripts/bench-util.ts';
import { StateStore } from '../src/state-store.ts';
import { defaultThreads, sync } from '../src/sync.ts';
import { ReplayTree } from '../src/replay-tree.ts';
import { MemoryLog } from './memory-log.ts';

async function replay(
  log: MemoryLog,
  threads: number,
): Promise<{ seconds: number; inserts: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'keytrail-audit-bench-'));
  try {
    await StateStore.init(dir, { url: 'memory:', trust: log.trust });
    const store = await StateStore.open(dir);
    try {
      const start = performance.now();
      const r = await sync({ store, source: log, threads });
      const seconds = (performance.now() - start) / 1000;
      if (r.totalInserts !== log.insertCount) throw new Error('replay incomplete');
      return { seconds, inserts: r.totalInserts };
    } finally {
      await store.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const bench: Bench = async () => {
  installNodeCrypto();
  const before = baselineSha256(1000);
  report('raw native SHA-256, 65-byte input (baseline)', `${fmt(before)} /s`);

  const workers = defaultThreads();
  for (const [epochs, perEpoch] of [
    [100, 10_000],
    [300, 1_000],
  ] as const) {
    const genStart = performance.now();
    const log = new MemoryLog(epochs, perEpoch);
    const genSeconds = (performance.now() - genStart) / 1000;
    const runs = perEpoch === 1_000 && workers > 0 ? [0, workers] : [workers];
    for (const threads of runs) {
      const { seconds, inserts } = await replay(log, threads);
      const rate = inserts / seconds;
      const how =
        threads === 0 ? 'main thread only' : `+${threads} hashing worker${threads > 1 ? 's' : ''}`;
      report(
        `sync: ${fmt(inserts)} labels, ${epochs} epochs of ${fmt(perEpoch)}, ${how}`,
        `${fmt(rate)} labels/s`,
        `${fmt(seconds, 1)} s; ${fmt(before / rate, 1)} raw-hash costs per label; ` +
          `target ≥ 50,000/s${inserts >= 1_000_000 ? ' and 1M in < 60 s' : ''}`,
      );
    }
    report(`  (log generated with core's PrefixTree in ${fmt(genSeconds, 1)} s)`, '');
    if (perEpoch === 1_000) {
      // The tree alone, without the engine around it, on the same batches.
      const tree = new ReplayTree(log.insertCount);
      const start = performance.now();
      for (const packed of log.batches) {
        for (let off = 0; off < packed.length; off += 64) tree.insert(packed, off);
        tree.root();
      }
      const treeRate = log.insertCount / ((performance.now() - start) / 1000);
      report(
        `replay tree alone, same ${fmt(log.insertCount)} labels, main thread`,
        `${fmt(treeRate)} labels/s`,
        `${fmt(before / treeRate, 1)} raw-hash costs per label`,
      );
    }
  }
  const after = baselineSha256(1000);
  report('raw native SHA-256 again, after the runs', `${fmt(after)} /s`);
};

export default bench;
