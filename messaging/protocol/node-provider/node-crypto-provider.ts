/**
 * A `node:crypto` {@link CryptoProvider} for `@keytrail/messaging-core` (Node ≥ 20.12): X25519 and
 * Ed25519 through OpenSSL, HMAC-SHA256 and SHA-256 natively, and XChaCha20-Poly1305 as
 * draft-irtf-cfrg-xchacha-03 §2.3 builds it: HChaCha20 (from `@noble/ciphers`) derives the subkey,
 * then OpenSSL's ChaCha20-Poly1305 (RFC 8439) runs with nonce 0⁴ ‖ n[16..24].
 *
 * It also offers a {@link ChunkOffload} for attachment streams, so that a stream's chunks (each
 * an AEAD plus the SHA-256 of the sealed bytes) run on more than one core:
 *
 * - with the native addon (`native-chunks.ts`, built by `npm run build:native` against Node's own
 *   OpenSSL), on the addon's own threads, reading and writing the caller's buffers in place;
 * - without it, on JavaScript worker threads that share the chunks with the calling thread
 *   through shared memory (`chunk-workers.ts`).
 *
 * Both compute exactly what this provider computes on one thread (the same OpenSSL), so the bytes
 * are the same; `attachments` says which one runs. Subkeys reach the other threads only inside
 * this process and are wiped after each chunk.
 *
 * This file lives outside `src/` because the core package is pure (no `node:*`). A Node
 * application installs it once at start-up (`close()` stops worker threads; optional, since an
 * idle worker never keeps the process alive):
 *
 * ```ts
 * import { setCryptoProvider } from '@keytrail/messaging-core';
 * import { createNodeCryptoProvider } from '@keytrail/messaging-core/node';
 * setCryptoProvider(createNodeCryptoProvider());
 * ```
 *
 * Results are byte-identical to the noble provider (the golden transcripts run through both).
 * Ed25519 verification is strict as the noble provider's `zip215: false` is: S must be below the
 * group order and A and R must be canonical encodings; OpenSSL then verifies cofactorless, as
 * noble does. The provider checks itself against RFC vectors when created.
 * @module
 */
import {
  type KeyObject,
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hash,
  randomFillSync,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto';
import { hchacha } from '@noble/ciphers/chacha.js';
import {
  NOBLE_PROVIDER,
  type ChunkOffload,
  type CryptoProvider,
  type OpenedChunk,
  type SealedChunk,
} from '../src/provider.ts';
import { type ChunkResult, ChunkWorkers, OPEN, SEAL } from './chunk-workers.ts';
import { ADDON_MAX_AD, NativeChunks, loadChunkAddon } from './native-chunks.ts';

/** Largest chunk plaintext the offloads take (attachment chunks: 256 KiB). */
const ATTACHMENT_CHUNK_MAX = 256 * 1024;

const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);

function b64u(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** A plain Uint8Array view of a Buffer (so that `.slice()` copies, as the core expects). */
function plain(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function words(bytes: Uint8Array, count: number): Uint32Array {
  const out = new Uint32Array(count);
  const v = new DataView(bytes.buffer, bytes.byteOffset, count * 4);
  for (let i = 0; i < count; i++) out[i] = v.getUint32(4 * i, true);
  return out;
}

/** HChaCha20 (draft-irtf-cfrg-xchacha-03 §2.2) on noble's core. */
export function hchacha20(key: Uint8Array, nonce16: Uint8Array): Uint8Array {
  const out = new Uint32Array(8);
  hchacha(SIGMA, words(key, 8), words(nonce16, 4), out);
  const bytes = new Uint8Array(32);
  const v = new DataView(bytes.buffer);
  for (let i = 0; i < 8; i++) v.setUint32(4 * i, out[i] ?? 0, true);
  return bytes;
}

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function le(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i] ?? 0);
  return n;
}

/** An Ed25519 point encoding with y < p (RFC 8032 §5.1.3 step 1). */
function canonicalPoint(b: Uint8Array): boolean {
  const y = b.slice();
  y[31] = (y[31] ?? 0) & 0x7f;
  return le(y) < P;
}

/** Small cache of immutable key objects (LRU by insertion). */
class KeyCache {
  private readonly map = new Map<string, KeyObject>();
  private readonly max: number;
  constructor(max: number) {
    this.max = max;
  }
  get(k: string, make: () => KeyObject): KeyObject {
    let v = this.map.get(k);
    if (v === undefined) {
      v = make();
      if (this.map.size >= this.max) {
        const first = this.map.keys().next();
        if (first.done !== true) this.map.delete(first.value);
      }
      this.map.set(k, v);
    }
    return v;
  }
}

