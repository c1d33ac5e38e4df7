/**
 * Attachment streams off the calling thread, on both of the Node provider's offloads: the native
 * addon's own threads (`node-provider/native-chunks.ts`) and JavaScript worker threads
 * (`node-provider/chunk-workers.ts`). On each, the bytes and pointers equal the one-thread path's
 * for the same randomness; truncation, reordering, splicing, extension and tampering give the
 * same typed errors as on one thread; chunks in flight stay within the window. For the workers: a
 * closed or failed worker rejects instead of hanging, the shared ring survives a stress run, a
 * waiting stream takes queued jobs back, and an idle worker never keeps a process from exiting.
 * For the addon: its argument checks, its concurrency bound and a tag failure that leaves no
 * plaintext behind.
 * @module
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ATTACHMENT_CHUNK_SIZE,
  ATTACHMENT_HEADER_SIZE,
  type AttachmentPointer,
  type ChunkOffload,
  type CryptoProvider,
  MessagingError,
  NOBLE_PROVIDER,
  decryptAttachment,
  encodeAttachmentPointer,
  encryptAttachment,
} from '../src/index.ts';
import {
  type NodeCryptoProvider,
  createNodeCryptoProvider,
} from '../node-provider/node-crypto-provider.ts';
import { ChunkWorkers, MAX_AD, OPEN, SEAL, SLOT_SIZE } from '../node-provider/chunk-workers.ts';
import {
  ATTACHMENT_ADDON_PATH,
  NativeChunks,
  loadChunkAddon,
} from '../node-provider/native-chunks.ts';
import { seeded, withProvider } from './support/helpers.ts';

import { SEALED, collect, data, encrypt, pieces, split } from './support/attachment-data.ts';
const C = ATTACHMENT_CHUNK_SIZE;

/** The native addon (built by `npm test` before the tests run). */
const NATIVE = createNodeCryptoProvider({ skipSelfTest: true });
/** JavaScript worker threads, the fallback without the addon. */
const WORKERS = createNodeCryptoProvider({ skipSelfTest: true, attachmentNative: false });
/** The same provider with everything on the calling thread. */
const ONE_THREAD = createNodeCryptoProvider({ skipSelfTest: true, attachmentWorkers: 0 });

afterAll(() => Promise.all([NATIVE.close(), WORKERS.close()]));

async function encryptOn(
  provider: CryptoProvider,
  pt: Uint8Array,
  piece = 100_000,
): Promise<{ ct: Uint8Array; pointer: AttachmentPointer }> {
  return withProvider(provider, () => encrypt(pt, piece));
}

/** The error code a decryption ends with (or 'ok'). */
async function outcome(
  provider: CryptoProvider,
  ct: Uint8Array,
  pointer: AttachmentPointer,
): Promise<string> {
  try {
    await withProvider(provider, () => collect(decryptAttachment(pieces(ct, 77_777), pointer)));
    return 'ok';
  } catch (e) {
    if (e instanceof MessagingError) return e.code;
    throw e;
  }
}

/** ChaCha20-Poly1305 and the hash straight from node:crypto, for the pools' results. */
function reference(
  kind: typeof SEAL | typeof OPEN,
  key: Uint8Array,
  iv: Uint8Array,
  input: Uint8Array,
  ad: Uint8Array,
): { output: Buffer | undefined; sha256: string } {
  if (kind === SEAL) {
    const c = createCipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 });
    c.setAAD(ad, { plaintextLength: input.length });
    const out = Buffer.concat([c.update(input), c.final(), c.getAuthTag()]);
    return { output: out, sha256: createHash('sha256').update(out).digest('hex') };
  }
  const sha256 = createHash('sha256').update(input).digest('hex');
  const d = createDecipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 });
  d.setAuthTag(input.subarray(input.length - 16));
  d.setAAD(ad, { plaintextLength: input.length - 16 });
  const pt = d.update(input.subarray(0, input.length - 16));
  try {
    d.final();
    return { output: pt, sha256 };
  } catch {
    return { output: undefined, sha256 };
  }
}

