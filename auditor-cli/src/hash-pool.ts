/**
 * Worker threads that share the replay tree's hashing with the main thread. The tree's records
 * live in SharedArrayBuffers. A job is a list of independent pieces — chunks of new leaf slots,
 * or disjoint dirty subtrees ("units") — that the main thread and the workers claim one at a
 * time from a shared counter, so whoever runs does the work: a worker that the (shared, often
 * loaded) machine has not scheduled yet costs nothing, and the main thread waits only for
 * pieces a worker has actually claimed.
 *
 * Pieces never overlap, so no two threads write the same bytes, and each reads only bytes it or
 * an earlier job wrote. Ordering comes from the atomics (sequentially consistent): a job's
 * parameters are written before it is published, a piece's hashes before it is counted done.
 * The claim counter carries the job's tag in its high bits and is closed between jobs, so a
 * worker that wakes late can never claim a piece with another job's parameters.
 *
 * Workers run the same kernel source as the main thread (`hash-kernel.ts`) and hash with
 * `node:crypto`, as the main thread does once the CLI installs the native backend.
 * @module
 */
import { Worker, MessageChannel, type MessagePort } from 'node:worker_threads';
import { hashLeaves, rehashUnits } from './hash-kernel.ts';

/** Control block words (one block shared by all workers). */
const SEQ = 0;
const OP = 1;
const A = 2;
const B = 3;
const N = 4;
const CHUNK = 5;
const GEN = 6;
const FAILED = 7;
const CLAIM = 8;
const DONE = 9;
const WORDS = 10;

const OP_LEAVES = 1;
const OP_UNITS = 2;
const OP_EXIT = -1;
/** CLAIM between jobs: tag 0 never matches a job, index 0xffff is past every job. */
const CLOSED = 0xffff;

/** Most subtree units (or leaf chunks) one job can carry. */
export const MAX_UNITS = 4096;

// The worker: CommonJS, evaluated from source. `__name` stubs the helper that esbuild's
// keepNames mode may insert into transformed function bodies.
const WORKER_SOURCE = `
'use strict';
const { workerData, receiveMessageOnPort } = require('node:worker_threads');
const { hash } = require('node:crypto');
var __name = (f) => f;
const hashLeaves = ${hashLeaves.toString()};
const rehashUnits = ${rehashUnits.toString()};
const { control, units, port } = workerData;
const sha256 = (d) => hash('sha256', d, 'buffer');
const scratch8 = new Uint8Array(72);
const scratch32 = new Int32Array(scratch8.buffer);
const input = scratch8.subarray(3, 68);
const stack = new Int32Array(512);
let node8, node32, leaf8, leaf32;
let gen = -1;
let seen = 0;
for (;;) {
  Atomics.wait(control, ${SEQ}, seen);
  const seq = Atomics.load(control, ${SEQ});
  seen = seq;
  const op = control[${OP}];
  if (op === ${OP_EXIT}) break;
  const a = control[${A}], b = control[${B}], n = control[${N}], chunk = control[${CHUNK}];
  const want = control[${GEN}];
  try {
    for (;;) {
      const v = Atomics.load(control, ${CLAIM});
      if (v >>> 16 !== seq || (v & 0xffff) >= n) break;
      if (Atomics.compareExchange(control, ${CLAIM}, v, v + 1) !== v) continue;
      // A claim holds the job open, so its parameters (read above under this tag) stay valid.
      while (gen !== want) {
        const m = receiveMessageOnPort(port);
        if (!m) throw new Error('memory generation ' + want + ' was not sent');
        gen = m.message.gen;
        node8 = new Uint8Array(m.message.node);
        node32 = new Int32Array(m.message.node);
        leaf8 = new Uint8Array(m.message.leaf);
        leaf32 = new Int32Array(m.message.leaf);
      }
      const i = v & 0xffff;
      if (op === ${OP_LEAVES}) {
        hashLeaves(leaf8, a + i * chunk, Math.min(b, a + (i + 1) * chunk), input, sha256);
      } else {
        rehashUnits(node8, node32, leaf32, units, i, 1, i + 1, scratch32, input, stack, sha256);
      }
      Atomics.add(control, ${DONE}, 1);
      Atomics.notify(control, ${DONE});
    }
  } catch (e) {
    Atomics.store(control, ${FAILED}, 1);
    Atomics.add(control, ${DONE}, 1);
    Atomics.notify(control, ${DONE});
  }
}
`;

interface PoolWorker {
  readonly worker: Worker;
  readonly port: MessagePort;
  gen: number;
}

/** A fixed set of hashing workers. */
export class HashPool {
  readonly #workers: PoolWorker[];
  readonly #control: Int32Array;
  /** Subtree roots of the current job, shared with the workers. */
  readonly units: Int32Array;
  #seq = 0;
  #gen = 0;
  #node: SharedArrayBuffer | undefined;
  #leaf: SharedArrayBuffer | undefined;
  #closed = false;

