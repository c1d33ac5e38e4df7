/**
 * The directory's witness collector (C2SP tlog-witness v1.0.0, client side; C2SP
 * tlog-cosignature v1.0.1): implements the sequencer's {@link CheckpointCosigner} seam.
 *
 * For each checkpoint the sequencer commits, every configured witness is asked in parallel
 * (`old <size>` + one RFC 6962 consistency proof + the log-signed note). The call resolves with
 * the note plus the verified cosignatures as soon as the policy's quorum holds, or when every
 * witness has answered or failed, or at a deadline — so a slow or dead witness never holds the
 * others up, and the sequencer always gets a note to publish. Cosignatures that arrive later
 * (a slow witness, or one that came back and caught up) are handed to the late publisher.
 *
 * Per witness:
 * - the size it holds for this log is cached (and stored), so requests start at the right
 *   `old`; a 409 `text/x.tlog.size` answer moves it and the request is resent once or twice
 *   with a fresh proof (a loop is an alarm, tessera#1028);
 * - 409 without that content type (same size, other root) and 422 (proof refused) are alarms:
 *   counted, logged, reported, never retried blindly;
 * - transport failures are retried with backoff inside one request, then again in the
 *   background (1 s doubling to 30 s) against the newest checkpoint, which is how a witness
 *   that comes back catches up;
 * - requests to one witness never overlap: a newer checkpoint waits for the one in flight and
 *   replaces any queued older one;
 * - returned lines from keys other than the witness's are ignored; its own must verify over
 *   the checkpoint text with a timestamp within a minute of now and no older than an hour.
 * @module
 */
import { bytes, checkpoint, cosignature, note } from '@keytrail/core';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CheckpointCosigner, CosignRequest } from '../kt/cosigner.ts';
import { createAgents, submitCheckpoint, type Agents, type SubmitOptions } from './client.ts';
import { quorumMet, type WitnessEndpoint, type WitnessPolicy } from './policy.ts';
import type { WitnessingStore } from './store.ts';

/** Something the operator must look at: a witness says the log is inconsistent, or lies. */
export interface WitnessAlarm {
  readonly witness: string;
  /**
   * `root_mismatch` (409 without a size: same size, other root), `proof_rejected` (422),
   * `size_loop` (409 hints that do not converge), `bad_cosignature` (a line from the witness's
   * key that does not verify), `rollback` (the witness forgot part of the log).
   */
  readonly kind: 'root_mismatch' | 'proof_rejected' | 'size_loop' | 'bad_cosignature' | 'rollback';
  readonly size: number;
  readonly detail: string;
}

/** A minimal logger (pino-compatible). */
export interface CollectorLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** Options of {@link WitnessCollector}. */
export interface WitnessCollectorOptions {
  readonly policy: WitnessPolicy;
  /** Persistent state; without it the collector starts every witness at `old 0`. */
  readonly store?: WitnessingStore;
  /** Metrics registry; default a fresh one ({@link WitnessCollector.registry}). */
  readonly registry?: Registry;
  /** Transport settings per request (timeout ~1 s, 3 attempts, 10 ms backoff ×5). */
  readonly transport?: Omit<SubmitOptions, 'signal' | 'agents'>;
  /** Longest a {@link WitnessCollector.cosign} call waits for the quorum; default 5000 ms. */
  readonly deadlineMs?: number;
  /** Background retry delays for unreachable witnesses; default 1000 → 30000 ms. */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  /** Wall clock in milliseconds; default `Date.now`. */
  readonly now?: () => number;
  /** Cosignature timestamps may be this far ahead of `now`; default 60 s. */
  readonly maxFutureSkewSeconds?: number;
  /** Cosignature timestamps may be this far behind `now`; default 3600 s. */
  readonly maxPastSkewSeconds?: number;
  readonly logger?: CollectorLogger;
  readonly onAlarm?: (alarm: WitnessAlarm) => void;
}

