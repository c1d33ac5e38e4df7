/**
 * Attachment throughput (issue 7), run by `messaging.bench.ts` in a child process of its own:
 * streaming encryption and decryption of 8 MiB (SHA-256 digest included, wall clock, the source
 * handing over 1 MiB pieces) against the raw XChaCha20-Poly1305 rate on one 256 KiB chunk on one
 * thread ({@link rawAead}), measured interleaved in this process; target ≥ 80 %.
 *
 * The digest hashes every ciphertext byte, so the SHA-256 rate is printed too, with the best
 * ratio one thread could reach (AEAD and hash in turn) and twice that, the best for whole chunks
 * on two threads. The Node provider's default runs whole chunks on the native addon's own
 * threads; the same streams are measured on its fallback (JavaScript
 * worker threads sharing the chunks with the calling thread), on one thread, and on the noble
 * provider (browsers). Each measurement starts on a collected heap (the child runs with
 * `--expose-gc`), so none pays for the garbage of the one before.
 * @module
 */
import { fmt, opsPerSecond, opsPerSecondAsync, report } from '../../../scripts/bench-util.ts';
import {
  ATTACHMENT_CHUNK_SIZE,
  type AttachmentPointer,
  NOBLE_PROVIDER,
  type CryptoProvider,
  decryptAttachment,
  encryptAttachment,
  getCryptoProvider,
  setCryptoProvider,
} from '../src/index.ts';
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { createNodeCryptoProvider, hchacha20 } from '../node-provider/node-crypto-provider.ts';
import { interleaved } from './measure.ts';

const MIB = 1024 * 1024;
const ATTACHMENT_SIZE = 8 * MIB;

function* pieces(b: Uint8Array, size: number): Generator<Uint8Array> {
  for (let off = 0; off < b.length; off += size) yield b.subarray(off, off + size);
}

async function drain(it: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const p of it) n += p.length;
  return n;
}

/**
 * The raw AEAD of one chunk on one thread, the baseline: for the Node provider OpenSSL's
 * ChaCha20-Poly1305 through `node:crypto` with the HChaCha20 subkey derived per chunk, and the
 * ciphertext and tag left as OpenSSL returns them (the provider's own `xchacha20poly1305Seal`
 * joins them, a copy the attachment streams avoid; the stricter baseline is the one without);
 * for any other provider its own seal and open.
 */
function rawAead(
  p: CryptoProvider,
  key: Uint8Array,
  nonce: Uint8Array,
  ad: Uint8Array,
): { seal(pt: Uint8Array): unknown; open(sealed: Uint8Array): unknown } {
  if (p.name !== 'node') {
    return {
      seal: (pt) => p.xchacha20poly1305Seal(key, nonce, pt, ad),
      open: (sealed) => p.xchacha20poly1305Open(key, nonce, sealed, ad),
    };
  }
  const iv = new Uint8Array(12);
  iv.set(nonce.subarray(16, 24), 4);
  return {
    seal(pt) {
      const c = createCipheriv('chacha20-poly1305', hchacha20(key, nonce.subarray(0, 16)), iv, {
        authTagLength: 16,
      });
      c.setAAD(ad, { plaintextLength: pt.length });
      const ct = c.update(pt);
      c.final();
      return [ct, c.getAuthTag()];
    },
    open(sealed) {
      const n = sealed.length - 16;
      const d = createDecipheriv('chacha20-poly1305', hchacha20(key, nonce.subarray(0, 16)), iv, {
        authTagLength: 16,
      });
      d.setAuthTag(sealed.subarray(n));
      d.setAAD(ad, { plaintextLength: n });
      const pt = d.update(sealed.subarray(0, n));
      d.final();
      return pt;
    },
  };
}