/** Options of {@link createNodeCryptoProvider}. */
export interface NodeCryptoProviderOptions {
  /** Skip the start-up self-test against RFC vectors (default: run it). */
  readonly skipSelfTest?: boolean;
  /**
   * Threads besides the calling one that seal, open and hash attachment chunks (default 1; 0
   * keeps everything on the calling thread). With the native addon, chunks run on
   * `attachmentWorkers + 1` threads of the addon's own (at most 16) and the calling thread only
   * hands them over; without it, `attachmentWorkers` JavaScript worker threads share the chunks
   * with the calling thread. Threads start on the first attachment stream and never keep an idle
   * process alive.
   */
  readonly attachmentWorkers?: number;
  /**
   * Use the native addon for attachment chunks when it is built and passes its self-check
   * (default true; false always uses JavaScript worker threads).
   */
  readonly attachmentNative?: boolean;
  /** Chunks an attachment stream keeps in flight (default 8, each at most 2 × 256 KiB). */
  readonly attachmentWindow?: number;
}

/** Where a Node provider runs attachment chunks. */
export interface AttachmentThreads {
  /** `native`: the addon's threads; `workers`: JavaScript worker threads; `none`: here. */
  readonly mode: 'native' | 'workers' | 'none';
  /** For logs: what runs the chunks, and why the addon is not used when it is not. */
  readonly detail: string;
}

/** The Node provider: a {@link CryptoProvider} that can also stop its worker threads. */
export interface NodeCryptoProvider extends CryptoProvider {
  /** Where attachment chunks run. */
  readonly attachments: AttachmentThreads;
  /**
   * Terminates the attachment worker threads (pending chunk jobs reject). Optional: idle workers
   * never keep the process alive. A later attachment starts them again.
   */
  close(): Promise<void>;
}

/**
 * Creates the provider.
 * @throws Error when the self-test fails (OpenSSL behaves unlike the specification)
 * @throws RangeError on a negative or fractional `attachmentWorkers` or `attachmentWindow`
 */