/** Hands cosignatures that arrived after `cosign` returned to whoever publishes checkpoints. */
export type LatePublisher = (size: number, note: string) => Promise<void>;

/** What is known about one witness. */
export interface WitnessStatus {
  readonly name: string;
  readonly vkey: string;
  /** The size the witness holds for this log, as last learned. */
  readonly size: number;
  /** The last failure reason, or undefined after a success. */
  readonly lastFailure: string | undefined;
  /** Timestamp of the newest cosignature received, POSIX seconds. */
  readonly lastCosignedAt: number | undefined;
}

type Outcome =
  | { ok: true; sig: note.NoteSignature; line: string; timestamp: number }
  | { ok: false; reason: string; retry: boolean };

class Round {
  readonly size: number;
  readonly root: Uint8Array;
  readonly text: string;
  readonly request: CosignRequest;
  readonly sigs = new Map<string, note.NoteSignature>();
  readonly answered = new Set<string>();
  resolved = false;
  resolve!: (note: string) => void;
  readonly published: Promise<string>;
  timer: NodeJS.Timeout | undefined;

  constructor(request: CosignRequest, text: string, cp: checkpoint.Checkpoint) {
    this.request = request;
    this.text = text;
    this.size = cp.size;
    this.root = cp.root;
    this.published = new Promise((r) => (this.resolve = r));
  }

  note(order: readonly WitnessEndpoint[]): string {
    const sigs = order.flatMap((w) => {
      const s = this.sigs.get(w.name);
      return s ? [s] : [];
    });
    return sigs.length === 0
      ? this.request.checkpoint
      : note.addSignatures(this.request.checkpoint, sigs);
  }
}

interface Worker {
  readonly endpoint: WitnessEndpoint;
  size: number;
  running: boolean;
  next: Round | undefined;
  retryTimer: NodeJS.Timeout | undefined;
  retryDelay: number;
  lastFailure: string | undefined;
  lastCosignedAt: number | undefined;
}

const sigLine = (s: note.NoteSignature): string =>
  `— ${s.name} ${bytes.toBase64(bytes.concatBytes(bytes.uintBE(s.keyId, 4), s.signature))}\n`;

