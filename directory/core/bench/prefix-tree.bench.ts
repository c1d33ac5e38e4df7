/**
 * KEYTRANS prefix-tree benchmarks on the native (`node:crypto`) SHA-256 backend:
 * - bulk build of 1M entries (the directory's start-up rebuild from stored leaves);
 * - a batch insert of 100k keys into that 1M-key tree, in keys/s (target ≥ 50,000), beside the
 *   raw native SHA-256 call rate on 65-byte inputs measured in the same round;
 * - proof generation, verification and proof sizes in the resulting tree.
 *
 * The machines are shared and often loaded, so figures use process CPU time and each is the
 * median of three rounds (build, raw baseline, batch).
 * @module
 */
import { hash, randomBytes } from 'node:crypto';
import { NODE_CRYPTO_BACKEND } from '@keytrail/server-kit';
import { setCryptoBackend } from '../src/crypto.ts';
import * as pt from '../src/prefix-tree.ts';
import { fmt, opsPerSecond, report, type Bench } from '../../../scripts/bench-util.ts';

const TREE = 1_000_000;
const BATCH = 100_000;
const ROUNDS = 3;

function cpuMs(fn: () => unknown): number {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

function compareKeys(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < 32; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}

function randomEntries(n: number): pt.PrefixEntry[] {
  const bytes = new Uint8Array(randomBytes(n * 64));
  return Array.from({ length: n }, (_, i) => ({
    key: bytes.subarray(i * 64, i * 64 + 32),
    commitment: bytes.subarray(i * 64 + 32, i * 64 + 64),
  }));
}

const bench: Bench = () => {
  const previous = setCryptoBackend(NODE_CRYPTO_BACKEND);
  try {
    const sorted = randomEntries(TREE).sort((a, b) => compareKeys(a.key, b.key));
    const input = new Uint8Array(65);
    const RAW_CALLS = 500_000;
    const raw = (): void => {
      for (let i = 0; i < RAW_CALLS; i++) hash('sha256', input, 'buffer');
    };
    raw();

    const buildMs: number[] = [];
    const rawRate: number[] = [];
    const batchMs: number[] = [];
    const batchWallMs: number[] = [];
    let tree = new pt.PrefixTree();
    let parentsAfterBuild = 0;
    let bytesAfterBuild = 0;
    for (let r = 0; r < ROUNDS; r++) {
      buildMs.push(
        cpuMs(() => {
          tree = pt.PrefixTree.build(sorted);
        }),
      );
      parentsAfterBuild = tree.parentCount;
      bytesAfterBuild = tree.byteSize;
      rawRate.push((RAW_CALLS * 1000) / cpuMs(raw));
      const batch = randomEntries(BATCH);
      const wall = performance.now();
      batchMs.push(
        cpuMs(() => {
          tree.insertBatch(batch);
        }),
      );
      batchWallMs.push(performance.now() - wall);
    }
    const rawPerS = median(rawRate);
    report('raw native SHA-256, 65-byte input (CPU, baseline)', `${fmt(rawPerS)} /s`);

    const build = median(buildMs);
    const buildHashes = TREE + parentsAfterBuild;
    report(
      'build 1M sorted entries (CPU)',
      `${fmt(build / 1000, 2)} s`,
      `${fmt(buildHashes)} hashes = ${fmt((100 * buildHashes * 1000) / build / rawPerS, 1)}% of the raw rate; ` +
        `${fmt(parentsAfterBuild)} parents; ${fmt(bytesAfterBuild / 1e6)} MB of arrays ` +
        `(${fmt(bytesAfterBuild / TREE)} bytes per leaf, 1/8 headroom included)`,
    );
    const keysPerS = (BATCH * 1000) / median(batchMs);
    report(
      'insertBatch 100k keys into 1M (CPU)',
      `${fmt(keysPerS)} keys/s`,
      `target ≥ 50,000; ${fmt(rawPerS / keysPerS, 1)} raw-hash costs per key; ` +
        `wall ${fmt((BATCH * 1000) / median(batchWallMs))} keys/s`,
    );

    const present = sorted[123_457] as pt.PrefixEntry;
    const absent = new Uint8Array(randomBytes(32));
    const root = tree.root();
    const proof = tree.prove(present.key);
    report(
      `prove one key, ${fmt(tree.size)}-key tree`,
      `${fmt(opsPerSecond(() => tree.prove(present.key), 500))} /s`,
      `${fmt(pt.encodeProof(proof).length)} bytes, depth ${proof.results[0]?.depth ?? 0}`,
    );
    report(
      'verify inclusion (native SHA-256)',
      `${fmt(opsPerSecond(() => pt.verify(root, present.key, proof, present.commitment), 500))} /s`,
    );
    // A lookup's binary ladder: several versions of one label in one proof.
    const ladder = [0, 1, 3, 7].map((i) => (sorted[200_000 + i * 1000] as pt.PrefixEntry).key);
    ladder.push(absent);
    const many = tree.proveMany(ladder);
    report(
      'proveMany, 4 present + 1 absent key',
      `${fmt(pt.encodeProof(many).length)} bytes`,
      `vs ${fmt(ladder.reduce((n, k) => n + pt.encodeProof(tree.prove(k)).length, 0))} bytes as five proofs`,
    );
  } finally {
    setCryptoBackend(previous);
  }
  return Promise.resolve();
};

export default bench;
