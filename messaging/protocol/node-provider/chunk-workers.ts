/**
 * Whole attachment chunks — the ChaCha20-Poly1305 and the SHA-256 of the sealed bytes — on worker
 * threads (`PROTOCOL.md` §9). The digest hashes every ciphertext byte, which costs about half as
 * much as the AEAD again, so one thread cannot come near the raw AEAD rate. The Node provider
 * therefore shares the chunks of a stream between the calling thread and the workers: a chunk
 * goes to a worker while the worker's queue has room, and is sealed (or opened) and hashed on
 * the calling thread otherwise. Both threads then do the same whole jobs, so the split balances
 * itself on any machine, whatever the relative cost of AEAD, hash and copies there.
 *
 * Jobs cross threads through shared memory and without messages:
 *
 * - a ring of `slots` slots in a `SharedArrayBuffer`, each an input and an output area of
 *   256 KiB + 16 bytes, with the job's ChaCha20-Poly1305 subkey, nonce, associated data and
 *   lengths beside it; the caller copies the input into the slot of its sequence number and
 *   publishes it by advancing `SUBMITTED`;
 * - each worker claims the next sequence number with a compare-and-swap on `CLAIMED`, wipes the
 *   key from the slot as it reads it, runs the AEAD, writes the output, its length (or −1 when
 *   the tag does not verify) and the 32-byte hash, and marks the slot done with its sequence
 *   number;
 * - the caller collects results in sequence order, copying each output out, so a slot is handed
 *   out again only after its result was read.
 *
 * Every hand-over is an `Atomics` store read by an `Atomics` load on the other side (the JavaScript
 * memory model's synchronisation), so the plain writes before it are visible. A worker that finds
 * nothing to do waits on `SUBMITTED` and is woken only if it said it sleeps; the caller learns of
 * finished jobs by reading the ring, or through `Atomics.waitAsync` when it has nothing else to
 * do. Measured alternatives, on two cores: one message per chunk cost a cross-thread wake-up each
 * (about 60 µs of CPU in a VM); transferring `ArrayBuffer`s instead of copying cost more in garbage
 * collection than the copy; AEAD on the calling thread with only the hashes on a worker left the
 * calling thread doing the AEAD, the copy and the garbage while the worker waited (56–72 % of the
 * raw AEAD rate against 80–90 % with whole jobs shared).
 *
 * Workers start on first use. They keep the event loop alive while jobs are pending (a pending
 * `Atomics.waitAsync` does not) and stop doing so after {@link IDLE_UNREF_MS} without work, so an
 * idle pool never keeps a process alive. A worker that dies fails every pending job with an
 * `Error`, never a silent hang, and the next job starts afresh; {@link ChunkWorkers.close} stops
 * the workers.
 *
 * The workers are in this process: the subkey in shared memory is as private as the caller's own
 * heap, and each worker overwrites it with zeros before it starts the job.
 * @module
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

const CRYPTO = { createCipheriv, createDecipheriv, createHash };

/** Largest chunk input or output a slot holds: 256 KiB of ciphertext and the 16-byte tag. */
export const SLOT_SIZE: number = 256 * 1024 + 16;
/** Longest associated data a job carries (attachment chunks carry a 19-byte header). */
export const MAX_AD = 64;
/** How long the pool stays without work before it stops keeping the event loop alive. */
export const IDLE_UNREF_MS = 50;

/** What a job does: seal (encrypt, then hash the sealed bytes) or open (hash, then decrypt). */
export const SEAL = 0;
export const OPEN = 1;

// Int32 indices of the control words.
const SUBMITTED = 0; // sequence numbers published by the caller
const CLAIMED = 1; // sequence numbers taken by workers
const SLEEPERS = 2; // workers waiting on SUBMITTED
const FINISHED = 3; // bumped after every job (and on failure), for Atomics.waitAsync
const STOP = 4; // 1: workers return
const FAILED = 5; // 1: a worker caught an error
const COMPLETED = 6; // jobs finished by workers (not bumped on failure)
const HEADER_WORDS = 8;
// Int32 words per slot: input length, done (sequence number + 1), kind, AD length, result length.
const SLOT_WORDS = 5;
// Bytes per slot beside the ring: subkey 32, nonce 12 (+4), AD, hash 32.
const KEY = 0;
const IV = 32;
const AD = 48;
const HASH = AD + MAX_AD;
const META = HASH + 32;

/** Where a slot's fields live; passed to {@link runJob}, which must not read module scope. */
const LAYOUT = { slotWords: SLOT_WORDS, meta: META, key: KEY, iv: IV, ad: AD, seal: SEAL } as const;

