/**
 * Where the auditor reads the directory from: the Directory HTTP API of CONTRACT.md
 * (`/v1/checkpoint`, `/v1/log/consistency`, `/v1/log/leaves`, `/v1/epochs/{epoch}/inserts`),
 * behind the narrow {@link DirectorySource} interface so the sync engine can be driven from
 * memory (benchmarks) or from a misbehaving test server.
 *
 * Everything the directory returns is attacker-controlled: bodies are size-capped, JSON shapes
 * are checked member by member, base64 is decoded strictly (canonical padding and trailing
 * bits), and every failure surfaces as a typed {@link AuditError} — `ERR_AUDIT_DOWNLOAD_*` for
 * a body that is cut short or does not parse, `ERR_AUDIT_NETWORK`/`ERR_AUDIT_HTTP_STATUS` for
 * the transport.
 * @module
 */
import { bytes } from '@keytrail/core';
import { AuditError } from './errors.ts';

/** Size of one packed insert: label (32 bytes) then commitment (32 bytes). */
export const INSERT_SIZE = 64;

/** Most leaves per `/v1/log/leaves` request (the API's limit). */
export const MAX_LEAVES_PER_REQUEST = 1000;

/** Most inserts per `/v1/epochs/{epoch}/inserts` request (the API's limit). */
export const MAX_INSERTS_PER_REQUEST = 10_000;

/** One page of an epoch's inserts. */
export interface InsertsPage {
  /** Number of inserts on this page. */
  readonly count: number;
  /**
   * The inserts packed as `label[32] || commitment[32]`, `count * 64` bytes, in the order
   * served. Packing keeps a million inserts out of the garbage collector's way, and is also
   * exactly the byte string the epoch record's `inserts_digest` hashes.
   */
  readonly entries: Uint8Array;
  /** Cursor for the next page (`after`), or null on the last page. */
  readonly next: Uint8Array | null;
}

/** The directory's read API, as the auditor consumes it. */
export interface DirectorySource {
  /** A label for messages and evidence files, such as the base URL. */
  readonly name: string;
  /** The latest checkpoint note, as text. */
  checkpoint(): Promise<string>;
  /** RFC 9162 consistency proof between tree sizes `from` and `to`. */
  consistency(from: number, to: number): Promise<Uint8Array[]>;
  /** Encoded epoch records `start ≤ i < end` (at most {@link MAX_LEAVES_PER_REQUEST}). */
  leaves(start: number, end: number): Promise<Uint8Array[]>;
  /** One page of an epoch's inserts, sorted by label, strictly after `after`. */
  inserts(epoch: number, after: Uint8Array | null, limit: number): Promise<InsertsPage>;
}

/** Options of {@link HttpDirectorySource}. */
export interface HttpSourceOptions {
  /** Per-request timeout in milliseconds (default 30 s). */
  readonly timeoutMs?: number;
  /** Retries of a GET after a network failure or a cut-short body (default 2). */
  readonly retries?: number;
  /** Largest body accepted, in bytes (default 32 MiB). */
  readonly maxBodyBytes?: number;
  /** The fetch implementation (default: the global one). */
  readonly fetch?: typeof fetch;
  /** Aborts in-flight requests (Ctrl-C); they fail with `ERR_AUDIT_INTERRUPTED`. */
  readonly signal?: AbortSignal;
}

const B64_32 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

