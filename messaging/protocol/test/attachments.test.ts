/**
 * Streaming attachments: round trips for sizes around the chunk boundary and any piece sizes,
 * on both providers; truncation, reordering, splicing, extension, digest and size mismatches
 * detected; plaintext released chunk by chunk without buffering the whole stream.
 * @module
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ATTACHMENT_CHUNK_SIZE,
  ATTACHMENT_HEADER_SIZE,
  AttachmentDecryptor,
  AttachmentEncryptor,
  MessagingError,
  ciphertextSizeOf,
  decodeAttachmentPointer,
  decryptAttachment,
  encodeAttachmentPointer,
  encryptAttachment,
} from '../src/index.ts';
import { PROVIDERS, expectCode, expectCodeSync, withProvider } from './support/helpers.ts';
import { SEALED, collect, data, encrypt, pieces, split } from './support/attachment-data.ts';

const C = ATTACHMENT_CHUNK_SIZE;

describe.each(PROVIDERS)('attachments on the $name provider', ({ provider }) => {
  it.each([0, 1, 1000, C - 1, C, C + 1, 2 * C, 2 * C + 17])('round trip of %i bytes', (n) =>
    withProvider(provider, async () => {
      const pt = data(n);
      const { ct, pointer } = await encrypt(pt, 77_777);
      expect(ct.length).toBe(ciphertextSizeOf(n));
      expect(pointer.ciphertextSize).toBe(ct.length);
      expect(pointer.plaintextSize).toBe(n);
      expect(decodeAttachmentPointer(encodeAttachmentPointer(pointer))).toEqual(pointer);
      const back = await collect(decryptAttachment(pieces(ct, 50_001), pointer));
      expect(Buffer.from(back).equals(Buffer.from(pt))).toBe(true);
      // The chunk-by-chunk decryptor agrees.
      const dec = new AttachmentDecryptor(pointer);
      const parts = [...pieces(ct, 99_999)].flatMap((p) => dec.update(p));
      parts.push(...dec.finish());
      expect(Buffer.from(Buffer.concat(parts)).equals(Buffer.from(pt))).toBe(true);
    }),
  );

  it('the chunk-by-chunk encryptor produces the same format and digest rule', () =>
    withProvider(provider, async () => {
      const pt = data(C + 5);
      const enc = new AttachmentEncryptor();
      const ct = Buffer.concat([
        enc.header,
        enc.encryptChunk(pt.subarray(0, C), false),
        enc.encryptChunk(pt.subarray(C), true),
      ]);
      const pointer = enc.finish();
      expect(
        Buffer.from(await collect(decryptAttachment([ct], pointer))).equals(Buffer.from(pt)),
      ).toBe(true);
      expect(() => enc.encryptChunk(new Uint8Array(1), true)).toThrow(RangeError);
      expect(() => new AttachmentEncryptor().encryptChunk(new Uint8Array(5), false)).toThrow(
        RangeError,
      );
    }));
});

describe('attachment attacks are detected', () => {
  const pt = data(3 * C + 1000, 7);
  const setup = () => encrypt(pt);

  it('truncation at a chunk boundary (the final chunk dropped)', async () => {
    const { ct, pointer } = await setup();
    const { header, chunks } = split(ct);
    const cut = Buffer.concat([header, ...chunks.slice(0, 3)]);
    await expectCode(
      () => collect(decryptAttachment([cut], { ...pointer })),
      'ERR_ATTACHMENT_TRUNCATED',
    );
  });

  it('truncation inside a chunk, and inside the header', async () => {
    const { ct, pointer } = await setup();
    await expectCode(
      () => collect(decryptAttachment([ct.subarray(0, ct.length - 100)], pointer)),
      'ERR_ATTACHMENT_CHUNK_INVALID',
    );
    await expectCode(
      () => collect(decryptAttachment([ct.subarray(0, 10)], pointer)),
      'ERR_ATTACHMENT_TRUNCATED',
    );
    await expectCode(() => collect(decryptAttachment([], pointer)), 'ERR_ATTACHMENT_TRUNCATED');
  });

  it('reordering chunks', async () => {
    const { ct, pointer } = await setup();
    const { header, chunks } = split(ct);
    const swapped = Buffer.concat([header, chunks[1]!, chunks[0]!, chunks[2]!, chunks[3]!]);
    await expectCode(
      () => collect(decryptAttachment([swapped], pointer)),
      'ERR_ATTACHMENT_CHUNK_INVALID',
    );
  });

  it('splicing a chunk from another attachment (even under the same key)', async () => {
    const { ct, pointer } = await setup();
    const other = encryptAttachment(pieces(data(3 * C + 1000, 9), C), { key: pointer.key });
    const ct2 = await collect(other.stream);
    const a = split(ct);
    const b = split(ct2);
    const spliced = Buffer.concat([
      a.header,
      a.chunks[0]!,
      b.chunks[1]!,
      a.chunks[2]!,
      a.chunks[3]!,
    ]);
    await expectCode(
      () => collect(decryptAttachment([spliced], pointer)),
      'ERR_ATTACHMENT_CHUNK_INVALID',
    );
    const header = Buffer.concat([b.header, ...a.chunks]);
    await expectCode(
      () => collect(decryptAttachment([header], pointer)),
      'ERR_ATTACHMENT_CHUNK_INVALID',
    );
  });

  it('data after the final chunk', async () => {
    const { ct, pointer } = await setup();
    await expectCode(
      () => collect(decryptAttachment([ct, new Uint8Array(40)], pointer)),
      'ERR_ATTACHMENT_CHUNK_INVALID',
    );
    // A whole extra chunk after a full-size final chunk is named as trailing data.
    const exact = await encrypt(data(2 * C));
    const more = await collect(encryptAttachment([data(10)], { key: exact.pointer.key }).stream);
    await expectCode(
      () =>
        collect(
          decryptAttachment([exact.ct, more.subarray(ATTACHMENT_HEADER_SIZE)], exact.pointer),
        ),
      'ERR_ATTACHMENT_TRAILING_DATA',
    );
  });

  it('digest and size mismatches', async () => {
    const { ct, pointer } = await setup();
    const badDigest = { ...pointer, digest: pointer.digest.map((b, i) => (i === 0 ? b ^ 1 : b)) };
    await expectCode(
      () => collect(decryptAttachment([ct], badDigest)),
      'ERR_ATTACHMENT_DIGEST_MISMATCH',
    );
    await expectCode(
      () =>
        collect(decryptAttachment([ct], { ...pointer, plaintextSize: pointer.plaintextSize - 1 })),
      'ERR_ATTACHMENT_SIZE_MISMATCH',
    );
    await expectCode(
      () =>
        collect(decryptAttachment([ct], { ...pointer, plaintextSize: pointer.plaintextSize + 1 })),
      'ERR_ATTACHMENT_SIZE_MISMATCH',
    );
    const wrongKey = { ...pointer, key: new Uint8Array(32) };
    await expectCode(
      () => collect(decryptAttachment([ct], wrongKey)),
      'ERR_ATTACHMENT_CHUNK_INVALID',
    );
  });

  it('any flipped byte fails with a typed error (property)', async () => {
    const small = await encrypt(data(C + 300, 3));
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.integer({ min: 1, max: 255 }), async (pos, x) => {
        const bad = small.ct.slice();
        bad[pos % bad.length]! ^= x;
        await expect(collect(decryptAttachment([bad], small.pointer))).rejects.toBeInstanceOf(
          MessagingError,
        );
      }),
      { numRuns: 60 },
    );
  });

  it('pointers are strictly decoded', () => {
    const p = encodeAttachmentPointer({
      key: new Uint8Array(32),
      digest: new Uint8Array(32),
      plaintextSize: 5,
      ciphertextSize: ciphertextSizeOf(5),
    });
    expectCodeSync(() => decodeAttachmentPointer(p.subarray(0, 81)), 'ERR_ENCODING_MALFORMED');
    const bad = encodeAttachmentPointer({
      key: new Uint8Array(32),
      digest: new Uint8Array(32),
      plaintextSize: 5,
      ciphertextSize: 99,
    });
    expectCodeSync(() => decodeAttachmentPointer(bad), 'ERR_ENCODING_MALFORMED');
  });
});

describe('streaming', () => {
  it('never holds the plaintext whole: output flows while the source is still producing', async () => {
    let produced = 0;
    let maxAhead = 0;
    let consumed = 0;
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 40; i++) {
        await Promise.resolve();
        produced += 64 * 1024;
        maxAhead = Math.max(maxAhead, produced - consumed);
        yield data(64 * 1024, i);
      }
    }
    const { stream, pointer } = encryptAttachment(source());
    const parts: Uint8Array[] = [];
    for await (const p of stream) {
      consumed += p.length;
      parts.push(p);
    }
    // 2.5 MiB went through holding at most about two chunks ahead of the consumer.
    expect(maxAhead).toBeLessThanOrEqual(2 * C + 64 * 1024);
    let outAhead = 0;
    let fed = 0;
    let released = 0;
    async function* feed(): AsyncGenerator<Uint8Array> {
      for (const p of parts) {
        await Promise.resolve();
        fed += p.length;
        outAhead = Math.max(outAhead, fed - released);
        yield p;
      }
    }
    for await (const chunk of decryptAttachment(feed(), await pointer))
      released += chunk.length + 16;
    expect(released).toBeGreaterThan(40 * 64 * 1024);
    expect(outAhead).toBeLessThanOrEqual(3 * SEALED);
  });
});