  private constructor(workers: PoolWorker[], control: Int32Array, units: Int32Array) {
    this.#workers = workers;
    this.#control = control;
    this.units = units;
  }

  /** Starts `threads` workers (at least 1) and waits until they run. */
  static async start(threads: number): Promise<HashPool> {
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError('HashPool: threads ≥ 1');
    const units = new Int32Array(new SharedArrayBuffer(MAX_UNITS * 4));
    const control = new Int32Array(new SharedArrayBuffer(WORDS * 4));
    control[CLAIM] = CLOSED;
    const workers: PoolWorker[] = [];
    for (let i = 0; i < threads; i++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { control, units, port: port2 },
        transferList: [port2],
      });
      workers.push({ worker, port: port1, gen: -1 });
    }
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            w.worker.once('online', () => {
              resolve();
            });
            w.worker.once('error', reject);
          }),
      ),
    );
    // Blocked in Atomics.wait between jobs: never keep the process alive for them (unref'd
    // only now, so that the process waits for them to come online).
    for (const w of workers) w.worker.unref();
    return new HashPool(workers, control, units);
  }

  /** Number of worker threads (the main thread works too). */
  get size(): number {
    return this.#workers.length;
  }

  /** Points the workers at (new) shared record buffers; sent with the next job. */
  setMemory(node: SharedArrayBuffer, leaf: SharedArrayBuffer): void {
    if (node === this.#node && leaf === this.#leaf) return;
    this.#node = node;
    this.#leaf = leaf;
    this.#gen++;
  }

  /** Publishes a job of `n` pieces, works on it, and returns when every piece is done. */
  #run(
    op: number,
    a: number,
    b: number,
    n: number,
    chunk: number,
    piece: (i: number) => void,
  ): void {
    if (this.#closed) throw new Error('HashPool: closed');
    if (n > 0xffff) throw new RangeError('HashPool: too many pieces');
    const ctl = this.#control;
    // Tags cycle through 1..32767; 0 is the closed tag.
    const seq = (this.#seq % 0x7fff) + 1;
    this.#seq = seq;
    for (const w of this.#workers) {
      if (w.gen !== this.#gen) {
        w.port.postMessage({ gen: this.#gen, node: this.#node, leaf: this.#leaf });
        w.gen = this.#gen;
      }
    }
    ctl[OP] = op;
    ctl[A] = a;
    ctl[B] = b;
    ctl[N] = n;
    ctl[CHUNK] = chunk;
    ctl[GEN] = this.#gen;
    Atomics.store(ctl, DONE, 0);
    Atomics.store(ctl, CLAIM, seq << 16);
    Atomics.store(ctl, SEQ, seq);
    Atomics.notify(ctl, SEQ);
    try {
      for (;;) {
        const v = Atomics.load(ctl, CLAIM);
        if ((v & 0xffff) >= n) break;
        if (Atomics.compareExchange(ctl, CLAIM, v, v + 1) !== v) continue;
        piece(v & 0xffff);
        Atomics.add(ctl, DONE, 1);
      }
      // Only pieces a worker claimed are left: wait for those. A worker that died without
      // throwing (killed thread, out of memory) would never report; give up after a minute
      // without progress rather than hang.
      let last = Atomics.load(ctl, DONE);
      let since = performance.now();
      for (;;) {
        const done = Atomics.load(ctl, DONE);
        if (done >= n) break;
        if (done !== last) {
          last = done;
          since = performance.now();
        } else if (performance.now() - since > 60_000) {
          throw new Error('HashPool: a hashing worker stopped responding');
        }
        Atomics.wait(ctl, DONE, done, 1000);
      }
    } finally {
      Atomics.store(ctl, CLAIM, CLOSED);
    }
    if (Atomics.load(ctl, FAILED) === 1) throw new Error('HashPool: a hashing worker failed');
  }

  /**
   * Hashes leaf slots `[from, to)` in chunks; `mine(a, b)` hashes a chunk on this thread.
   */
  hashLeaves(from: number, to: number, mine: (from: number, to: number) => void): void {
    const chunk = Math.max(128, Math.ceil((to - from) / MAX_UNITS));
    const n = Math.ceil((to - from) / chunk);
    this.#run(OP_LEAVES, from, to, n, chunk, (i) => {
      mine(from + i * chunk, Math.min(to, from + (i + 1) * chunk));
    });
  }

  /** Rehashes the dirty subtrees rooted at `units[0..count)`; `mine(i)` does unit i here. */
  rehashUnits(count: number, mine: (i: number) => void): void {
    this.#run(OP_UNITS, 0, 0, count, 0, mine);
  }

  /** Stops the workers. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const ctl = this.#control;
    ctl[OP] = OP_EXIT;
    Atomics.store(ctl, SEQ, 0x7fff + 1);
    Atomics.notify(ctl, SEQ);
    await Promise.all(
      this.#workers.map(async (w) => {
        w.port.close();
        await w.worker.terminate();
      }),
    );
  }
}
