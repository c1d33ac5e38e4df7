/**
 * Merkle log benchmarks (RFC 9162 §2.1) on the native (`node:crypto`) backend:
 * - tree hashing: `rootHash` of 1M leaf hashes (1M − 1 interior nodes) as a fraction of the raw
 *   native SHA-256 call rate on 65-byte inputs (target ≥ 60 %);
 * - the same 1M leaves through merkletreejs in RFC 6962 mode, also hashing natively
 *   (target: ours ≥ 1.5× faster);
 * - `MemoryTree` appends and proof generation, inclusion and consistency verifications per second.
 *
 * The machines are shared and often loaded, so each ratio is taken from paired measurements of
 * process CPU time (baseline, then ours, alternately) and reported as the median of the pairs.
 * @module
 */
import { hash } from 'node:crypto';
import { MerkleTree } from 'merkletreejs';
import { NODE_CRYPTO_BACKEND } from '@keytrail/server-kit';
import { setCryptoBackend } from '../src/crypto.ts';
import {
  CompactRange,
  MemoryTree,
  leafHash,
  rootHash,
  verifyConsistency,
  verifyInclusion,
} from '../src/merkle.ts';
import {
  baselineSha256,
  fmt,
  opsPerSecond,
  report,
  type Bench,
} from '../../../scripts/bench-util.ts';

const LEAVES = 1_000_000;
const NODES = LEAVES - 1;

/** CPU time (user + system, all threads) of one call, in milliseconds. */
function cpuMs(fn: () => unknown): number {
  const start = process.cpuUsage();
  fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

/** Median over `rounds` of cpu(base) / cpu(candidate), measured back to back. */
function pairedRatio(
  base: () => unknown,
  candidate: () => unknown,
  rounds: number,
): { ratio: number; baseMs: number; candidateMs: number } {
  const ratios: number[] = [];
  const baseTimes: number[] = [];
  const candidateTimes: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const b = cpuMs(base);
    const c = cpuMs(candidate);
    baseTimes.push(b);
    candidateTimes.push(c);
    ratios.push(b / c);
  }
  return { ratio: median(ratios), baseMs: median(baseTimes), candidateMs: median(candidateTimes) };
}

const bench: Bench = () => {
  const previous = setCryptoBackend(NODE_CRYPTO_BACKEND);
  try {
    const leaves = Array.from({ length: LEAVES }, (_, i) => {
      const entry = new Uint8Array(8);
      new DataView(entry.buffer).setFloat64(0, i);
      return leafHash(entry);
    });
    const raw = baselineSha256();
    report('raw native SHA-256, 65-byte input (bench-util baseline)', `${fmt(raw)} /s`);

    // Baseline for the tree: the same number of raw calls as the tree has interior nodes.
    const node = new Uint8Array(65);
    const rawCalls = (): void => {
      for (let i = 0; i < NODES; i++) hash('sha256', node, 'buffer');
    };
    const tree = pairedRatio(rawCalls, () => rootHash(leaves), 5);
    report(
      'rootHash, 1M leaves: raw SHA-256 calls / tree nodes (CPU)',
      `${fmt(100 * tree.ratio, 1)}%`,
      `target ≥ 60%; ${fmt(tree.candidateMs, 0)} ms CPU for 1M leaves = ` +
        `${fmt((NODES * 1000) / tree.candidateMs)} nodes/s vs raw ${fmt((NODES * 1000) / tree.baseMs)}/s`,
    );

    // merkletreejs in RFC 6962 mode: 0x01 node prefix via the concatenator, no sorting, the odd
    // node promoted rather than duplicated, leaves given as hashes; native SHA-256 as well.
    const buffers = leaves.map((l) => Buffer.from(l.buffer, l.byteOffset, l.length));
    const nativeSha = (data: Buffer): Buffer => hash('sha256', data, 'buffer');
    const prefix = Buffer.of(1);
    let theirs = '';
    const merkletreejs = (): void => {
      const t = new MerkleTree(buffers, nativeSha, {
        concatenator: (parts: Buffer[]) => Buffer.concat([prefix, ...parts]),
      });
      theirs = t.getRoot().toString('hex');
    };
    const versus = pairedRatio(merkletreejs, () => rootHash(leaves), 3);
    if (theirs !== Buffer.from(rootHash(leaves)).toString('hex')) {
      throw new Error('merkletreejs disagrees on the root');
    }
    report(
      'rootHash vs merkletreejs, same 1M leaves, both native (CPU)',
      `${fmt(versus.ratio, 2)}× faster`,
      `target ≥ 1.5×; merkletreejs ${fmt(versus.baseMs, 0)} ms, ours ${fmt(versus.candidateMs, 0)} ms`,
    );

    const frontier = pairedRatio(
      rawCalls,
      () => {
        const range = new CompactRange();
        for (const l of leaves) range.append(l);
      },
      3,
    );
    report('CompactRange.append × 1M (CPU, vs raw calls)', `${fmt(100 * frontier.ratio, 1)}%`);
    const memory = pairedRatio(rawCalls, () => MemoryTree.from(leaves), 3);
    report(
      'MemoryTree.from(1M leaves) (CPU, vs raw calls)',
      `${fmt(100 * memory.ratio, 1)}%`,
      `${fmt((LEAVES * 1000) / memory.candidateMs)} appends/s`,
    );

    const memTree = MemoryTree.from(leaves);
    const root = memTree.root();
    const index = 777_777;
    const inclusion = memTree.inclusionProof(index);
    const leaf = leaves[index] as Uint8Array;
    const verifyRate = opsPerSecond(() => {
      verifyInclusion(leaf, index, LEAVES, inclusion, root);
    });
    report(
      `verifyInclusion, size 1M (${inclusion.length} hashes)`,
      `${fmt(verifyRate)} /s`,
      `wall clock; raw SHA-256 now ${fmt(baselineSha256(500))}/s`,
    );
    const oldSize = 654_321;
    const consistency = memTree.consistencyProof(oldSize);
    const oldRoot = memTree.root(oldSize);
    const consistencyRate = opsPerSecond(() => {
      verifyConsistency(oldSize, LEAVES, consistency, oldRoot, root);
    });
    report(
      `verifyConsistency, 654,321 → 1M (${consistency.length} hashes)`,
      `${fmt(consistencyRate)} /s`,
    );
    report(
      'MemoryTree.inclusionProof, size 1M',
      `${fmt(opsPerSecond(() => memTree.inclusionProof(index)))} /s`,
    );
    report(
      'MemoryTree.consistencyProof, 654,321 → 1M',
      `${fmt(opsPerSecond(() => memTree.consistencyProof(oldSize)))} /s`,
    );
  } finally {
    setCryptoBackend(previous);
  }
  return Promise.resolve();
};

export default bench;