/** A result's output as one buffer (a seal's tag may come apart). */
function joined(r: {
  output: Uint8Array | undefined;
  tag: Uint8Array | undefined;
}): Buffer | undefined {
  if (r.output === undefined) return undefined;
  return Buffer.concat(r.tag === undefined ? [r.output] : [r.output, r.tag]);
}

describe('the offload in use', () => {
  it('is the native addon by default, worker threads on request, none without threads', () => {
    expect(loadChunkAddon().status).toEqual({
      loaded: true,
      reason: "native addon (Node's OpenSSL)",
    });
    expect(NATIVE.attachments.mode).toBe('native');
    expect(NATIVE.attachments.detail).toContain('on 2 threads of its own');
    expect(WORKERS.attachments.mode).toBe('workers');
    expect(ONE_THREAD.attachments).toEqual({ mode: 'none', detail: 'the calling thread' });
    expect(NATIVE.chunkOffload?.window).toBe(8);
    expect(WORKERS.chunkOffload?.window).toBe(8);
    expect(ONE_THREAD.chunkOffload).toBeUndefined();
    expect(() => createNodeCryptoProvider({ attachmentWorkers: -1 })).toThrow(RangeError);
    expect(() => createNodeCryptoProvider({ attachmentWindow: 0 })).toThrow(RangeError);
  });
});

/** `base` with its offload wrapped: `onJob` sees every job as it is handed over. */
function wrapped(base: CryptoProvider, onJob: (kind: 'seal' | 'open') => void): CryptoProvider {
  const inner = base.chunkOffload;
  if (inner === undefined) throw new Error('no offload');
  const offload: ChunkOffload = {
    window: inner.window,
    seal(k, n, p, a) {
      const job = inner.seal(k, n, p, a);
      onJob('seal');
      return job;
    },
    open(k, n, s, a) {
      const job = inner.open(k, n, s, a);
      onJob('open');
      return job;
    },
    ...(inner.help === undefined ? {} : { help: inner.help }),
  };
  return { ...base, chunkOffload: offload };
}

