/**
 * SHA-256 (FIPS 180-4) of attachment chunks on worker threads (`PROTOCOL.md` §9). The attachment
 * digest hashes every ciphertext byte, which costs about as much as the XChaCha20-Poly1305 itself,
 * so the Node provider runs the AEAD on the calling thread and the hashes beside it.
 *
 * Only ciphertext crosses threads, through shared memory and without messages:
 *
 * - a ring of `slots` slots of 256 KiB + 16 bytes in a `SharedArrayBuffer`; the caller copies a
 *   chunk into the slot of its sequence number and publishes it by advancing `SUBMITTED`;
 * - each worker claims the next sequence number with a compare-and-swap on `CLAIMED`, hashes the
 *   slot, writes the 32-byte hash beside it and marks the slot done with its sequence number;
 * - the caller collects results in sequence order, so a slot is handed out again only after its
 *   hash was read; a chunk that finds the ring full (or is larger than a slot) is hashed on the
 *   calling thread instead, so memory stays bounded whatever the callers do.
 *
 * Every hand-over is an `Atomics` store read by an `Atomics` load on the other side (the JavaScript
 * memory model's synchronisation), so the plain writes before it are visible. A worker that finds
 * nothing to do waits on `SUBMITTED` and is woken only if it said it sleeps; the caller learns of
 * finished hashes by reading the ring, or through `Atomics.waitAsync` when it has nothing else to
 * do. Measured alternatives, on two cores: one message per chunk cost a cross-thread wake-up each
 * (about 60 µs of CPU in a VM); transferring `ArrayBuffer`s instead of copying cost more in garbage
 * collection than the copy; running the AEAD in workers too left the two cores shared by the AEAD,
 * the hashes and the copies, which was slower than the AEAD alone on the calling thread.
 *
 * Workers start on first use. They keep the event loop alive while hashes are pending (a pending
 * `Atomics.waitAsync` does not) and stop doing so after {@link IDLE_UNREF_MS} without work, so an
 * idle hasher never keeps a process alive. (Doing so per chunk instead halved the throughput.) A
 * worker that dies fails every pending hash with an `Error`, never a silent hang, and the next
 * hash starts afresh; {@link ChunkHasher.close} stops the workers.
 * @module
 */
import { hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** Largest chunk a slot holds: 256 KiB of ciphertext and the 16-byte tag. */
export const SLOT_SIZE: number = 256 * 1024 + 16;
/** How long the hasher stays without work before it stops keeping the event loop alive. */
export const IDLE_UNREF_MS = 50;

// Int32 indices of the control words.
const SUBMITTED = 0; // sequence numbers published by the caller
const CLAIMED = 1; // sequence numbers taken by workers
const SLEEPERS = 2; // workers waiting on SUBMITTED
const FINISHED = 3; // bumped after every hash, for Atomics.waitAsync
const STOP = 4; // 1: workers return
const FAILED = 5; // 1: a worker caught an error
const HEADER_WORDS = 8;

/**
 * The worker: CommonJS evaluated from a string, so that it needs no file of its own (and no
 * TypeScript loader) wherever the provider is bundled or run from source. It blocks in
 * `Atomics.wait` between chunks and never runs its event loop.
 */
const WORKER_SOURCE = `'use strict';
const { workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { control, ring, slots, slotSize } = workerData;
const ctl = new Int32Array(control);
const length = new Int32Array(control, ${HEADER_WORDS * 4}, slots);
const done = new Int32Array(control, ${HEADER_WORDS * 4} + 4 * slots, slots);
const hashes = new Uint8Array(control, ${HEADER_WORDS * 4} + 8 * slots, 32 * slots);
const bytes = new Uint8Array(ring);
try {
  for (;;) {
    if (Atomics.load(ctl, ${STOP}) === 1) break;
    const seq = Atomics.load(ctl, ${CLAIMED});
    if (seq === Atomics.load(ctl, ${SUBMITTED})) {
      Atomics.add(ctl, ${SLEEPERS}, 1);
      // Re-read after announcing the sleep: a submit in between either is seen here or notifies.
      if (seq === Atomics.load(ctl, ${SUBMITTED}) && Atomics.load(ctl, ${STOP}) === 0) {
        Atomics.wait(ctl, ${SUBMITTED}, seq);
      }
      Atomics.sub(ctl, ${SLEEPERS}, 1);
      continue;
    }
    if (Atomics.compareExchange(ctl, ${CLAIMED}, seq, seq + 1) !== seq) continue;
    const slot = seq % slots;
    const off = slot * slotSize;
    hashes.set(createHash('sha256').update(bytes.subarray(off, off + length[slot])).digest(), 32 * slot);
    Atomics.store(done, slot, seq + 1);
    Atomics.add(ctl, ${FINISHED}, 1);
    Atomics.notify(ctl, ${FINISHED});
  }
} catch (e) {
  Atomics.store(ctl, ${FAILED}, 1);
  Atomics.add(ctl, ${FINISHED}, 1);
  Atomics.notify(ctl, ${FINISHED});
  throw e;
}
`;

interface Pending {
  resolve(h: Uint8Array): void;
  reject(e: Error): void;
}

/** One ring with the workers that read it; dropped whole on a failure or `close`. */
interface Generation {
  readonly ctl: Int32Array;
  readonly length: Int32Array;
  readonly done: Int32Array;
  readonly hashes: Uint8Array;
  readonly ring: Uint8Array;
  readonly workers: Worker[];
  /** Sequence numbers submitted and collected by this thread. */
  submitted: number;
  collected: number;
  readonly pending: Map<number, Pending>;
  /** Whether an `Atomics.waitAsync` is armed, and whether the workers hold the event loop. */
  armed: boolean;
  refed: boolean;
  idleSince: number;
  idleTimer: ReturnType<typeof setTimeout> | undefined;
}

/** SHA-256 of chunks on `workers` threads through a ring of `slots` shared slots. */
export class ChunkHasher {
  private readonly workers: number;
  private readonly slots: number;
  private gen: Generation | undefined;

  constructor(workers: number, slots: number) {
    if (!Number.isInteger(workers) || workers < 1) throw new RangeError('workers must be ≥ 1');
    if (!Number.isInteger(slots) || slots < 1) throw new RangeError('slots must be ≥ 1');
    this.workers = workers;
    this.slots = slots;
  }

  /** Worker threads currently started. */
  get threads(): number {
    return this.gen?.workers.length ?? 0;
  }

  /** Chunks submitted to the workers and not yet collected (at most the number of slots). */
  get inFlight(): number {
    return this.gen === undefined ? 0 : this.gen.submitted - this.gen.collected;
  }

  /**
   * SHA-256 of `data`. The bytes are copied before this returns, so the caller may reuse them.
   * @throws Error (rejects) when a worker fails or the hasher is closed meanwhile
   */
  hash(data: Uint8Array): Promise<Uint8Array> {
    const gen = (this.gen ??= this.start());
    this.collect(gen);
    const seq = gen.submitted;
    if (data.length > SLOT_SIZE || seq - gen.collected >= this.slots) {
      return Promise.resolve(sha256(data));
    }
    const slot = seq % this.slots;
    gen.ring.set(data, slot * SLOT_SIZE);
    gen.length[slot] = data.length;
    const result = new Promise<Uint8Array>((resolve, reject) => {
      gen.pending.set(seq, { resolve, reject });
    });
    gen.submitted = seq + 1;
    Atomics.store(gen.ctl, SUBMITTED, seq + 1);
    if (Atomics.load(gen.ctl, SLEEPERS) > 0) Atomics.notify(gen.ctl, SUBMITTED, 1);
    if (!gen.refed) {
      gen.refed = true;
      for (const w of gen.workers) w.ref();
    }
    this.arm(gen);
    return result;
  }

  /** Stops the workers; pending hashes reject. A later hash starts new ones. */
  async close(): Promise<void> {
    const gen = this.gen;
    if (gen === undefined) return;
    this.drop(gen, new Error('attachment hash workers closed'));
    await Promise.all(gen.workers.map((w) => w.terminate()));
  }

  private start(): Generation {
    const words = HEADER_WORDS + 2 * this.slots;
    const control = new SharedArrayBuffer(4 * words + 32 * this.slots);
    const ring = new SharedArrayBuffer(this.slots * SLOT_SIZE);
    const gen: Generation = {
      ctl: new Int32Array(control, 0, HEADER_WORDS),
      length: new Int32Array(control, 4 * HEADER_WORDS, this.slots),
      done: new Int32Array(control, 4 * HEADER_WORDS + 4 * this.slots, this.slots),
      hashes: new Uint8Array(control, 4 * words, 32 * this.slots),
      ring: new Uint8Array(ring),
      workers: [],
      submitted: 0,
      collected: 0,
      pending: new Map(),
      armed: false,
      refed: false,
      idleSince: 0,
      idleTimer: undefined,
    };
    for (let i = 0; i < this.workers; i++) {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        name: 'keytrail-attachment-hash',
        workerData: { control, ring, slots: this.slots, slotSize: SLOT_SIZE },
      });
      worker.unref();
      const failed = (e: Error): void => {
        if (this.gen === gen) this.drop(gen, e);
      };
      worker.on('error', (e) => {
        failed(new Error('attachment hash worker failed', { cause: e }));
      });
      worker.on('exit', (code) => {
        failed(new Error(`attachment hash worker exited (code ${code})`));
      });
      gen.workers.push(worker);
    }
    return gen;
  }

  /** Resolves the finished hashes, in sequence order (so slots are reused only once read). */
  private collect(gen: Generation): void {
    while (gen.collected < gen.submitted) {
      const seq = gen.collected;
      const slot = seq % this.slots;
      if (Atomics.load(gen.done, slot) !== seq + 1) break;
      const h = gen.hashes.slice(32 * slot, 32 * slot + 32);
      gen.collected = seq + 1;
      const p = gen.pending.get(seq);
      gen.pending.delete(seq);
      p?.resolve(h);
    }
    if (gen.pending.size === 0) this.idle(gen);
  }

  /** Waits (without blocking) for the workers' next result while hashes are pending. */
  private arm(gen: Generation): void {
    if (gen.armed || this.gen !== gen) return;
    // Read the counter before collecting: a hash that finishes after the collection bumps it
    // past `seen`, so the wait below cannot miss it (reading it after would lose that wake-up).
    const seen = Atomics.load(gen.ctl, FINISHED);
    this.collect(gen);
    if (gen.pending.size === 0) return;
    const wake = (): void => {
      gen.armed = false;
      if (this.gen !== gen) return;
      if (Atomics.load(gen.ctl, FAILED) === 1) {
        this.drop(gen, new Error('attachment hash worker failed'));
        return;
      }
      this.arm(gen);
    };
    gen.armed = true;
    const w = Atomics.waitAsync(gen.ctl, FINISHED, seen);
    if (w.async) void w.value.then(wake);
    else queueMicrotask(wake);
  }

  /** Releases the event loop once the hasher has stayed without work for IDLE_UNREF_MS. */
  private idle(gen: Generation): void {
    gen.idleSince = performance.now();
    if (gen.idleTimer !== undefined || !gen.refed) return;
    const check = (): void => {
      gen.idleTimer = undefined;
      if (gen.pending.size !== 0 || !gen.refed) return;
      const left = gen.idleSince + IDLE_UNREF_MS - performance.now();
      if (left > 0) {
        gen.idleTimer = setTimeout(check, left);
        gen.idleTimer.unref();
        return;
      }
      gen.refed = false;
      for (const w of gen.workers) w.unref();
    };
    gen.idleTimer = setTimeout(check, IDLE_UNREF_MS);
    // The referenced workers keep the loop alive meanwhile; the timer itself must not.
    gen.idleTimer.unref();
  }

  /** Forgets a generation: its workers stop, its pending hashes reject; the next hash starts anew. */
  private drop(gen: Generation, e: Error): void {
    if (this.gen === gen) this.gen = undefined;
    if (gen.idleTimer !== undefined) clearTimeout(gen.idleTimer);
    gen.idleTimer = undefined;
    gen.refed = false;
    Atomics.store(gen.ctl, STOP, 1);
    Atomics.notify(gen.ctl, SUBMITTED);
    // Wakes an armed waitAsync, which then finds the generation gone.
    Atomics.add(gen.ctl, FINISHED, 1);
    Atomics.notify(gen.ctl, FINISHED);
    for (const w of gen.workers) w.unref();
    const pending = [...gen.pending.values()];
    gen.pending.clear();
    for (const p of pending) p.reject(e);
  }
}

function sha256(data: Uint8Array): Uint8Array {
  const h = hash('sha256', data, 'buffer');
  return new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
}