export function createNodeCryptoProvider(
  options: NodeCryptoProviderOptions = {},
): NodeCryptoProvider {
  // Private keys are cached by array identity: the core never mutates key arrays. The bytes are
  // compared on every hit anyway, so a caller that did mutate one gets a fresh key object.
  const privX = new WeakMap<Uint8Array, { bytes: Uint8Array; key: KeyObject }>();
  const privEd = new WeakMap<Uint8Array, { bytes: Uint8Array; key: KeyObject }>();
  const pubEd = new KeyCache(1024);

  const same = (a: Uint8Array, b: Uint8Array): boolean => {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  };
  const xPrivate = (priv: Uint8Array): KeyObject => {
    const hit = privX.get(priv);
    if (hit !== undefined && same(hit.bytes, priv)) return hit.key;
    const key = createPrivateKey({
      key: { kty: 'OKP', crv: 'X25519', d: b64u(priv), x: '' },
      format: 'jwk',
    });
    privX.set(priv, { bytes: priv.slice(), key });
    return key;
  };
  const edPrivate = (seed: Uint8Array): KeyObject => {
    const hit = privEd.get(seed);
    if (hit !== undefined && same(hit.bytes, seed)) return hit.key;
    const key = createPrivateKey({
      key: { kty: 'OKP', crv: 'Ed25519', d: b64u(seed), x: '' },
      format: 'jwk',
    });
    privEd.set(seed, { bytes: seed.slice(), key });
    return key;
  };
  const publicRaw = (key: KeyObject): Uint8Array => {
    const x = createPublicKey(key).export({ format: 'jwk' }).x;
    if (typeof x !== 'string') throw new Error('node crypto: no public key');
    return plain(Buffer.from(x, 'base64url'));
  };

  const xchachaParts = (
    key: Uint8Array,
    nonce: Uint8Array,
  ): { subkey: Uint8Array; iv: Uint8Array } => {
    const iv = new Uint8Array(12);
    iv.set(nonce.subarray(16, 24), 4);
    return { subkey: hchacha20(key, nonce.subarray(0, 16)), iv };
  };

  /** XChaCha20-Poly1305 with the ciphertext and the tag apart, as OpenSSL returns them. */
  const sealParts = (
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    associatedData: Uint8Array,
  ): { ct: Uint8Array; tag: Uint8Array } => {
    const { subkey, iv } = xchachaParts(key, nonce);
    const c = createCipheriv('chacha20-poly1305', subkey, iv, { authTagLength: 16 });
    c.setAAD(associatedData, { plaintextLength: plaintext.length });
    const ct = c.update(plaintext);
    c.final();
    return { ct: plain(ct), tag: plain(c.getAuthTag()) };
  };

  const workers = options.attachmentWorkers ?? 1;
  const window = options.attachmentWindow ?? 8;
  if (!Number.isInteger(workers) || workers < 0 || !Number.isInteger(window) || window < 1) {
    throw new RangeError('attachmentWorkers must be a whole number ≥ 0, attachmentWindow ≥ 1');
  }
  const addon = workers > 0 && options.attachmentNative !== false ? loadChunkAddon() : undefined;
  const nativeThreads = Math.min(16, workers + 1);
  const native =
    addon?.addon === undefined ? undefined : new NativeChunks(addon.addon, nativeThreads);
  // Each worker has one job running and one waiting; results are collected as they finish, so
  // four slots a worker leave room for results not yet read.
  const pool =
    workers > 0 && native === undefined
      ? new ChunkWorkers(workers, 4 * workers, 2 * workers)
      : undefined;
  const attachments: AttachmentThreads =
    native !== undefined
      ? {
          mode: 'native',
          detail: `${addon?.status.reason ?? 'native addon'} on ${nativeThreads} threads of its own`,
        }
      : pool !== undefined
        ? {
            mode: 'workers',
            detail:
              `${workers} JavaScript worker thread${workers === 1 ? '' : 's'} and the calling ` +
              `thread${addon === undefined ? '' : ` (${addon.status.reason})`}`,
          }
        : { mode: 'none', detail: 'the calling thread' };

  const provider: NodeCryptoProvider = {
    name: 'node',
    attachments,
    async close(): Promise<void> {
      await pool?.close();
    },
    randomBytes(length: number): Uint8Array {
      return randomFillSync(new Uint8Array(length));
    },
    x25519PublicKey(privateKey: Uint8Array): Uint8Array {
      return publicRaw(xPrivate(privateKey));
    },
    x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
      const pub = createPublicKey({
        key: { kty: 'OKP', crv: 'X25519', x: b64u(publicKey) },
        format: 'jwk',
      });
      return plain(diffieHellman({ privateKey: xPrivate(privateKey), publicKey: pub }));
    },
    ed25519PublicKey(seed: Uint8Array): Uint8Array {
      return publicRaw(edPrivate(seed));
    },
    ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array {
      return plain(nodeSign(null, message, edPrivate(seed)));
    },
    ed25519Verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
      if (signature.length !== 64 || publicKey.length !== 32) return false;
      if (le(signature.subarray(32)) >= L) return false;
      if (!canonicalPoint(publicKey) || !canonicalPoint(signature.subarray(0, 32))) return false;
      try {
        const key = pubEd.get(b64u(publicKey), () =>
          createPublicKey({
            key: { kty: 'OKP', crv: 'Ed25519', x: b64u(publicKey) },
            format: 'jwk',
          }),
        );
        return nodeVerify(null, message, key, signature);
      } catch {
        return false;
      }
    },
    hmacSha256(key: Uint8Array, data: Uint8Array): Uint8Array {
      return plain(createHmac('sha256', key).update(data).digest());
    },
    sha256(data: Uint8Array): Uint8Array {
      return plain(hash('sha256', data, 'buffer'));
    },
    xchacha20poly1305Seal(
      key: Uint8Array,
      nonce: Uint8Array,
      plaintext: Uint8Array,
      associatedData: Uint8Array,
    ): Uint8Array {
      const { ct, tag } = sealParts(key, nonce, plaintext, associatedData);
      const out = new Uint8Array(ct.length + 16);
      out.set(ct, 0);
      out.set(tag, ct.length);
      return out;
    },
    xchacha20poly1305Open(
      key: Uint8Array,
      nonce: Uint8Array,
      sealed: Uint8Array,
      associatedData: Uint8Array,
    ): Uint8Array | undefined {
      if (sealed.length < 16) return undefined;
      const { subkey, iv } = xchachaParts(key, nonce);
      const n = sealed.length - 16;
      const d = createDecipheriv('chacha20-poly1305', subkey, iv, { authTagLength: 16 });
      d.setAuthTag(sealed.subarray(n));
      d.setAAD(associatedData, { plaintextLength: n });
      const pt = d.update(sealed.subarray(0, n));
      try {
        d.final();
      } catch {
        return undefined;
      }
      return plain(pt);
    },
  };
  /** A chunk sealed and hashed on this thread, the tag apart: no copy of the chunk. */
  const sealHere = (
    key: Uint8Array,
    nonce: Uint8Array,
    plaintext: Uint8Array,
    ad: Uint8Array,
  ): SealedChunk => {
    const { ct, tag } = sealParts(key, nonce, plaintext, ad);
    return { sealed: ct, tag, sha256: plain(createHash('sha256').update(ct).update(tag).digest()) };
  };
  const openHere = (
    key: Uint8Array,
    nonce: Uint8Array,
    sealed: Uint8Array,
    ad: Uint8Array,
  ): OpenedChunk => ({
    sha256: provider.sha256(sealed),
    plaintext: provider.xchacha20poly1305Open(key, nonce, sealed, ad),
  });
  const sealedFrom = (r: ChunkResult): SealedChunk => {
    if (r.output === undefined) throw new Error('attachment chunk sealed nothing');
    return r.tag === undefined
      ? { sealed: r.output, sha256: r.sha256 }
      : { sealed: r.output, tag: r.tag, sha256: r.sha256 };
  };
  if (native !== undefined) {
    // Every chunk runs on the pool; this thread only hands them over and takes the results.
    const offload: ChunkOffload = {
      window,
      seal(key, nonce, plaintext, ad): Promise<SealedChunk> {
        if (plaintext.length > ATTACHMENT_CHUNK_MAX || ad.length > ADDON_MAX_AD) {
          return Promise.resolve(sealHere(key, nonce, plaintext, ad));
        }
        const { subkey, iv } = xchachaParts(key, nonce);
        return native.run(SEAL, subkey, iv, plaintext, ad).then(sealedFrom);
      },
      open(key, nonce, sealed, ad): Promise<OpenedChunk> {
        if (
          sealed.length < 16 ||
          sealed.length > ATTACHMENT_CHUNK_MAX + 16 ||
          ad.length > ADDON_MAX_AD
        ) {
          return Promise.resolve(openHere(key, nonce, sealed, ad));
        }
        const { subkey, iv } = xchachaParts(key, nonce);
        return native
          .run(OPEN, subkey, iv, sealed, ad)
          .then((r) => ({ plaintext: r.output, sha256: r.sha256 }));
      },
    };
    Object.assign(provider, { chunkOffload: Object.freeze(offload) });
  } else if (pool !== undefined) {
    // A chunk goes to a worker while the workers' queue has room and is sealed (or opened) and
    // hashed on this thread otherwise, so both threads stay busy whatever the machine; a stream
    // that would wait for a worker's result takes a queued job back instead.
    const offload: ChunkOffload = {
      window,
      help: () => pool.help(),
      seal(key, nonce, plaintext, ad): Promise<SealedChunk> {
        const { subkey, iv } = xchachaParts(key, nonce);
        const job = pool.submit(SEAL, subkey, iv, plaintext, ad);
        return job === undefined
          ? Promise.resolve(sealHere(key, nonce, plaintext, ad))
          : job.then(sealedFrom);
      },
      open(key, nonce, sealed, ad): Promise<OpenedChunk> {
        if (sealed.length >= 16) {
          const { subkey, iv } = xchachaParts(key, nonce);
          const job = pool.submit(OPEN, subkey, iv, sealed, ad);
          if (job !== undefined) {
            return job.then((r) => ({ plaintext: r.output, sha256: r.sha256 }));
          }
        }
        return Promise.resolve(openHere(key, nonce, sealed, ad));
      },
    };
    Object.assign(provider, { chunkOffload: Object.freeze(offload) });
  }
  if (options.skipSelfTest !== true) selfTest(provider);
  return Object.freeze(provider);
}

