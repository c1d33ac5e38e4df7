/**
 * An in-memory directory log for benchmarks: random labels in sealed epochs, roots computed by
 * `@keytrail/core`'s PrefixTree (the directory's implementation, not the auditor's), records in
 * an RFC 9162 MemoryTree, a signed checkpoint, and a {@link DirectorySource} that serves it all
 * without HTTP, so that the benchmark measures the replay itself.
 * @module
 */
import { randomFillSync } from 'node:crypto';
import { checkpoint, epoch as epochRecord, merkle, note, prefixTree, bytes } from '@keytrail/core';
import type { DirectorySource, InsertsPage } from '../src/directory-source.ts';
import type { TrustConfig } from '../src/trust.ts';
import { compare32 } from '../src/evidence.ts';

const ORIGIN = 'bench.keytrail.test/directory';

/** Sorts the 64-byte entries of `packed` by label, in place. */
function sortPacked(packed: Uint8Array): Uint8Array {
  const n = packed.length / 64;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
    compare32(packed, a * 64, packed, b * 64),
  );
  const out = new Uint8Array(packed.length);
  order.forEach((from, to) => {
    out.set(packed.subarray(from * 64, from * 64 + 64), to * 64);
  });
  return out;
}

/** A log of `epochs` epochs of `perEpoch` random inserts after the empty epoch 0. */
export class MemoryLog implements DirectorySource {
  readonly name = 'memory';
  readonly records: Uint8Array[] = [];
  readonly batches: Uint8Array[] = [];
  readonly tree = new merkle.MemoryTree();
  readonly trust: TrustConfig;
  readonly #note: string;

  constructor(epochs: number, perEpoch: number) {
    const prefix = new prefixTree.PrefixTree();
    const seed = new Uint8Array(32).fill(42);
    const signer = note.ed25519Signer(ORIGIN, seed);
    let ts = Date.UTC(2026, 0, 1);
    const seal = (packed: Uint8Array): void => {
      const n = packed.length / 64;
      if (n > 0) {
        const batch: prefixTree.PrefixEntry[] = [];
        for (let i = 0; i < n; i++) {
          batch.push({
            key: packed.subarray(i * 64, i * 64 + 32),
            commitment: packed.subarray(i * 64 + 32, i * 64 + 64),
          });
        }
        prefix.insertBatch(batch);
      }
      const record = epochRecord.encodeEpochRecord({
        epoch: this.records.length,
        timestampMs: (ts += 1000),
        prefixRoot: prefix.root(),
        insertCount: n,
        insertsDigest: digest(packed),
      });
      this.records.push(record);
      this.batches.push(packed);
      this.tree.append(merkle.leafHash(record));
    };
    seal(new Uint8Array(0));
    for (let e = 0; e < epochs; e++) {
      const packed = new Uint8Array(perEpoch * 64);
      randomFillSync(packed);
      seal(sortPacked(packed));
    }
    const body = checkpoint.format({
      origin: ORIGIN,
      size: this.records.length,
      root: this.tree.root(),
      extensions: [],
    });
    this.#note = note.sign(body, [signer]);
    this.trust = {
      origin: ORIGIN,
      logKey: note.formatVerifierKey(ORIGIN, signer.publicKey),
      vrfPublicKey: bytes.toBase64(new Uint8Array(32)),
      witnesses: [],
      quorum: 0,
      maxAgeSeconds: 86_400,
    };
  }

  /** Total inserts. */
  get insertCount(): number {
    return this.batches.reduce((n, p) => n + p.length / 64, 0);
  }

  checkpoint(): Promise<string> {
    return Promise.resolve(this.#note);
  }

  consistency(from: number, to: number): Promise<Uint8Array[]> {
    return Promise.resolve(this.tree.consistencyProof(from, to));
  }

  leaves(start: number, end: number): Promise<Uint8Array[]> {
    return Promise.resolve(this.records.slice(start, end));
  }

  inserts(epoch: number, after: Uint8Array | null, limit: number): Promise<InsertsPage> {
    const packed = this.batches[epoch] ?? new Uint8Array(0);
    const n = packed.length / 64;
    // Binary search for the first label strictly after the cursor.
    let lo = 0;
    if (after) {
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (compare32(packed, mid * 64, after, 0) <= 0) lo = mid + 1;
        else hi = mid;
      }
    }
    const end = Math.min(n, lo + limit);
    const entries = packed.subarray(lo * 64, end * 64);
    const next = end < n && end > lo ? packed.slice((end - 1) * 64, (end - 1) * 64 + 32) : null;
    return Promise.resolve({ count: end - lo, entries, next });
  }
}

/** The record's inserts digest of sorted packed inserts. */
function digest(packed: Uint8Array): Uint8Array {
  const list: epochRecord.EpochInsert[] = [];
  for (let i = 0; i < packed.length; i += 64) {
    list.push({ label: packed.subarray(i, i + 32), commitment: packed.subarray(i + 32, i + 64) });
  }
  return epochRecord.insertsDigest(list);
}