/**
 * Runs the job in `slot`: reads its subkey and nonce and overwrites them with zeros, then seals
 * (encrypt, hash ciphertext ‖ tag) or opens (hash, decrypt) the input. Returns the output as
 * fresh memory (ciphertext and tag apart; `undefined` for a tag that does not verify) and the
 * hash. The workers run it from its source text, so it uses nothing but its parameters and
 * defines no functions inside.
 */
function runJob(
  crypto: Pick<typeof import('node:crypto'), 'createCipheriv' | 'createDecipheriv' | 'createHash'>,
  layout: typeof LAYOUT,
  words: Int32Array,
  meta: Uint8Array,
  bytes: Uint8Array,
  slotSize: number,
  slot: number,
): { output: Uint8Array | undefined; tag: Uint8Array | undefined; sha256: Uint8Array } {
  const w = layout.slotWords * slot;
  const m = layout.meta * slot;
  const n = words[w] ?? 0;
  const key = meta.slice(m + layout.key, m + layout.key + 32);
  const iv = meta.slice(m + layout.iv, m + layout.iv + 12);
  meta.fill(0, m + layout.key, m + layout.ad);
  const ad = meta.slice(m + layout.ad, m + layout.ad + (words[w + 3] ?? 0));
  const inOff = 2 * slotSize * slot;
  const input = bytes.subarray(inOff, inOff + n);
  let result: { output: Uint8Array | undefined; tag: Uint8Array | undefined; sha256: Uint8Array };
  if (words[w + 2] === layout.seal) {
    const c = crypto.createCipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 });
    c.setAAD(ad, { plaintextLength: n });
    const ct = c.update(input);
    c.final();
    const tag = c.getAuthTag();
    const sha256 = crypto.createHash('sha256').update(ct).update(tag).digest();
    result = { output: ct, tag, sha256 };
  } else {
    const sha256 = crypto.createHash('sha256').update(input).digest();
    const d = crypto.createDecipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 });
    d.setAuthTag(input.subarray(n - 16));
    d.setAAD(ad, { plaintextLength: n - 16 });
    const pt = d.update(input.subarray(0, n - 16));
    let ok = true;
    try {
      d.final();
    } catch {
      ok = false;
    }
    result = { output: ok ? pt : undefined, tag: undefined, sha256 };
  }
  key.fill(0);
  return result;
}

/**
 * The worker: CommonJS evaluated from a string, so that it needs no file of its own (and no
 * TypeScript loader) wherever the provider is bundled or run from source. It blocks in
 * `Atomics.wait` between chunks and never runs its event loop. It writes its output into the
 * slot's output area, the result length (−1 for a tag that does not verify) and the hash beside.
 */