function hex(s: string): Uint8Array {
  return plain(Buffer.from(s, 'hex'));
}

function eq(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

/** Compares the provider with RFC vectors and with the noble provider. */
function selfTest(p: CryptoProvider): void {
  const fail = (what: string): never => {
    throw new Error(`node crypto provider self-test failed: ${what}`);
  };
  // RFC 7748 §6.1.
  const alice = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
  const bobPub = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
  if (
    !eq(
      p.x25519(alice, bobPub),
      hex('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742'),
    )
  )
    fail('X25519');
  if (
    !eq(
      p.x25519PublicKey(alice),
      hex('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a'),
    )
  )
    fail('X25519 public key');
  // RFC 8032 §7.1 TEST 1.
  const seed = hex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
  const sig = p.ed25519Sign(seed, new Uint8Array(0));
  if (!eq(sig, NOBLE_PROVIDER.ed25519Sign(seed, new Uint8Array(0)))) fail('Ed25519 sign');
  if (!p.ed25519Verify(sig, new Uint8Array(0), p.ed25519PublicKey(seed))) fail('Ed25519 verify');
  // draft-irtf-cfrg-xchacha-03 A.3.1 (shortened plaintext: the construction is what is tested).
  const key = hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f');
  const nonce = hex('404142434445464748494a4b4c4d4e4f5051525354555657');
  const ad = hex('50515253c0c1c2c3c4c5c6c7');
  const pt = hex('4c616469657320616e642047656e746c656d656e');
  const sealed = p.xchacha20poly1305Seal(key, nonce, pt, ad);
  if (!eq(sealed, NOBLE_PROVIDER.xchacha20poly1305Seal(key, nonce, pt, ad)))
    fail('XChaCha20-Poly1305');
  const opened = p.xchacha20poly1305Open(key, nonce, sealed, ad);
  if (opened === undefined || !eq(opened, pt)) fail('XChaCha20-Poly1305 open');
}
