/**
 * Attachment chunks on the threads of the Node-API addon built from `native/attachment_chunks.c`
 * (`npm run build:native`): each chunk's ChaCha20-Poly1305 and the SHA-256 of its sealed bytes
 * run in OpenSSL — Node's own, the library `node:crypto` runs — on one of the addon's threads,
 * reading the caller's input and writing a fresh output in place. Nothing is copied between
 * threads and the calling thread only hands jobs over, so a stream keeps the addon's threads
 * busy. The addon has a pool of its own rather than libuv's (whose four threads on two cores
 * preempted each other holding its queue lock, and which file and DNS requests share).
 *
 * The addon is optional: without a C compiler it is not built, and the provider falls back to
 * JavaScript worker threads (`chunk-workers.ts`). When it loads it must reproduce `node:crypto`
 * byte for byte on a seal, an open and a tampered open (the self-check), or it is not used.
 * @module
 */
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { type ChunkResult, OPEN, SEAL } from './chunk-workers.ts';

/** One chunk's arguments: kind, subkey, iv, ad, input, output, hash. */
type ChunkArgs = [number, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];

/** The addon's functions (argument checks and their errors are the addon's own). */
interface ChunkAddon {
  /** Asks for at least `n` pool threads (1–16); returns how many the pool will run. */
  threads(n: number): number;
  /** Runs the chunk on a pool thread; resolves whether the tag verified (always for a seal). */
  chunk(...args: ChunkArgs): Promise<boolean>;
  /** The same on the calling thread (the self-check). */
  chunkSync(...args: ChunkArgs): boolean;
}

/** Where `npm run build:native` puts the addon. */
export const ATTACHMENT_ADDON_PATH: string = fileURLToPath(
  new URL('../native/build/keytrail_attachments.node', import.meta.url),
);

/** Largest associated data the addon takes (attachment chunks carry a 19-byte header). */
export const ADDON_MAX_AD = 1024;

/** Whether the addon can be used, and why (for start-up logs and benchmarks). */
export interface ChunkAddonStatus {
  readonly loaded: boolean;
  readonly reason: string;
}

let cache: { addon: ChunkAddon | undefined; status: ChunkAddonStatus } | undefined;

/** A plain Uint8Array over fresh, uninitialised memory (every byte is written before use). */
function fresh(length: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(length);
  return new Uint8Array(b.buffer, b.byteOffset, length);
}

/** Seal, open and tampered open of a chunk that spans several ChaCha20 blocks, against node:crypto. */
function selfCheck(addon: ChunkAddon): boolean {
  const key = new Uint8Array(32).map((_, i) => i);
  const iv = new Uint8Array(12).map((_, i) => 0xa0 + i);
  const ad = new Uint8Array(19).map((_, i) => 0x50 + i);
  const pt = new Uint8Array(1000).map((_, i) => (i * 7) & 0xff);
  const c = createCipheriv('chacha20-poly1305', key, iv, { authTagLength: 16 });
  c.setAAD(ad, { plaintextLength: pt.length });
  const want = Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
  const sealed = new Uint8Array(pt.length + 16);
  const h1 = new Uint8Array(32);
  if (!addon.chunkSync(SEAL, key, iv, ad, pt, sealed, h1)) return false;
  if (!want.equals(sealed)) return false;
  if (!createHash('sha256').update(want).digest().equals(h1)) return false;
  const opened = new Uint8Array(pt.length);
  const h2 = new Uint8Array(32);
  if (!addon.chunkSync(OPEN, key, iv, ad, sealed, opened, h2)) return false;
  if (!Buffer.from(opened).equals(pt) || !Buffer.from(h2).equals(h1)) return false;
  sealed[500] = (sealed[500] ?? 0) ^ 1;
  return !addon.chunkSync(OPEN, key, iv, ad, sealed, opened, h2) && opened.every((b) => b === 0);
}

/** Loads the addon once; `undefined` (with the reason) when it is missing or fails its check. */
export function loadChunkAddon(): { addon: ChunkAddon | undefined; status: ChunkAddonStatus } {
  if (cache !== undefined) return cache;
  const off = (reason: string): { addon: undefined; status: ChunkAddonStatus } => ({
    addon: undefined,
    status: { loaded: false, reason },
  });
  if (!existsSync(ATTACHMENT_ADDON_PATH)) {
    cache = off('native addon not built (npm run build:native)');
  } else {
    try {
      const addon = createRequire(import.meta.url)(ATTACHMENT_ADDON_PATH) as ChunkAddon;
      cache = selfCheck(addon)
        ? { addon, status: { loaded: true, reason: "native addon (Node's OpenSSL)" } }
        : off('native addon failed its self-check against node:crypto');
    } catch (err) {
      cache = off(`native addon failed to load: ${(err as Error).message}`);
    }
  }
  return cache;
}

/**
 * Chunk jobs on the addon's `threads` threads, with at most two jobs a thread handed over at once
 * (one running, one queued, so that a thread never waits for this one); the rest wait here.
 */
export class NativeChunks {
  private readonly addon: ChunkAddon;
  private readonly concurrency: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  /** @throws RangeError unless 1 ≤ `threads` ≤ 16 */
  constructor(addon: ChunkAddon, threads: number) {
    if (!Number.isInteger(threads) || threads < 1 || threads > 16) {
      throw new RangeError('threads must be a whole number from 1 to 16');
    }
    this.addon = addon;
    this.concurrency = 2 * addon.threads(threads);
  }

  /** Jobs running on the pool and waiting for it. */
  get pending(): number {
    return this.running + this.waiting.length;
  }

  /**
   * Seals (`SEAL`: output ciphertext ‖ tag, hash of it) or opens (`OPEN`: hash of the input,
   * output plaintext or `undefined` when the tag fails) one chunk. The input must not be
   * modified until the promise settles.
   * @throws RangeError (rejects) on bad lengths; Error when OpenSSL fails
   */
  run(
    kind: typeof SEAL | typeof OPEN,
    subkey: Uint8Array,
    iv: Uint8Array,
    input: Uint8Array,
    ad: Uint8Array,
  ): Promise<ChunkResult> {
    return new Promise<ChunkResult>((resolve, reject) => {
      const start = (): void => {
        this.running++;
        let job: Promise<boolean>;
        const output = fresh(kind === SEAL ? input.length + 16 : Math.max(0, input.length - 16));
        const sha256 = new Uint8Array(32);
        try {
          job = this.addon.chunk(kind, subkey, iv, ad, input, output, sha256);
        } catch (e) {
          job = Promise.reject(e instanceof Error ? e : new Error(String(e)));
        }
        job
          .then(
            (ok) => {
              resolve({ output: ok ? output : undefined, tag: undefined, sha256 });
            },
            (e: unknown) => {
              reject(e instanceof Error ? e : new Error(String(e)));
            },
          )
          .finally(() => {
            this.running--;
            this.waiting.shift()?.();
          });
      };
      if (this.running < this.concurrency) start();
      else this.waiting.push(start);
    });
  }
}