function malformed(path: string, what: string): AuditError {
  return new AuditError('ERR_AUDIT_DOWNLOAD_MALFORMED', `GET ${path}: ${what}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Strict base64 of exactly 32 bytes, written into `out` at `offset`. */
function decode32Into(text: unknown, out: Uint8Array, offset: number): boolean {
  // Attacker-controlled: the regex pins the length, the alphabet, the padding and that the
  // unused low bits of the last symbol are zero, so there is one accepted encoding per value.
  if (typeof text !== 'string' || !B64_32.test(text)) return false;
  const decoded = bytes.fromBase64(text);
  out.set(decoded, offset);
  return true;
}

function decodeHash(text: unknown): Uint8Array | null {
  const out = new Uint8Array(32);
  return decode32Into(text, out, 0) ? out : null;
}

/** The Directory HTTP API over `fetch`. */
export class HttpDirectorySource implements DirectorySource {
  readonly name: string;
  readonly #base: string;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #maxBody: number;
  readonly #fetch: typeof fetch;
  readonly #signal: AbortSignal | undefined;

  /**
   * @param baseUrl the directory's base URL, such as `https://directory.example`.
   * @throws AuditError `ERR_AUDIT_USAGE` when the URL is not http(s).
   */
  constructor(baseUrl: string, options: HttpSourceOptions = {}) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch (cause) {
      throw new AuditError('ERR_AUDIT_USAGE', `not a URL: ${baseUrl}`, { cause });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new AuditError('ERR_AUDIT_USAGE', `not an http(s) URL: ${baseUrl}`);
    }
    this.#base = url.href.replace(/\/+$/, '');
    this.name = this.#base;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#retries = options.retries ?? 2;
    this.#maxBody = options.maxBodyBytes ?? 32 * 1024 * 1024;
    this.#fetch = options.fetch ?? fetch;
    this.#signal = options.signal;
  }

  async checkpoint(): Promise<string> {
    const path = '/v1/checkpoint';
    const body = await this.#get(path);
    try {
      return bytes.fromUtf8(body);
    } catch {
      throw malformed(path, 'checkpoint is not UTF-8');
    }
  }

  async consistency(from: number, to: number): Promise<Uint8Array[]> {
    const path = `/v1/log/consistency?from=${from}&to=${to}`;
    const json = await this.#getJson(path);
    if (!isRecord(json) || !Array.isArray(json.proof))
      throw malformed(path, 'expected {proof: [...]}');
    if (json.proof.length > 128) throw malformed(path, 'proof too long');
    return (json.proof as unknown[]).map((h) => {
      const d = decodeHash(h);
      if (!d) throw malformed(path, 'proof element is not base64 of 32 bytes');
      return d;
    });
  }

  async leaves(start: number, end: number): Promise<Uint8Array[]> {
    const path = `/v1/log/leaves?start=${start}&end=${end}`;
    const json = await this.#getJson(path);
    if (!isRecord(json) || !Array.isArray(json.leaves)) {
      throw malformed(path, 'expected {leaves: [...]}');
    }
    const leaves = json.leaves as unknown[];
    if (leaves.length !== end - start) {
      throw malformed(path, `expected ${end - start} leaves, got ${leaves.length}`);
    }
    return leaves.map((l) => {
      if (typeof l !== 'string' || l.length > 4096) throw malformed(path, 'leaf is not a string');
      try {
        return bytes.fromBase64(l);
      } catch {
        throw malformed(path, 'leaf is not valid base64');
      }
    });
  }

  async inserts(epoch: number, after: Uint8Array | null, limit: number): Promise<InsertsPage> {
    let path = `/v1/epochs/${epoch}/inserts?limit=${limit}`;
    if (after) path += `&after=${encodeURIComponent(bytes.toBase64(after))}`;
    const json = await this.#getJson(path);
    if (!isRecord(json) || !Array.isArray(json.inserts)) {
      throw malformed(path, 'expected {inserts: [...], next}');
    }
    const list = json.inserts as unknown[];
    if (list.length > limit) throw malformed(path, `more than ${limit} inserts on one page`);
    const entries = new Uint8Array(list.length * INSERT_SIZE);
    for (let i = 0; i < list.length; i++) {
      const item = list[i];
      if (
        !isRecord(item) ||
        !decode32Into(item.label, entries, i * INSERT_SIZE) ||
        !decode32Into(item.commitment, entries, i * INSERT_SIZE + 32)
      ) {
        throw malformed(path, `insert ${i} is not {label, commitment} of 32-byte base64`);
      }
    }
    let next: Uint8Array | null = null;
    if (json.next !== null) {
      next = decodeHash(json.next);
      if (!next) throw malformed(path, '"next" is neither null nor a 32-byte base64 label');
      if (list.length === 0) throw malformed(path, '"next" on an empty page');
    }
    return { count: list.length, entries, next };
  }

  async #getJson(path: string): Promise<unknown> {
    const body = await this.#get(path);
    try {
      return JSON.parse(bytes.fromUtf8(body)) as unknown;
    } catch {
      throw malformed(path, 'body is not JSON (truncated?)');
    }
  }

  async #get(path: string): Promise<Uint8Array> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#getOnce(path);
      } catch (e) {
        const retryable =
          e instanceof AuditError &&
          (e.code === 'ERR_AUDIT_DOWNLOAD_TRUNCATED' ||
            (e.code === 'ERR_AUDIT_NETWORK' && !/ECONNREFUSED/.test(String(e.cause))));
        if (!retryable || attempt >= this.#retries) throw e;
        await new Promise((r) => setTimeout(r, 100 * 4 ** attempt));
      }
    }
  }

  // A method, not a property read, so that narrowing does not survive an await.
  #aborted(): boolean {
    return this.#signal?.aborted === true;
  }

  async #getOnce(path: string): Promise<Uint8Array> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = this.#signal ? AbortSignal.any([timeout, this.#signal]) : timeout;
    const interrupted = (): AuditError =>
      new AuditError('ERR_AUDIT_INTERRUPTED', `GET ${path}: interrupted`);
    if (this.#aborted()) throw interrupted();
    let res: Response;
    try {
      res = await this.#fetch(this.#base + path, {
        signal,
        headers: { accept: 'application/json, text/plain' },
      });
    } catch (cause) {
      if (this.#aborted()) throw interrupted();
      throw new AuditError('ERR_AUDIT_NETWORK', `GET ${path}: ${describeCause(cause)}`, {
        cause: causeText(cause),
      });
    }
    if (!res.ok) {
      let detail = '';
      try {
        const text = (await res.text()).slice(0, 512);
        const j = JSON.parse(text) as unknown;
        if (isRecord(j) && typeof j.code === 'string') detail = ` ${j.code}`;
      } catch {
        // the status alone is enough
      }
      throw new AuditError('ERR_AUDIT_HTTP_STATUS', `GET ${path}: HTTP ${res.status}${detail}`);
    }
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > this.#maxBody) throw malformed(path, `body larger than ${this.#maxBody} bytes`);
    // undici's body stream; async iteration stops (and cancels it) on throw.
    const body = res.body as AsyncIterable<Uint8Array> | null;
    if (!body) return new Uint8Array(0);
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      for await (const value of body) {
        total += value.length;
        if (total > this.#maxBody) throw malformed(path, `body larger than ${this.#maxBody} bytes`);
        chunks.push(value);
      }
    } catch (cause) {
      if (cause instanceof AuditError) throw cause;
      if (this.#aborted()) throw interrupted();
      throw new AuditError('ERR_AUDIT_DOWNLOAD_TRUNCATED', `GET ${path}: body cut short`, {
        cause: causeText(cause),
      });
    }
    return bytes.concatBytes(...chunks);
  }
}

function causeText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const inner = e.cause instanceof Error ? ` (${e.cause.message})` : '';
  const code = (e.cause as { code?: unknown } | undefined)?.code;
  return `${e.message}${inner}${typeof code === 'string' ? ` ${code}` : ''}`;
}

function describeCause(e: unknown): string {
  if (e instanceof Error && e.name === 'TimeoutError') return 'timed out';
  const code = (e as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  if (typeof code === 'string') return code;
  return 'network error';
}