describe.each([
  ['native addon', NATIVE],
  ['worker threads', WORKERS],
] as const)('on the %s', (_, OFF: NodeCryptoProvider) => {
  describe('the bytes are the one-thread bytes', () => {
    it.each([0, 1, 1000, C - 1, C, C + 1, 2 * C, 3 * C + 17, 9 * C + 5])(
      '%i bytes: same ciphertext and pointer here, on one thread and on noble',
      async (n) => {
        const pt = data(n, n + 3);
        const seed = `offload ${n}`;
        const a = await encryptOn(seeded(OFF, seed), pt, 65_537);
        const b = await encryptOn(seeded(ONE_THREAD, seed), pt, C);
        const c = await encryptOn(seeded(NOBLE_PROVIDER, seed), pt, 1_000_000);
        expect(Buffer.from(a.ct).equals(Buffer.from(b.ct))).toBe(true);
        expect(Buffer.from(a.ct).equals(Buffer.from(c.ct))).toBe(true);
        expect(encodeAttachmentPointer(a.pointer)).toEqual(encodeAttachmentPointer(b.pointer));
        expect(encodeAttachmentPointer(a.pointer)).toEqual(encodeAttachmentPointer(c.pointer));
        // Each decrypts the other's stream.
        for (const [p, x] of [
          [OFF, b],
          [ONE_THREAD, a],
          [OFF, a],
        ] as const) {
          const back = await withProvider(p, () =>
            collect(decryptAttachment(pieces(x.ct, 50_001), x.pointer)),
          );
          expect(Buffer.from(back).equals(Buffer.from(pt))).toBe(true);
        }
      },
    );

    it('two streams at once on one provider stay independent and correct', async () => {
      const x = data(6 * C + 9, 5);
      const y = data(5 * C + 1, 6);
      const [a, b] = await Promise.all([encryptOn(OFF, x, 40_000), encryptOn(OFF, y)]);
      const [ra, rb] = await withProvider(OFF, () =>
        Promise.all([
          collect(decryptAttachment(pieces(a.ct, 30_000), a.pointer)),
          collect(decryptAttachment([b.ct], b.pointer)),
        ]),
      );
      expect(Buffer.from(ra).equals(Buffer.from(x))).toBe(true);
      expect(Buffer.from(rb).equals(Buffer.from(y))).toBe(true);
    });
  });

  describe('attacks give the one-thread typed errors', () => {
    const pt = data(4 * C + 1000, 7);
    const setup = () => encryptOn(ONE_THREAD, pt);

    /** Runs a tampered stream here and on one thread and returns the (equal) error code. */
    async function both(ct: Uint8Array, pointer: AttachmentPointer): Promise<string> {
      const here = await outcome(OFF, ct, pointer);
      expect(await outcome(ONE_THREAD, ct, pointer)).toBe(here);
      return here;
    }

    it('truncation at a chunk boundary, inside a chunk and inside the header', async () => {
      const { ct, pointer } = await setup();
      const { header, chunks } = split(ct);
      expect(await both(Buffer.concat([header, ...chunks.slice(0, 4)]), pointer)).toBe(
        'ERR_ATTACHMENT_TRUNCATED',
      );
      expect(await both(ct.subarray(0, ct.length - 100), pointer)).toBe(
        'ERR_ATTACHMENT_CHUNK_INVALID',
      );
      expect(await both(ct.subarray(0, 10), pointer)).toBe('ERR_ATTACHMENT_TRUNCATED');
      expect(await both(new Uint8Array(0), pointer)).toBe('ERR_ATTACHMENT_TRUNCATED');
    });

    it('reordering and splicing chunks', async () => {
      const { ct, pointer } = await setup();
      const a = split(ct);
      const [c0, c1, c2, c3, c4] = a.chunks as [
        Uint8Array,
        Uint8Array,
        Uint8Array,
        Uint8Array,
        Uint8Array,
      ];
      expect(await both(Buffer.concat([a.header, c0, c2, c1, c3, c4]), pointer)).toBe(
        'ERR_ATTACHMENT_CHUNK_INVALID',
      );
      const other = await withProvider(ONE_THREAD, () =>
        collect(encryptAttachment([data(4 * C + 1000, 9)], { key: pointer.key }).stream),
      );
      const b = split(other);
      expect(
        await both(Buffer.concat([a.header, c0, b.chunks[1] ?? c1, c2, c3, c4]), pointer),
      ).toBe('ERR_ATTACHMENT_CHUNK_INVALID');
    });

    it('data after the final chunk', async () => {
      const exact = await encryptOn(ONE_THREAD, data(2 * C));
      const more = await withProvider(ONE_THREAD, () =>
        collect(encryptAttachment([data(10)], { key: exact.pointer.key }).stream),
      );
      expect(
        await both(Buffer.concat([exact.ct, more.subarray(ATTACHMENT_HEADER_SIZE)]), exact.pointer),
      ).toBe('ERR_ATTACHMENT_TRAILING_DATA');
      // Bytes after a full-size final chunk make it a middle chunk that opens only as final …
      expect(await both(Buffer.concat([exact.ct, new Uint8Array(40)]), exact.pointer)).toBe(
        'ERR_ATTACHMENT_TRAILING_DATA',
      );
      // … while bytes after a short final chunk make a chunk that opens as nothing.
      const { ct, pointer } = await setup();
      expect(await both(Buffer.concat([ct, new Uint8Array(40)]), pointer)).toBe(
        'ERR_ATTACHMENT_CHUNK_INVALID',
      );
    });

    it('digest, size and key mismatches', async () => {
      const { ct, pointer } = await setup();
      const flipped = pointer.digest.map((b, i) => (i === 31 ? b ^ 0x80 : b));
      expect(await both(ct, { ...pointer, digest: flipped })).toBe(
        'ERR_ATTACHMENT_DIGEST_MISMATCH',
      );
      expect(await both(ct, { ...pointer, plaintextSize: pointer.plaintextSize - 1 })).toBe(
        'ERR_ATTACHMENT_SIZE_MISMATCH',
      );
      expect(await both(ct, { ...pointer, plaintextSize: pointer.plaintextSize + 1 })).toBe(
        'ERR_ATTACHMENT_SIZE_MISMATCH',
      );
      expect(await both(ct, { ...pointer, key: new Uint8Array(32) })).toBe(
        'ERR_ATTACHMENT_CHUNK_INVALID',
      );
    });

    it('any flipped byte fails with the same code (property)', async () => {
      const small = await encryptOn(ONE_THREAD, data(2 * C + 300, 3));
      await fc.assert(
        fc.asyncProperty(fc.nat(), fc.integer({ min: 1, max: 255 }), async (pos, x) => {
          const bad = small.ct.slice();
          bad[pos % bad.length]! ^= x;
          expect(await both(bad, small.pointer)).not.toBe('ok');
        }),
        { numRuns: 40 },
      );
    });
  });

  describe('memory stays bounded', () => {
    it('never more chunks handed over than the window ahead of the consumer', async () => {
      let jobs = 0;
      let received = 0;
      let maxAhead = 0;
      const provider = wrapped(OFF, () => {
        jobs++;
        maxAhead = Math.max(maxAhead, jobs - received);
      });
      const pt = data(20 * C + 3, 11);
      // Pieces of 8 chunks: the source alone would let the stream run far ahead.
      const ct = await withProvider(provider, async () => {
        const { stream, pointer } = encryptAttachment(pieces(pt, 8 * C));
        const parts: Uint8Array[] = [];
        let bytes = 0;
        for await (const part of stream) {
          parts.push(part);
          bytes += part.length;
          // A chunk may arrive as ciphertext and tag: count it once it is whole.
          received = Math.floor((bytes - ATTACHMENT_HEADER_SIZE) / SEALED);
        }
        return { ct: Buffer.concat(parts), pointer: await pointer };
      });
      expect(maxAhead).toBeGreaterThan(1);
      expect(maxAhead).toBeLessThanOrEqual(8);
      jobs = 0;
      received = 0;
      maxAhead = 0;
      await withProvider(provider, async () => {
        for await (const chunk of decryptAttachment([ct.ct], ct.pointer)) {
          received++;
          expect(chunk.length).toBeLessThanOrEqual(C);
        }
      });
      expect(received).toBe(21);
      expect(maxAhead).toBeGreaterThan(1);
      expect(maxAhead).toBeLessThanOrEqual(8);
    });

    it('a slow consumer holds back the source (read-ahead within the window)', async () => {
      let produced = 0;
      let consumed = 0;
      let maxAhead = 0;
      async function* source(): AsyncGenerator<Uint8Array> {
        for (let i = 0; i < 64; i++) {
          produced += 64 * 1024;
          maxAhead = Math.max(maxAhead, produced - consumed);
          yield data(64 * 1024, i);
          await Promise.resolve();
        }
      }
      await withProvider(OFF, async () => {
        const { stream, pointer } = encryptAttachment(source());
        for await (const part of stream) {
          await new Promise((r) => setTimeout(r, 2));
          consumed += part.length;
        }
        await pointer;
      });
      // 4 MiB went through; the source ran at most the window (8 chunks) plus the chunk being
      // gathered and one piece ahead of the consumer.
      expect(consumed).toBeGreaterThan(64 * 64 * 1024);
      expect(maxAhead).toBeLessThanOrEqual(10 * C + 64 * 1024);
    });
  });
});

