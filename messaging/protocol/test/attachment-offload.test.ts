/**
 * Attachment streams on the Node provider's worker thread (`node-provider/chunk-hasher.ts`): the
 * bytes and pointers equal the one-thread path's for the same randomness; truncation, reordering,
 * splicing, extension and tampering give the same typed errors as on one thread; a closed or
 * failed worker rejects instead of hanging; chunks in flight stay within the window; the shared
 * ring survives a stress run; and an idle worker never keeps a process from exiting.
 * @module
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
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
import { createNodeCryptoProvider } from '../node-provider/node-crypto-provider.ts';
import { ChunkHasher, SLOT_SIZE } from '../node-provider/chunk-hasher.ts';
import { seeded, withProvider } from './support/helpers.ts';

import { SEALED, collect, data, encrypt, pieces, split } from './support/attachment-data.ts';
const C = ATTACHMENT_CHUNK_SIZE;

/** The provider under test: one hash worker, the default window. */
const WORKERS = createNodeCryptoProvider({ skipSelfTest: true });
/** The same provider with everything on the calling thread. */
const ONE_THREAD = createNodeCryptoProvider({ skipSelfTest: true, attachmentWorkers: 0 });

afterAll(() => WORKERS.close());

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

describe('the worker path produces the one-thread bytes', () => {
  it('offers the capability only with workers', () => {
    expect(WORKERS.chunkOffload?.window).toBe(4);
    expect(ONE_THREAD.chunkOffload).toBeUndefined();
    expect(() => createNodeCryptoProvider({ attachmentWorkers: -1 })).toThrow(RangeError);
    expect(() => createNodeCryptoProvider({ attachmentWindow: 0 })).toThrow(RangeError);
  });

  it.each([0, 1, 1000, C - 1, C, C + 1, 2 * C, 3 * C + 17, 9 * C + 5])(
    '%i bytes: same ciphertext and pointer on the worker, one thread and noble',
    async (n) => {
      const pt = data(n, n + 3);
      const seed = `offload ${n}`;
      const a = await encryptOn(seeded(WORKERS, seed), pt, 65_537);
      const b = await encryptOn(seeded(ONE_THREAD, seed), pt, C);
      const c = await encryptOn(seeded(NOBLE_PROVIDER, seed), pt, 1_000_000);
      expect(Buffer.from(a.ct).equals(Buffer.from(b.ct))).toBe(true);
      expect(Buffer.from(a.ct).equals(Buffer.from(c.ct))).toBe(true);
      expect(encodeAttachmentPointer(a.pointer)).toEqual(encodeAttachmentPointer(b.pointer));
      expect(encodeAttachmentPointer(a.pointer)).toEqual(encodeAttachmentPointer(c.pointer));
      // Each decrypts the other's stream.
      for (const [p, x] of [
        [WORKERS, b],
        [ONE_THREAD, a],
        [WORKERS, a],
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
    const [a, b] = await Promise.all([encryptOn(WORKERS, x, 40_000), encryptOn(WORKERS, y)]);
    const [ra, rb] = await withProvider(WORKERS, () =>
      Promise.all([
        collect(decryptAttachment(pieces(a.ct, 30_000), a.pointer)),
        collect(decryptAttachment([b.ct], b.pointer)),
      ]),
    );
    expect(Buffer.from(ra).equals(Buffer.from(x))).toBe(true);
    expect(Buffer.from(rb).equals(Buffer.from(y))).toBe(true);
  });
});

describe('attacks give the same typed errors on the worker path', () => {
  const pt = data(4 * C + 1000, 7);
  const setup = () => encryptOn(ONE_THREAD, pt);

  /** Runs a tampered stream on both paths and returns the (equal) error code. */
  async function both(ct: Uint8Array, pointer: AttachmentPointer): Promise<string> {
    const onWorker = await outcome(WORKERS, ct, pointer);
    expect(await outcome(ONE_THREAD, ct, pointer)).toBe(onWorker);
    return onWorker;
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
    expect(await both(Buffer.concat([a.header, c0, b.chunks[1] ?? c1, c2, c3, c4]), pointer)).toBe(
      'ERR_ATTACHMENT_CHUNK_INVALID',
    );
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
    expect(await both(ct, { ...pointer, digest: flipped })).toBe('ERR_ATTACHMENT_DIGEST_MISMATCH');
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

  it('any flipped byte fails with the same code on both paths (property)', async () => {
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
  };
  return { ...base, chunkOffload: offload };
}

describe('memory stays bounded', () => {
  it('never more chunks handed over than the window ahead of the consumer', async () => {
    let jobs = 0;
    let received = 0;
    let maxAhead = 0;
    const provider = wrapped(WORKERS, () => {
      jobs++;
      maxAhead = Math.max(maxAhead, jobs - received);
    });
    const pt = data(20 * C + 3, 11);
    // Pieces of 8 chunks: the source alone would let the stream run far ahead.
    const ct = await withProvider(provider, async () => {
      const { stream, pointer } = encryptAttachment(pieces(pt, 8 * C));
      const parts: Uint8Array[] = [];
      for await (const part of stream) {
        if (parts.length > 0) received++; // the header is no chunk
        parts.push(part);
      }
      return { ct: Buffer.concat(parts), pointer: await pointer };
    });
    expect(maxAhead).toBeGreaterThan(1);
    expect(maxAhead).toBeLessThanOrEqual(4);
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
    expect(maxAhead).toBeLessThanOrEqual(4);
  });

  it('a slow consumer holds back the source (read-ahead within the window)', async () => {
    let produced = 0;
    let consumed = 0;
    let maxAhead = 0;
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 48; i++) {
        produced += 64 * 1024;
        maxAhead = Math.max(maxAhead, produced - consumed);
        yield data(64 * 1024, i);
        await Promise.resolve();
      }
    }
    await withProvider(WORKERS, async () => {
      const { stream, pointer } = encryptAttachment(source());
      for await (const part of stream) {
        await new Promise((r) => setTimeout(r, 2));
        consumed += part.length;
      }
      await pointer;
    });
    // 3 MiB went through; the source ran at most the window (4 chunks) plus the chunk being
    // gathered and one piece ahead of the consumer.
    expect(consumed).toBeGreaterThan(48 * 64 * 1024);
    expect(maxAhead).toBeLessThanOrEqual(6 * C + 64 * 1024);
  });

  it('the hasher never takes more slots than it has; overflow is hashed in place', async () => {
    const h = new ChunkHasher(1, 2);
    try {
      const inputs = [1, 2, 3, 4, 5].map((i) => data(C + 16, i));
      const results = inputs.map((x) => h.hash(x));
      expect(h.inFlight).toBeLessThanOrEqual(2);
      const big = data(SLOT_SIZE + 1, 9); // larger than a slot: hashed on this thread
      results.push(h.hash(big));
      inputs.push(big);
      const got = await Promise.all(results);
      got.forEach((g, i) => {
        expect(Buffer.from(g).toString('hex')).toBe(
          createHash('sha256')
            .update(inputs[i] ?? new Uint8Array(0))
            .digest('hex'),
        );
      });
      expect(h.inFlight).toBe(0);
    } finally {
      await h.close();
    }
  });
});

describe('the hasher under stress and failure', () => {
  it('hashes thousands of chunks with irregular timing, in order, without a lost wake-up', async () => {
    const h = new ChunkHasher(2, 4);
    try {
      const inputs = Array.from({ length: 16 }, (_, i) => data(1000 + 4099 * i, i + 1));
      const want = inputs.map((x) => createHash('sha256').update(x).digest('hex'));
      for (let round = 0; round < 150; round++) {
        const batch = 1 + (round % 7);
        const q: Promise<Uint8Array>[] = [];
        for (let i = 0; i < batch; i++) q.push(h.hash(inputs[(round + i) % inputs.length]!));
        const got = await Promise.all(q);
        got.forEach((g, i) => {
          expect(Buffer.from(g).toString('hex')).toBe(want[(round + i) % inputs.length]);
        });
        // Idle gaps of varying length let the workers fall asleep between batches.
        if (round % 10 === 0) await new Promise((r) => setTimeout(r, round % 20));
      }
      expect(h.threads).toBe(2);
    } finally {
      await h.close();
    }
    expect(h.threads).toBe(0);
  });

  it('a hasher closed with hashes pending rejects them and starts afresh on the next hash', async () => {
    const h = new ChunkHasher(1, 4);
    const x = data(C, 3);
    const pending = [h.hash(x), h.hash(x), h.hash(x)];
    const closing = h.close();
    for (const p of pending) await expect(p).rejects.toThrow('attachment hash workers closed');
    await closing;
    expect(h.threads).toBe(0);
    expect(Buffer.from(await h.hash(x)).toString('hex')).toBe(
      createHash('sha256').update(x).digest('hex'),
    );
    expect(h.threads).toBe(1);
    await h.close();
  });

  it('a worker failure mid-stream rejects with a plain Error, never a hang or a protocol error', async () => {
    const pt = data(16 * C, 2);
    const { ct, pointer } = await encryptOn(ONE_THREAD, pt);
    for (const kind of ['seal', 'open'] as const) {
      const base = createNodeCryptoProvider({ skipSelfTest: true });
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
      expect((err as Error).message).toBe('attachment hash workers closed');
      // The same provider works again afterwards (a new worker starts).
      const again = await encryptOn(base, pt, C);
      expect(await outcome(base, again.ct, again.pointer)).toBe('ok');
      await base.close();
    }
  });
});

describe('process lifetime', () => {
  it('a process that used the workers and never closed them exits on its own', () => {
    const script = fileURLToPath(new URL('./support/offload-exit.ts', import.meta.url));
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const r = spawnSync(
      process.execPath,
      ['--conditions=@keytrail/source', '--import', 'tsx', script],
      { cwd: root, encoding: 'utf8', timeout: 20_000 },
    );
    expect(r.error).toBeUndefined();
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('round trip ok, 1 worker thread');
    expect(r.status).toBe(0);
  });
});