/** Collects witness cosignatures for the directory's checkpoints. */
export class WitnessCollector implements CheckpointCosigner {
  /** The registry holding the per-witness metrics. */
  readonly registry: Registry;
  readonly #o: WitnessCollectorOptions;
  readonly #workers: Worker[];
  readonly #now: () => number;
  readonly #abort = new AbortController();
  readonly #agents: Agents = createAgents();
  readonly #metrics: {
    latency: Histogram<'witness'>;
    failures: Counter<'witness' | 'reason'>;
    alarms: Counter<'witness' | 'kind'>;
    lag: Gauge<'witness'>;
    lastCosigned: Gauge<'witness'>;
    rounds: Counter<'result'>;
  };
  #round: Round | undefined;
  #late: LatePublisher | undefined;
  #lateChain: Promise<void> = Promise.resolve();
  #inflight = new Set<Promise<void>>();
  #closed = false;

  private constructor(o: WitnessCollectorOptions, sizes: Map<string, number>) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.registry = o.registry ?? new Registry();
    const registers = [this.registry];
    this.#metrics = {
      latency: new Histogram({
        name: 'keytrail_witnessing_request_seconds',
        help: 'add-checkpoint exchanges with each witness (retries and 409 resends included)',
        labelNames: ['witness'],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers,
      }),
      failures: new Counter({
        name: 'keytrail_witnessing_failures_total',
        help: 'Checkpoints a witness did not cosign, by reason',
        labelNames: ['witness', 'reason'],
        registers,
      }),
      alarms: new Counter({
        name: 'keytrail_witnessing_alarms_total',
        help: 'Witness answers that claim the log is inconsistent, or are themselves wrong',
        labelNames: ['witness', 'kind'],
        registers,
      }),
      lag: new Gauge({
        name: 'keytrail_witnessing_lag',
        help: 'Newest checkpoint size minus the size the witness last cosigned',
        labelNames: ['witness'],
        registers,
      }),
      lastCosigned: new Gauge({
        name: 'keytrail_witnessing_last_cosignature_timestamp_seconds',
        help: 'Timestamp of the newest cosignature received from the witness',
        labelNames: ['witness'],
        registers,
      }),
      rounds: new Counter({
        name: 'keytrail_witnessing_rounds_total',
        help: 'Checkpoints handed to the collector, by whether the quorum held when released',
        labelNames: ['result'],
        registers,
      }),
    };
    this.#workers = o.policy.witnesses.map((endpoint) => ({
      endpoint,
      size: sizes.get(endpoint.vkey) ?? 0,
      running: false,
      next: undefined,
      retryTimer: undefined,
      retryDelay: o.retryMinMs ?? 1000,
      lastFailure: undefined,
      lastCosignedAt: undefined,
    }));
  }

  /** Creates a collector, loading each witness's known size from the store. */
  static async create(options: WitnessCollectorOptions): Promise<WitnessCollector> {
    const vkeys = options.policy.witnesses.map((w) => w.vkey);
    const sizes = options.store ? await options.store.sizes(vkeys) : new Map<string, number>();
    return new WitnessCollector(options, sizes);
  }

  /**
   * Sets who receives cosignatures that arrive after {@link cosign} returned. Calls are
   * serialised, and each carries every cosignature known for that size.
   */
  setLatePublisher(publish: LatePublisher): void {
    this.#late = publish;
  }

  /** The witness policy in force. */
  get policy(): WitnessPolicy {
    return this.#o.policy;
  }

  /** Per-witness status, in policy order. */
  status(): WitnessStatus[] {
    return this.#workers.map((w) => ({
      name: w.endpoint.name,
      vkey: w.endpoint.vkey,
      size: w.size,
      lastFailure: w.lastFailure,
      lastCosignedAt: w.lastCosignedAt,
    }));
  }

  /**
   * Asks every witness to cosign the checkpoint; resolves with the note and the cosignatures
   * collected when the quorum holds, every witness has answered, or the deadline passed.
   * Never rejects for a witness failure.
   */
  cosign(request: CosignRequest): Promise<string> {
    let text: string;
    let cp: checkpoint.Checkpoint;
    try {
      text = note.parse(request.checkpoint).text;
      cp = checkpoint.parse(text);
    } catch (err) {
      // Not ours to fix: publish what the sequencer signed.
      this.#o.logger?.error({ err }, 'collector got a checkpoint it cannot parse');
      return Promise.resolve(request.checkpoint);
    }
    if (this.#closed || this.#workers.length === 0) return Promise.resolve(request.checkpoint);
    const round = new Round(request, text, cp);
    if (this.#round && this.#round.size > round.size) {
      // A recovering sequencer re-publishing an older epoch: ask, but keep the newest current.
    } else {
      this.#round = round;
    }
    round.timer = setTimeout(() => {
      this.#finish(round);
    }, this.#o.deadlineMs ?? 5000);
    for (const w of this.#workers) {
      this.#metrics.lag.set({ witness: w.endpoint.name }, Math.max(0, round.size - w.size));
      this.#dispatch(w, round);
    }
    return round.published;
  }

  /** Stops background retries and waits for requests in flight. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    for (const w of this.#workers) clearTimeout(w.retryTimer);
    if (this.#round) this.#finish(this.#round);
    await Promise.allSettled([...this.#inflight]);
    await this.#lateChain;
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }

  #open(): boolean {
    return !this.#closed;
  }

  #finish(round: Round): void {
    if (round.resolved) return;
    round.resolved = true;
    clearTimeout(round.timer);
    const met = quorumMet(this.#o.policy.quorum, new Set(round.sigs.keys()));
    this.#metrics.rounds.inc({ result: met ? 'quorum' : 'partial' });
    if (!met) {
      this.#o.logger?.warn(
        { size: round.size, cosigned: [...round.sigs.keys()] },
        'checkpoint released without a witness quorum',
      );
    }
    round.resolve(round.note(this.#o.policy.witnesses));
  }

  #dispatch(w: Worker, round: Round): void {
    if (this.#closed) return;
    if (w.running) {
      // Newest wins: an older queued checkpoint is not worth a request any more.
      if (!w.next || w.next.size <= round.size) w.next = round;
      return;
    }
    clearTimeout(w.retryTimer);
    w.retryTimer = undefined;
    w.running = true;
    const job = this.#run(w, round).finally(() => {
      this.#inflight.delete(job);
    });
    this.#inflight.add(job);
  }

  async #run(w: Worker, first: Round): Promise<void> {
    let round: Round | undefined = first;
    while (round && !this.#closed) {
      const outcome = await this.#exchange(w, round);
      this.#settle(w, round, outcome);
      // Closing may have happened while the exchange was in flight.
      if (!outcome.ok && outcome.retry && this.#open() && !w.next) {
        const delay = w.retryDelay;
        w.retryDelay = Math.min(delay * 2, this.#o.retryMaxMs ?? 30_000);
        w.retryTimer = setTimeout(() => {
          const current = this.#round;
          if (current) this.#dispatch(w, current);
        }, delay);
        w.retryTimer.unref();
      }
      if (outcome.ok) w.retryDelay = this.#o.retryMinMs ?? 1000;
      round = w.next;
      w.next = undefined;
    }
    w.running = false;
  }

  #settle(w: Worker, round: Round, outcome: Outcome): void {
    const name = w.endpoint.name;
    if (outcome.ok) {
      w.lastFailure = undefined;
      w.lastCosignedAt = outcome.timestamp;
      this.#metrics.lastCosigned.set({ witness: name }, outcome.timestamp);
      round.sigs.set(name, outcome.sig);
    } else {
      w.lastFailure = outcome.reason;
      this.#metrics.failures.inc({ witness: name, reason: outcome.reason });
    }
    const newest = this.#round?.size ?? round.size;
    this.#metrics.lag.set({ witness: name }, Math.max(0, newest - w.size));
    round.answered.add(name);
    if (!round.resolved) {
      const met = quorumMet(this.#o.policy.quorum, new Set(round.sigs.keys()));
      if (met || round.answered.size === this.#workers.length) this.#finish(round);
    } else if (outcome.ok) {
      const late = this.#late;
      if (late) {
        const text = round.note(this.#o.policy.witnesses);
        this.#lateChain = this.#lateChain
          .then(() => late(round.size, text))
          .catch((err: unknown) => {
            this.#o.logger?.error({ err, size: round.size }, 'publishing late cosignatures failed');
          });
      }
    }
  }

  #alarm(w: Worker, kind: WitnessAlarm['kind'], size: number, detail: string): void {
    this.#metrics.alarms.inc({ witness: w.endpoint.name, kind });
    const alarm = { witness: w.endpoint.name, kind, size, detail };
    this.#o.logger?.error(alarm, 'witness alarm');
    this.#o.onAlarm?.(alarm);
  }

  async #setSize(w: Worker, size: number): Promise<void> {
    w.size = size;
    try {
      await this.#o.store?.setSize(w.endpoint.vkey, size);
    } catch (err) {
      this.#o.logger?.warn({ err, witness: w.endpoint.name }, 'could not store the witness size');
    }
  }

  async #exchange(w: Worker, round: Round): Promise<Outcome> {
    const started = performance.now();
    try {
      return await this.#exchangeInner(w, round);
    } finally {
      this.#metrics.latency.observe(
        { witness: w.endpoint.name },
        (performance.now() - started) / 1000,
      );
    }
  }

  async #exchangeInner(w: Worker, round: Round): Promise<Outcome> {
    let old = w.size;
    const seen = new Set<number>();
    for (let conflicts = 0; ; conflicts++) {
      if (old > round.size) {
        // The witness holds a larger tree than this checkpoint: a recovering sequencer
        // re-publishing an older epoch. It cannot cosign this one; the next one catches up.
        return { ok: false, reason: 'ahead', retry: false };
      }
      let proof: Uint8Array[];
      try {
        proof = old === 0 || old === round.size ? [] : round.request.consistencyProof(old);
      } catch {
        return { ok: false, reason: 'no_proof', retry: false };
      }
      let body = `old ${String(old)}\n`;
      for (const h of proof) body += `${bytes.toBase64(h)}\n`;
      body += `\n${round.request.checkpoint}`;
      const out = await submitCheckpoint(w.endpoint.url, body, {
        ...this.#o.transport,
        signal: this.#abort.signal,
        agents: this.#agents,
      });
      switch (out.kind) {
        case 'cosigned':
          return this.#accept(w, round, out.body);
        case 'conflict': {
          if (out.size < w.size) {
            this.#alarm(
              w,
              'rollback',
              round.size,
              `witness went back from ${String(w.size)} to ${String(out.size)}`,
            );
          }
          if (seen.has(out.size) || out.size === old || conflicts >= 2) {
            this.#alarm(
              w,
              'size_loop',
              round.size,
              `409 hints do not converge (${String(out.size)})`,
            );
            return { ok: false, reason: 'size_loop', retry: false };
          }
          seen.add(out.size);
          await this.#setSize(w, out.size);
          old = out.size;
          continue;
        }
        case 'inconsistent': {
          const kind = out.status === 422 ? 'proof_rejected' : 'root_mismatch';
          this.#alarm(w, kind, round.size, `HTTP ${String(out.status)} for old ${String(old)}`);
          return { ok: false, reason: kind, retry: false };
        }
        case 'refused':
          return { ok: false, reason: `refused_${String(out.status)}`, retry: false };
        case 'unavailable':
          return {
            ok: false,
            reason: out.reason.startsWith('http') ? 'unavailable_http' : out.reason,
            retry: true,
          };
      }
    }
  }

  async #accept(w: Worker, round: Round, body: string): Promise<Outcome> {
    const v = w.endpoint.verifier;
    let lines: note.NoteSignature[];
    try {
      // The response is signature lines; parsed as the signature block of the checkpoint.
      lines = note.parse(`${round.text}\n${body}`).signatures;
    } catch {
      this.#alarm(w, 'bad_cosignature', round.size, 'response is not signature lines');
      return { ok: false, reason: 'bad_response', retry: false };
    }
    // Lines from other keys are ignored (tlog-witness: "MUST ignore any cosignatures from unknown keys").
    const mine = lines.filter((s) => s.name === v.name && s.keyId === v.keyId);
    const now = Math.floor(this.#now() / 1000);
    for (const sig of mine) {
      let timestamp: number;
      try {
        ({ timestamp } = cosignature.verify(round.text, sig, v));
      } catch {
        continue;
      }
      if (
        timestamp > now + (this.#o.maxFutureSkewSeconds ?? 60) ||
        timestamp < now - (this.#o.maxPastSkewSeconds ?? 3600)
      ) {
        return { ok: false, reason: 'clock_skew', retry: false };
      }
      await this.#setSize(w, Math.max(w.size, round.size));
      const line = sigLine(sig);
      try {
        await this.#o.store?.addCosignature({
          size: round.size,
          root: round.root,
          vkey: w.endpoint.vkey,
          line,
          timestamp,
        });
      } catch (err) {
        this.#o.logger?.warn({ err, witness: w.endpoint.name }, 'could not store a cosignature');
      }
      return { ok: true, sig, line, timestamp };
    }
    this.#alarm(w, 'bad_cosignature', round.size, 'no valid cosignature from the witness key');
    return { ok: false, reason: 'bad_cosignature', retry: false };
  }
}
