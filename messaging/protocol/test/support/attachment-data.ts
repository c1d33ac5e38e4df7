/**
 * Shared by the attachment tests: deterministic data, a source in pieces of any size, stream
 * collection, encryption of a whole plaintext and the split of a ciphertext into its chunks.
 * @module
 */
import {
  ATTACHMENT_CHUNK_SIZE,
  ATTACHMENT_HEADER_SIZE,
  type AttachmentPointer,
  encryptAttachment,
} from '../../src/index.ts';

/** Sealed chunk length: 256 KiB of ciphertext and the 16-byte tag. */
export const SEALED: number = ATTACHMENT_CHUNK_SIZE + 16;

/** `n` deterministic pseudo-random bytes (an LCG: test data, not randomness). */
export function data(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** `b` as pieces of `size` bytes (the last one shorter), as a file or network source gives. */
export function* pieces(b: Uint8Array, size: number): Generator<Uint8Array> {
  for (let off = 0; off < b.length; off += size)
    yield b.subarray(off, Math.min(b.length, off + size));
}

/** Everything a stream yields, concatenated. */
export async function collect(it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of it) parts.push(p);
  return Buffer.concat(parts);
}

/** Encrypts `pt` handed over in pieces of `piece` bytes, on the current provider. */
export async function encrypt(
  pt: Uint8Array,
  piece = 100_000,
): Promise<{ ct: Uint8Array; pointer: AttachmentPointer }> {
  const { stream, pointer } = encryptAttachment(pieces(pt, piece));
  const ct = await collect(stream);
  return { ct, pointer: await pointer };
}

/** Splits a ciphertext into header and sealed chunks. */
export function split(ct: Uint8Array): { header: Uint8Array; chunks: Uint8Array[] } {
  const chunks: Uint8Array[] = [];
  for (let off = ATTACHMENT_HEADER_SIZE; off < ct.length; off += SEALED)
    chunks.push(ct.subarray(off, Math.min(ct.length, off + SEALED)));
  return { header: ct.subarray(0, ATTACHMENT_HEADER_SIZE), chunks };
}