describe('worker threads', () => {
  const key = data(32, 1);
  const iv = data(12, 2);
  const ad = data(19, 3);

  it('never take more slots than there are; a job without room is left to the caller', async () => {
    const pool = new ChunkWorkers(1, 2, 2);
    try {
      const inputs = [1, 2, 3, 4, 5].map((i) => data(C, i));
      const jobs = inputs.map((x) => pool.submit(SEAL, key, iv, x, ad));
      expect(jobs.filter((j) => j !== undefined).length).toBeLessThanOrEqual(2);
      expect(pool.inFlight).toBeLessThanOrEqual(2);
      // Larger than a slot, or associated data longer than a slot holds: the caller's.
      expect(pool.submit(SEAL, key, iv, data(SLOT_SIZE - 15, 9), ad)).toBeUndefined();
      expect(pool.submit(OPEN, key, iv, data(SLOT_SIZE + 1, 9), ad)).toBeUndefined();
      expect(pool.submit(SEAL, key, iv, data(10, 9), data(MAX_AD + 1, 1))).toBeUndefined();
      expect(() => pool.submit(SEAL, data(31), iv, data(10), ad)).toThrow(RangeError);
      expect(() => pool.submit(OPEN, key, iv, data(15), ad)).toThrow(RangeError);
      for (const [i, job] of jobs.entries()) {
        if (job === undefined) continue;
        const r = await job;
        const want = reference(SEAL, key, iv, inputs[i] ?? new Uint8Array(0), ad);
        expect(joined(r)?.equals(want.output ?? Buffer.alloc(0))).toBe(true);
        expect(Buffer.from(r.sha256).toString('hex')).toBe(want.sha256);
      }
      expect(pool.inFlight).toBe(0);
    } finally {
      await pool.close();
    }
  });

  it('run thousands of seals and opens with irregular timing, in order, without a lost wake-up', async () => {
    const pool = new ChunkWorkers(2, 8, 4);
    try {
      const inputs = Array.from({ length: 16 }, (_, i) => data(1000 + 4099 * i, i + 1));
      const sealed = inputs.map((x) => reference(SEAL, key, iv, x, ad).output ?? Buffer.alloc(0));
      // Every fifth open gets a broken tag.
      const opens = sealed.map((s, i) =>
        i % 5 === 4 ? s.map((b, j) => (j === 0 ? b ^ 1 : b)) : s,
      );
      let ran = 0;
      for (let round = 0; round < 150; round++) {
        const batch = 1 + (round % 7);
        const q: { job: ReturnType<ChunkWorkers['submit']>; kind: 0 | 1; input: Uint8Array }[] = [];
        for (let i = 0; i < batch; i++) {
          const k = (round + i) % inputs.length;
          const kind = (round + i) % 2 === 0 ? SEAL : OPEN;
          const input =
            kind === SEAL ? (inputs[k] ?? new Uint8Array(0)) : (opens[k] ?? new Uint8Array(0));
          q.push({ job: pool.submit(kind, key, iv, input, ad), kind, input });
        }
        // A stream that would wait takes queued jobs back now and then.
        if (round % 3 === 0) while (pool.help()) ran++;
        for (const { job, kind, input } of q) {
          if (job === undefined) continue;
          const r = await job;
          const want = reference(kind, key, iv, input, ad);
          expect(joined(r)?.toString('hex')).toBe(want.output?.toString('hex'));
          expect(Buffer.from(r.sha256).toString('hex')).toBe(want.sha256);
        }
        // Idle gaps of varying length let the workers fall asleep between batches.
        if (round % 10 === 0) await new Promise((r) => setTimeout(r, round % 20));
      }
      expect(ran).toBeGreaterThan(0);
      expect(pool.threads).toBe(2);
    } finally {
      await pool.close();
    }
    expect(pool.threads).toBe(0);
  });

  it('help runs the oldest queued job here, and says when there was none', async () => {
    const pool = new ChunkWorkers(1, 8, 8);
    try {
      expect(pool.help()).toBe(false); // no workers started yet
      const inputs = Array.from({ length: 6 }, (_, i) => data(C, 20 + i));
      const jobs = inputs.map((x) => pool.submit(SEAL, key, iv, x, ad));
      let helped = 0;
      while (pool.help()) helped++;
      // The worker takes one or two while this thread takes the rest.
      expect(helped).toBeGreaterThan(0);
      expect(helped).toBeLessThanOrEqual(6);
      for (const [i, job] of jobs.entries()) {
        expect(job).toBeDefined();
        const r = await job;
        if (r === undefined) throw new Error('no job');
        const want = reference(SEAL, key, iv, inputs[i] ?? new Uint8Array(0), ad);
        expect(joined(r)?.equals(want.output ?? Buffer.alloc(0))).toBe(true);
        expect(Buffer.from(r.sha256).toString('hex')).toBe(want.sha256);
      }
      expect(pool.help()).toBe(false);
    } finally {
      await pool.close();
    }
  });

  it('closed with jobs pending, they reject and the pool starts afresh on the next job', async () => {
    const pool = new ChunkWorkers(1, 4, 4);
    const x = data(C, 3);
    const pending = [1, 2, 3].map(() => pool.submit(SEAL, key, iv, x, ad));
    const closing = pool.close();
    for (const p of pending) await expect(p).rejects.toThrow('attachment workers closed');
    await closing;
    expect(pool.threads).toBe(0);
    const again = pool.submit(SEAL, key, iv, x, ad);
    expect(pool.threads).toBe(1);
    const r = await again;
    if (r === undefined) throw new Error('no room');
    expect(Buffer.from(r.sha256).toString('hex')).toBe(reference(SEAL, key, iv, x, ad).sha256);
    await pool.close();
  });

  it('a worker failure mid-stream rejects with a plain Error, never a hang or a protocol error', async () => {
    const pt = data(16 * C, 2);
    const { ct, pointer } = await encryptOn(ONE_THREAD, pt);
    for (const kind of ['seal', 'open'] as const) {
      const base = createNodeCryptoProvider({ skipSelfTest: true, attachmentNative: false });
      let jobs = 0;
      // The workers stop right after the third chunk was handed over.
      const provider = wrapped(base, () => {
        if (++jobs === 3) void base.close();
      });
      const run =
        kind === 'seal'
          ? withProvider(provider, async () => {
              const { stream, pointer: done } = encryptAttachment(pieces(pt, C));
              await collect(stream);
              return done;
            })
          : withProvider(provider, () => collect(decryptAttachment(pieces(ct, SEALED), pointer)));
      const err: unknown = await run.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, kind).toBeInstanceOf(Error);
      expect(err, kind).not.toBeInstanceOf(MessagingError);
      expect((err as Error).message).toBe('attachment workers closed');
      // The same provider works again afterwards (a new worker starts).
      const again = await encryptOn(base, pt, C);
      expect(await outcome(base, again.ct, again.pointer)).toBe('ok');
      await base.close();
    }
  });
});