const WORKER_SOURCE = `'use strict';
const { workerData } = require('node:worker_threads');
const crypto = require('node:crypto');
const { control, ring, slots, slotSize, layout } = workerData;
const ctl = new Int32Array(control);
const words = new Int32Array(control, ${HEADER_WORDS * 4}, ${SLOT_WORDS} * slots);
const meta = new Uint8Array(control, ${HEADER_WORDS * 4} + ${SLOT_WORDS * 4} * slots, ${META} * slots);
const bytes = new Uint8Array(ring);
const runJob = ${runJob.toString()};
try {
  for (;;) {
    if (Atomics.load(ctl, ${STOP}) === 1) break;
    const seq = Atomics.load(ctl, ${CLAIMED});
    if (seq >= Atomics.load(ctl, ${SUBMITTED})) {
      Atomics.add(ctl, ${SLEEPERS}, 1);
      // Re-read after announcing the sleep: a submit in between either is seen here or notifies.
      const submitted = Atomics.load(ctl, ${SUBMITTED});
      if (seq >= submitted && Atomics.load(ctl, ${STOP}) === 0) {
        Atomics.wait(ctl, ${SUBMITTED}, submitted);
      }
      Atomics.sub(ctl, ${SLEEPERS}, 1);
      continue;
    }
    if (Atomics.compareExchange(ctl, ${CLAIMED}, seq, seq + 1) !== seq) continue;
    const slot = seq % slots;
    const r = runJob(crypto, layout, words, meta, bytes, slotSize, slot);
    const out = (2 * slot + 1) * slotSize;
    const w = ${SLOT_WORDS} * slot;
    if (r.output === undefined) {
      words[w + 4] = -1;
    } else {
      bytes.set(r.output, out);
      if (r.tag !== undefined) bytes.set(r.tag, out + r.output.length);
      words[w + 4] = r.output.length + (r.tag === undefined ? 0 : r.tag.length);
    }
    meta.set(r.sha256, ${META} * slot + ${HASH});
    Atomics.store(words, w + 1, seq + 1);
    Atomics.add(ctl, ${COMPLETED}, 1);
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

/** A job's result. */
export interface ChunkResult {
  /**
   * A seal's ciphertext (followed by {@link tag}, or ‖ tag when that is `undefined`); an open's
   * plaintext, or `undefined` when its tag does not verify.
   */
  readonly output: Uint8Array | undefined;
  /** A seal's tag when it is not at the end of `output`. */
  readonly tag: Uint8Array | undefined;
  /** SHA-256 of the sealed bytes: the output of a seal, the input of an open. */
  readonly sha256: Uint8Array;
}

interface Pending {
  resolve(r: ChunkResult): void;
  reject(e: Error): void;
}

/** One ring with the workers that read it; dropped whole on a failure or `close`. */
interface Generation {
  readonly ctl: Int32Array;
  readonly words: Int32Array;
  readonly meta: Uint8Array;
  readonly ring: Uint8Array;
  readonly workers: Worker[];
  /** Sequence numbers submitted and collected by this thread. */
  submitted: number;
  collected: number;
  readonly pending: Map<number, Pending>;
  /** Results of jobs this thread took back from the queue, by sequence number. */
  readonly stolen: Map<number, ChunkResult>;
  /** Whether an `Atomics.waitAsync` is armed, and whether the workers hold the event loop. */
  armed: boolean;
  refed: boolean;
  idleSince: number;
  idleTimer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * ChaCha20-Poly1305 (RFC 8439) jobs with the SHA-256 of the sealed bytes, on `workers` threads
 * through a ring of `slots` shared slots; at most `queue` jobs wait for or run on the workers.
 */
export class ChunkWorkers {
  private readonly workers: number;
  private readonly slots: number;
  private readonly queue: number;
  private gen: Generation | undefined;

  constructor(workers: number, slots: number, queue: number = 2 * workers) {
    if (!Number.isInteger(workers) || workers < 1) throw new RangeError('workers must be ≥ 1');
    if (!Number.isInteger(slots) || slots < 1) throw new RangeError('slots must be ≥ 1');
    if (!Number.isInteger(queue) || queue < 1) throw new RangeError('queue must be ≥ 1');
    this.workers = workers;
    this.slots = slots;
    this.queue = queue;
  }

  /** Worker threads currently started. */
  get threads(): number {
    return this.gen?.workers.length ?? 0;
  }

  /** Jobs submitted to the workers and not yet collected (at most the number of slots). */
  get inFlight(): number {
    return this.gen === undefined ? 0 : this.gen.submitted - this.gen.collected;
  }

  /**
   * Hands a job to the workers, or returns `undefined` when they have no room for it (their
   * queue or the ring is full, or the input or associated data is larger than a slot holds): the
   * caller then does the job itself. The input is copied before this returns.
   * @throws RangeError on a subkey that is not 32 bytes, a nonce not 12, or an open of less than
   *   a tag
   * @throws Error (rejects) when a worker fails or the pool is closed meanwhile
   */
  submit(
    kind: typeof SEAL | typeof OPEN,
    subkey: Uint8Array,
    iv: Uint8Array,
    input: Uint8Array,
    ad: Uint8Array,
  ): Promise<ChunkResult> | undefined {
    if (subkey.length !== 32 || iv.length !== 12) throw new RangeError('bad ChaCha20 key or nonce');
    if (kind === OPEN && input.length < 16) throw new RangeError('sealed chunk shorter than a tag');
    const max = kind === SEAL ? SLOT_SIZE - 16 : SLOT_SIZE;
    if (input.length > max || ad.length > MAX_AD) return undefined;
    const gen = (this.gen ??= this.start());
    this.collect(gen);
    const seq = gen.submitted;
    if (seq - gen.collected >= this.slots || seq - Atomics.load(gen.ctl, COMPLETED) >= this.queue) {
      return undefined;
    }
    const slot = seq % this.slots;
    gen.ring.set(input, 2 * SLOT_SIZE * slot);
    const w = SLOT_WORDS * slot;
    const m = META * slot;
    gen.meta.set(subkey, m + KEY);
    gen.meta.set(iv, m + IV);
    gen.meta.set(ad, m + AD);
    gen.words[w] = input.length;
    gen.words[w + 2] = kind;
    gen.words[w + 3] = ad.length;
    const result = new Promise<ChunkResult>((resolve, reject) => {
      gen.pending.set(seq, { resolve, reject });
    });
    gen.submitted = seq + 1;
    Atomics.store(gen.ctl, SUBMITTED, seq + 1);
    if (Atomics.load(gen.ctl, SLEEPERS) > 0) Atomics.notify(gen.ctl, SUBMITTED, 1);
    if (!gen.refed) {
      gen.refed = true;
      for (const wk of gen.workers) wk.ref();
    }
    this.arm(gen);
    return result;
  }

  /**
   * Runs the oldest job no worker has taken yet on the calling thread, if there is one, and
   * resolves every result now ready. A caller that would otherwise wait for a result calls this
   * first: the job runs on the input already in its slot, without the copy back. Returns `false`
   * when no job was waiting.
   */
  help(): boolean {
    const gen = this.gen;
    if (gen === undefined) return false;
    for (;;) {
      const seq = Atomics.load(gen.ctl, CLAIMED);
      if (seq >= gen.submitted) return false;
      if (Atomics.compareExchange(gen.ctl, CLAIMED, seq, seq + 1) !== seq) continue;
      const slot = seq % this.slots;
      const { output, tag, sha256 } = runJob(
        CRYPTO,
        LAYOUT,
        gen.words,
        gen.meta,
        gen.ring,
        SLOT_SIZE,
        slot,
      );
      gen.stolen.set(seq, { output, tag, sha256 });
      Atomics.store(gen.words, SLOT_WORDS * slot + 1, seq + 1);
      Atomics.add(gen.ctl, COMPLETED, 1);
      this.collect(gen);
      return true;
    }
  }

  /** Stops the workers; pending jobs reject. A later job starts new ones. */
  async close(): Promise<void> {
    const gen = this.gen;
    if (gen === undefined) return;
    this.drop(gen, new Error('attachment workers closed'));
    await Promise.all(gen.workers.map((w) => w.terminate()));
  }

  private start(): Generation {
    const control = new SharedArrayBuffer(
      4 * HEADER_WORDS + 4 * SLOT_WORDS * this.slots + META * this.slots,
    );
    const ring = new SharedArrayBuffer(this.slots * 2 * SLOT_SIZE);
    const gen: Generation = {
      ctl: new Int32Array(control, 0, HEADER_WORDS),
      words: new Int32Array(control, 4 * HEADER_WORDS, SLOT_WORDS * this.slots),
      meta: new Uint8Array(control, 4 * HEADER_WORDS + 4 * SLOT_WORDS * this.slots),
      ring: new Uint8Array(ring),
      workers: [],
      submitted: 0,
      collected: 0,
      pending: new Map(),
      stolen: new Map(),
      armed: false,
      refed: false,
      idleSince: 0,
      idleTimer: undefined,
    };
    for (let i = 0; i < this.workers; i++) {
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        name: 'keytrail-attachment',
        workerData: { control, ring, slots: this.slots, slotSize: SLOT_SIZE, layout: LAYOUT },
      });
      worker.unref();
      const failed = (e: Error): void => {
        if (this.gen === gen) this.drop(gen, e);
      };
      worker.on('error', (e) => {
        failed(new Error('attachment worker failed', { cause: e }));
      });
      worker.on('exit', (code) => {
        failed(new Error(`attachment worker exited (code ${code})`));
      });
      gen.workers.push(worker);
    }
    return gen;
  }

  /** Resolves the finished jobs, in sequence order (so slots are reused only once read). */
  private collect(gen: Generation): void {
    while (gen.collected < gen.submitted) {
      const seq = gen.collected;
      const slot = seq % this.slots;
      const w = SLOT_WORDS * slot;
      if (Atomics.load(gen.words, w + 1) !== seq + 1) break;
      let result = gen.stolen.get(seq);
      if (result === undefined) {
        const length = gen.words[w + 4] ?? -1;
        const out = (2 * slot + 1) * SLOT_SIZE;
        const m = META * slot + HASH;
        result = {
          output: length < 0 ? undefined : gen.ring.slice(out, out + length),
          tag: undefined,
          sha256: gen.meta.slice(m, m + 32),
        };
      } else {
        gen.stolen.delete(seq);
      }
      gen.collected = seq + 1;
      const p = gen.pending.get(seq);
      gen.pending.delete(seq);
      p?.resolve(result);
    }
    if (gen.pending.size === 0) this.idle(gen);
  }

  /** Waits (without blocking) for the workers' next result while jobs are pending. */
  private arm(gen: Generation): void {
    if (gen.armed || this.gen !== gen) return;
    // Read the counter before collecting: a job that finishes after the collection bumps it
    // past `seen`, so the wait below cannot miss it (reading it after would lose that wake-up).
    const seen = Atomics.load(gen.ctl, FINISHED);
    this.collect(gen);
    if (gen.pending.size === 0) return;
    const wake = (): void => {
      gen.armed = false;
      if (this.gen !== gen) return;
      if (Atomics.load(gen.ctl, FAILED) === 1) {
        this.drop(gen, new Error('attachment worker failed'));
        return;
      }
      this.arm(gen);
    };
    gen.armed = true;
    const w = Atomics.waitAsync(gen.ctl, FINISHED, seen);
    if (w.async) void w.value.then(wake);
    else queueMicrotask(wake);
  }

  /** Releases the event loop once the pool has stayed without work for IDLE_UNREF_MS. */
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

  /** Forgets a generation: its workers stop, its pending jobs reject; the next job starts anew. */
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
    gen.stolen.clear();
    for (const p of pending) p.reject(e);
  }
}