/** Measures and prints one provider's attachment rates. */
async function attachments(
  provider: CryptoProvider,
  label: string,
  target: boolean,
): Promise<void> {
  const prev = setCryptoProvider(provider);
  try {
    const p = getCryptoProvider();
    const pt = p.randomBytes(ATTACHMENT_SIZE);
    const key = p.randomBytes(32);
    const nonce = p.randomBytes(24);
    const ad = new Uint8Array(19);
    const chunk = pt.subarray(0, ATTACHMENT_CHUNK_SIZE);
    const sealedChunk = p.xchacha20poly1305Seal(key, nonce, chunk, ad);
    const ms = provider.name.startsWith('noble') ? 1200 : 1000;
    const enc = encryptAttachment(pieces(pt, MIB));
    const parts: Uint8Array[] = [];
    for await (const part of enc.stream) parts.push(part);
    const pointer: AttachmentPointer = await enc.pointer;
    const perChunk = ATTACHMENT_CHUNK_SIZE / MIB;
    const perStream = ATTACHMENT_SIZE / MIB;
    const raw = rawAead(p, key, nonce, ad);
    // Each measurement starts on a collected heap, so none pays for another's garbage.
    const clean = (f: () => Promise<number>) => (): Promise<number> => {
      (globalThis as { gc?: () => void }).gc?.();
      return f();
    };
    // The source hands over 1 MiB pieces, as a file or network stream would.
    const [rawSeal = 0, encRate = 0, rawOpen = 0, decRate = 0, rawHash = 0] = await interleaved(
      [
        () => Promise.resolve(opsPerSecond(() => raw.seal(chunk), ms) * perChunk),
        async () =>
          (await opsPerSecondAsync(async () => {
            const { stream, pointer: done } = encryptAttachment(pieces(pt, MIB));
            await drain(stream);
            await done;
          }, ms)) * perStream,
        () => Promise.resolve(opsPerSecond(() => raw.open(sealedChunk), ms) * perChunk),
        async () =>
          (await opsPerSecondAsync(() => drain(decryptAttachment(parts, pointer)), ms)) * perStream,
        () => Promise.resolve(opsPerSecond(() => p.sha256(sealedChunk), ms) * perChunk),
      ].map(clean),
      5,
    );
    const t = target ? ' (target ≥ 80%)' : '';
    // The digest hashes every ciphertext byte. On one thread the best possible ratio is
    // AEAD time / (AEAD + SHA-256 time); with whole chunks on two threads, twice that.
    const one = (r: number): number => 100 / (1 + r / rawHash);
    report(
      `SHA-256 of 256 KiB chunks, ${provider.name}`,
      `${fmt(rawHash, 1)} MiB/s`,
      `bound on 1 / 2 threads: encrypt ${fmt(one(rawSeal))}% / ${fmt(2 * one(rawSeal))}%, ` +
        `decrypt ${fmt(one(rawOpen))}% / ${fmt(2 * one(rawOpen))}% of raw AEAD`,
    );
    report(
      `attachment encrypt, 8 MiB, ${label}`,
      `${fmt(encRate, 1)} MiB/s`,
      `raw AEAD (1 thread) ${fmt(rawSeal, 1)} MiB/s = ${fmt((100 * encRate) / rawSeal)}%${t}`,
    );
    report(
      `attachment decrypt, 8 MiB, ${label}`,
      `${fmt(decRate, 1)} MiB/s`,
      `raw AEAD (1 thread) ${fmt(rawOpen, 1)} MiB/s = ${fmt((100 * decRate) / rawOpen)}%${t}`,
    );
  } finally {
    setCryptoProvider(prev);
  }
}

// The Node provider's default: the native addon when it is built, else worker threads.
const node = createNodeCryptoProvider();
await attachments(node, `node: ${node.attachments.detail}`, true);
await node.close();
if (node.attachments.mode === 'native') {
  // The fallback without the addon, on the same machine.
  const workers = createNodeCryptoProvider({ attachmentNative: false });
  await attachments(workers, `node: ${workers.attachments.detail}`, false);
  await workers.close();
}
// The same streams with everything on the calling thread.
await attachments(createNodeCryptoProvider({ attachmentWorkers: 0 }), 'node, one thread', false);
await attachments(NOBLE_PROVIDER, 'noble, one thread', false);
