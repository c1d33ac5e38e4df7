/**
 * One `add-checkpoint` call to one witness (C2SP tlog-witness v1.0.0, client side), with the
 * transport policy of Tessera's witness client: keep-alive connections (a pooled `node:http`
 * agent), a short per-attempt timeout (~1 s), and a few attempts with exponential backoff
 * (10 → 50 → 250 ms) for failures that may pass: network errors, timeouts, 429 and 5xx.
 *
 * Answers that say something about the log are never retried blindly: 409 with
 * `text/x.tlog.size` is a size hint for the caller; 409 without it (same size, other root) and
 * 422 (consistency proof refused) are alarms; 400/403/404/413 mean the witness does not accept
 * this log or request at all.
 * @module
 */
import http from 'node:http';
import https from 'node:https';

/** The outcome of one submission. */
export type SubmitOutcome =
  | { readonly kind: 'cosigned'; readonly body: string }
  | { readonly kind: 'conflict'; readonly size: number }
  | { readonly kind: 'inconsistent'; readonly status: number }
  | { readonly kind: 'refused'; readonly status: number }
  | { readonly kind: 'unavailable'; readonly reason: string };

/** Transport settings. */
export interface SubmitOptions {
  /** Per-attempt timeout for the whole exchange; default 1000 ms. */
  readonly timeoutMs?: number;
  /** Attempts for transient failures; default 3. */
  readonly attempts?: number;
  /** First backoff; each next one is 5× longer; default 10 ms. */
  readonly backoffMs?: number;
  /** Stops retrying (the collector is closing). */
  readonly signal?: AbortSignal;
  /** Keep-alive agents; default {@link defaultAgents}. */
  readonly agents?: Agents;
}

/** Keep-alive connection pools for http and https witnesses. */
export interface Agents {
  readonly http: http.Agent;
  readonly https: https.Agent;
}

/** New keep-alive agents (idle sockets do not keep the process alive). */
export function createAgents(): Agents {
  const options = { keepAlive: true, maxSockets: 8, scheduling: 'lifo' as const };
  return { http: new http.Agent(options), https: new https.Agent(options) };
}

const defaultAgents: Agents = createAgents();

/** Largest response body read from a witness (a cosignature line is ~120 bytes). */
export const MAX_RESPONSE_BYTES = 64 * 1024;

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function classify(status: number, contentType: string, text: string | undefined): SubmitOutcome {
  const type = contentType.split(';')[0]?.trim().toLowerCase();
  if (status === 200) {
    return text === undefined ? { kind: 'refused', status: 200 } : { kind: 'cosigned', body: text };
  }
  if (status === 409 && type === 'text/x.tlog.size') {
    const m = /^(0|[1-9][0-9]{0,15})\n$/.exec(text ?? '');
    const size = m?.[1] === undefined ? NaN : Number(m[1]);
    // An unparseable size hint is no hint: treat it as the alarm it would otherwise be.
    return Number.isSafeInteger(size)
      ? { kind: 'conflict', size }
      : { kind: 'inconsistent', status: 409 };
  }
  if (status === 409 || status === 422) return { kind: 'inconsistent', status };
  if (status === 429 || status >= 500)
    return { kind: 'unavailable', reason: `http ${String(status)}` };
  return { kind: 'refused', status };
}

/**
 * One exchange on `node:http(s)` with a keep-alive agent. Any body beyond
 * {@link MAX_RESPONSE_BYTES}, and any exchange past the deadline, destroys the socket, so a
 * hostile witness cannot pin pooled connections.
 */
function attempt(
  url: string,
  body: string,
  timeoutMs: number,
  agents: Agents,
): Promise<SubmitOutcome> {
  return new Promise((resolve) => {
    let target: URL;
    try {
      target = new URL(`${url}/add-checkpoint`);
    } catch {
      resolve({ kind: 'refused', status: 0 });
      return;
    }
    const secure = target.protocol === 'https:';
    let settled = false;
    let timedOut = false;
    const finish = (outcome: SubmitOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(outcome);
    };
    const payload = Buffer.from(body, 'utf8');
    const req = (secure ? https : http).request(
      target,
      {
        method: 'POST',
        agent: secure ? agents.https : agents.http,
        headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': payload.length },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const type = res.headers['content-type'] ?? '';
        const tooLarge = (): void => {
          req.destroy();
          finish(classify(status, type, undefined));
        };
        if (Number(res.headers['content-length'] ?? '0') > MAX_RESPONSE_BYTES) {
          tooLarge();
          return;
        }
        const chunks: Buffer[] = [];
        let total = 0;
        res.on('data', (chunk: Buffer) => {
          total += chunk.length;
          if (total > MAX_RESPONSE_BYTES) tooLarge();
          else chunks.push(chunk);
        });
        res.on('end', () => {
          let text: string | undefined;
          try {
            text = strictUtf8.decode(Buffer.concat(chunks));
          } catch {
            text = undefined;
          }
          finish(classify(status, type, text));
        });
        res.on('error', () => {
          finish({ kind: 'unavailable', reason: timedOut ? 'timeout' : 'network' });
        });
      },
    );
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy();
      finish({ kind: 'unavailable', reason: 'timeout' });
    }, timeoutMs);
    req.on('error', () => {
      finish({ kind: 'unavailable', reason: timedOut ? 'timeout' : 'network' });
    });
    req.end(payload);
  });
}

/**
 * Submits an `add-checkpoint` body to the witness at submission prefix `url`.
 * Never throws: transport failures become `unavailable`.
 */
export async function submitCheckpoint(
  url: string,
  body: string,
  options: SubmitOptions = {},
): Promise<SubmitOutcome> {
  const attempts = options.attempts ?? 3;
  let backoff = options.backoffMs ?? 10;
  let last: SubmitOutcome = { kind: 'unavailable', reason: 'not attempted' };
  for (let i = 0; i < attempts; i++) {
    if (options.signal?.aborted) break;
    last = await attempt(url, body, options.timeoutMs ?? 1000, options.agents ?? defaultAgents);
    if (last.kind !== 'unavailable') return last;
    if (i + 1 < attempts) {
      await sleep(backoff, options.signal);
      backoff *= 5;
    }
  }
  return last;
}