describe('the native addon', () => {
  const { addon } = loadChunkAddon();
  if (addon === undefined) throw new Error('the addon is not built: npm run build:native');
  const key = data(32, 4);
  const iv = data(12, 5);
  const ad = data(19, 6);

  it('checks its arguments: a TypeError or RangeError, never a crash', () => {
    const out = new Uint8Array(26);
    const h = new Uint8Array(32);
    const pt = data(10);
    const call =
      (...args: unknown[]) =>
      () =>
        (addon.chunkSync as (...a: unknown[]) => boolean)(...args);
    expect(call(SEAL, key, iv, ad, pt, out)).toThrow(TypeError); // six arguments
    expect(call(2, key, iv, ad, pt, out, h)).toThrow(TypeError);
    expect(call(SEAL, 'key', iv, ad, pt, out, h)).toThrow(TypeError);
    expect(call(SEAL, key, new Uint16Array(6), ad, pt, out, h)).toThrow(TypeError);
    expect(call(SEAL, data(31), iv, ad, pt, out, h)).toThrow(RangeError);
    expect(call(SEAL, key, data(24), ad, pt, out, h)).toThrow(RangeError);
    expect(call(SEAL, key, iv, data(1025), pt, out, h)).toThrow(RangeError);
    expect(call(SEAL, key, iv, ad, pt, new Uint8Array(25), h)).toThrow(RangeError);
    expect(call(SEAL, key, iv, ad, pt, out, new Uint8Array(31))).toThrow(RangeError);
    expect(call(OPEN, key, iv, ad, data(15), new Uint8Array(0), h)).toThrow(RangeError);
    expect(call(SEAL, key, iv, ad, data(C + 1), new Uint8Array(C + 17), h)).toThrow(RangeError);
    // The asynchronous entry point checks the same, synchronously.
    expect(() => addon.chunk(SEAL, data(31), iv, ad, pt, out, h)).toThrow(RangeError);
    expect(call(SEAL, key, iv, ad, pt, out, h)()).toBe(true);
  });

  it('a chunk whose tag fails leaves no plaintext behind', async () => {
    const sealed = reference(SEAL, key, iv, data(5000, 8), ad).output ?? Buffer.alloc(0);
    sealed[100] = (sealed[100] ?? 0) ^ 4;
    const out = new Uint8Array(5000).fill(0xee);
    const h = new Uint8Array(32);
    expect(await addon.chunk(OPEN, key, iv, ad, sealed, out, h)).toBe(false);
    expect(out.every((b) => b === 0)).toBe(true);
    // The hash is of the sealed bytes as received, as on the other paths.
    expect(Buffer.from(h).toString('hex')).toBe(createHash('sha256').update(sealed).digest('hex'));
  });

  it('environments that end with chunks queued (worker threads terminated or done) leave the process sound', async () => {
    // Each worker thread loads the addon (a pool of its own), queues 40 chunks and ends at once.
    const source = `const a = require(${JSON.stringify(ATTACHMENT_ADDON_PATH)});
      const { parentPort } = require('node:worker_threads');
      a.threads(2);
      const n = 256 * 1024;
      for (let i = 0; i < 40; i++) {
        a.chunk(0, new Uint8Array(32), new Uint8Array(12), new Uint8Array(19), new Uint8Array(n),
          new Uint8Array(n + 16), new Uint8Array(32));
      }
      parentPort.postMessage('queued');`;
    const codes: number[] = [];
    for (let round = 0; round < 8; round++) {
      const w = new Worker(source, { eval: true });
      await new Promise((resolve) => w.once('message', resolve));
      const exited = new Promise<number>((resolve) => w.once('exit', resolve));
      if (round % 2 === 1) void w.terminate();
      codes.push(await exited);
    }
    // Workers left alone exit with 0 once their chunks are done; a terminated one with 1, or
    // with 0 when it had already finished by the time it was told to stop.
    codes.forEach((code, round) => {
      expect(round % 2 === 1 ? [0, 1] : [0]).toContain(code);
    });
    // This thread's pool is unaffected.
    const out = new Uint8Array(116);
    const h = new Uint8Array(32);
    expect(await addon.chunk(SEAL, key, iv, ad, data(100), out, h)).toBe(true);
    const want = reference(SEAL, key, iv, data(100), ad);
    expect(Buffer.from(out).equals(want.output ?? Buffer.alloc(0))).toBe(true);
  });

  it('never runs more jobs at once than its bound; the rest wait their turn, in any mix', async () => {
    const pool = new NativeChunks(addon, 2);
    const inputs = Array.from({ length: 12 }, (_, i) => data(1 + 20_000 * i, 30 + i));
    const results = inputs.map((x, i) =>
      i % 3 === 2
        ? pool.run(OPEN, key, iv, reference(SEAL, key, iv, x, ad).output ?? x, ad)
        : pool.run(SEAL, key, iv, x, ad),
    );
    expect(pool.pending).toBe(12);
    const got = await Promise.all(results);
    got.forEach((r, i) => {
      const x = inputs[i] ?? new Uint8Array(0);
      const want =
        i % 3 === 2
          ? reference(OPEN, key, iv, reference(SEAL, key, iv, x, ad).output ?? x, ad)
          : reference(SEAL, key, iv, x, ad);
      expect(joined(r)?.toString('hex')).toBe(want.output?.toString('hex'));
      expect(Buffer.from(r.sha256).toString('hex')).toBe(want.sha256);
    });
    expect(pool.pending).toBe(0);
    await expect(pool.run(SEAL, data(31), iv, data(10), ad)).rejects.toThrow(RangeError);
    expect(pool.pending).toBe(0);
    expect(() => new NativeChunks(addon, 0)).toThrow(RangeError);
    expect(() => new NativeChunks(addon, 17)).toThrow(RangeError);
    // The addon's own check, too: the pool never grows past 16 threads.
    expect(() => addon.threads(17)).toThrow(RangeError);
    expect(() => addon.threads(0)).toThrow(RangeError);
    expect(addon.threads(1)).toBeGreaterThanOrEqual(2); // never shrinks below what was asked
  });
});

describe('process lifetime', () => {
  it('a process that used either offload and never closed it exits on its own', () => {
    const script = fileURLToPath(new URL('./support/offload-exit.ts', import.meta.url));
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const r = spawnSync(
      process.execPath,
      ['--conditions=@keytrail/source', '--import', 'tsx', script],
      { cwd: root, encoding: 'utf8', timeout: 20_000 },
    );
    expect(r.error).toBeUndefined();
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('round trip ok: native, workers');
    expect(r.status).toBe(0);
  });
});
