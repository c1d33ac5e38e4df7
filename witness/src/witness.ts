/**
 * The witness: C2SP tlog-witness v1.0.0 `add-checkpoint` semantics over a {@link WitnessStore},
 * answering with C2SP tlog-cosignature v1.0.1 `cosignature/v1` signatures.
 *
 * Checks, in the order the specification lists them (and torchwood's litewitness applies them):
 * 1. the body parses (400), the note parses and its text is a checkpoint (400);
 * 2. the origin is followed (404; litewitness answers 403, the specification says 404);
 * 3. a trusted log key verifies the note, and no line matching a trusted key by name and ID
 *    fails (403);
 * 4. old ≤ checkpoint size (400); old 0 carries an empty proof (422); a size-0 checkpoint has
 *    the empty-tree root (422, as C2SP `main`);
 * 5. old equals the stored size (409 with `text/x.tlog.size`);
 * 6. same size: same root (else 409 without the size body, v1.0.0; `main` says 422), empty
 *    proof (else 422), and the checkpoint is re-signed with a fresh timestamp (witness#278);
 * 7. otherwise the RFC 6962 consistency proof from the stored root verifies (422);
 * 8. compare-and-swap persist, then reply. A lost race re-reads and answers 409.
 *
 * A validly signed checkpoint that contradicts the stored one (same size, other root; or a
 * larger one whose proof fails) is kept as evidence before answering.
 *
 * Reasoning on the cache: for one origin, a tree size maps to exactly one root forever (the
 * size only grows, and a same-size update never changes the root; the database trigger
 * enforces both). So a cached (size, root) is never wrong, only possibly old; when it is old
 * the compare-and-swap fails and the request is answered from a fresh read.
 * @module
 */
import type { KeyObject } from 'node:crypto';
import { bytes, checkpoint, cosignature, KtError, merkle, note } from '@keytrail/core';
import { SizeConflictError, WitnessError } from './errors.ts';
import { parseAddCheckpointRequest } from './request.ts';
import { EMPTY_ROOT, type EvidenceKind, type LogState, type WitnessStore } from './store.ts';
import { formatSignatureLine, type WitnessKey } from './key.ts';
import { ed25519PublicKey, verifyAsync } from './async-crypto.ts';

/** What a successful `add-checkpoint` returns. */
export interface AddCheckpointResult {
  readonly origin: string;
  readonly size: number;
  /** The cosignature line(s), each `— <name> <base64>\n`: the HTTP response body. */
  readonly cosignature: string;
  /** The cosignature timestamp, POSIX seconds. */
  readonly timestamp: number;
}

/** Hooks for metrics; every method is optional. */
export interface WitnessObserver {
  evidence?(kind: EvidenceKind): void;
  /** A compare-and-swap lost a race (answered 409). */
  casConflict?(): void;
}

/** Options of {@link Witness}. */
export interface WitnessOptions {
  readonly store: WitnessStore;
  readonly key: WitnessKey;
  /** Wall clock in milliseconds; default `Date.now`. */
  readonly now?: () => number;
  /** How long the in-memory list of followed logs is trusted; default 10 s. */
  readonly logsRefreshMs?: number;
  readonly observer?: WitnessObserver;
  /**
   * Test-only: awaited after every check passed and before the compare-and-swap, to force the
   * race the specification describes (torchwood `testingOnlyStallRequest`).
   */
  readonly testingOnlyStallRequest?: (req: {
    readonly origin: string;
    readonly oldSize: number;
    readonly size: number;
  }) => Promise<void> | void;
}

interface LogVerifier {
  readonly verifier: note.Verifier;
  /** The key for the thread-pool path (undefined: it can never verify). */
  readonly key: KeyObject | undefined;
}

interface LogEntry {
  readonly verifiers: readonly note.Verifier[];
  /** By `<key ID>\0<name>`. */
  readonly byId: ReadonlyMap<string, LogVerifier>;
}

const idKey = (name: string, keyId: number): string => `${String(keyId >>> 0)}\u0000${name}`;

/** The log keys of every followed origin, reloaded from storage now and then. */
class LogRegistry {
  readonly #store: WitnessStore;
  readonly #now: () => number;
  readonly #refreshMs: number;
  #logs = new Map<string, LogEntry>();
  #loadedAt = -Infinity;
  #loading: Promise<void> | undefined;

  constructor(store: WitnessStore, now: () => number, refreshMs: number) {
    this.#store = store;
    this.#now = now;
    this.#refreshMs = refreshMs;
  }

  async get(origin: string): Promise<LogEntry | undefined> {
    const age = this.#now() - this.#loadedAt;
    if (age > this.#refreshMs) await this.reload();
    const entry = this.#logs.get(origin);
    // A log added by the admin command since the last load: look again, at most once a second,
    // so a flood of unknown origins cannot turn into a flood of queries.
    if (!entry && age > 1000) {
      await this.reload();
      return this.#logs.get(origin);
    }
    return entry;
  }

  reload(): Promise<void> {
    // Single flight: concurrent requests share one query.
    this.#loading ??= this.#store
      .listLogs()
      .then((logs) => {
        const next = new Map<string, LogEntry>();
        for (const log of logs) {
          const verifiers: note.Verifier[] = [];
          const byId = new Map<string, LogVerifier>();
          for (const vkey of log.vkeys) {
            try {
              const v = note.parseVerifierKey(vkey);
              verifiers.push(v);
              byId.set(idKey(v.name, v.keyId), { verifier: v, key: ed25519PublicKey(v.publicKey) });
            } catch {
              // Keys are validated when added; an unparseable stored key is skipped, not trusted.
            }
          }
          next.set(log.origin, { verifiers, byId });
        }
        this.#logs = next;
        this.#loadedAt = this.#now();
      })
      .finally(() => {
        this.#loading = undefined;
      });
    return this.#loading;
  }
}

function noteError(err: unknown): WitnessError {
  if (err instanceof KtError) {
    if (
      err.code === 'ERR_NOTE_NO_VERIFIED_SIGNATURE' ||
      err.code === 'ERR_NOTE_INVALID_SIGNATURE'
    ) {
      return new WitnessError(
        'ERR_WITNESS_BAD_SIGNATURE',
        'no valid signature from a trusted log key',
        {
          cause: err,
        },
      );
    }
    if (err.name === 'MalformedError') {
      return new WitnessError('ERR_WITNESS_MALFORMED', 'checkpoint note is malformed', {
        cause: err,
      });
    }
  }
  throw err;
}

/** A C2SP tlog-witness. */
export class Witness {
  readonly #store: WitnessStore;
  readonly #key: WitnessKey;
  readonly #now: () => number;
  readonly #logs: LogRegistry;
  readonly #states = new Map<string, LogState>();
  readonly #observer: WitnessObserver;
  readonly #stall: WitnessOptions['testingOnlyStallRequest'];

  constructor(options: WitnessOptions) {
    this.#store = options.store;
    this.#key = options.key;
    this.#now = options.now ?? Date.now;
    this.#logs = new LogRegistry(options.store, this.#now, options.logsRefreshMs ?? 10_000);
    this.#observer = options.observer ?? {};
    this.#stall = options.testingOnlyStallRequest;
  }

  /** The witness's `cosignature/v1` verifier key. */
  get vkey(): string {
    return this.#key.vkey;
  }

  /** The witness's cosigner name. */
  get name(): string {
    return this.#key.name;
  }

  /** Forgets cached log keys and states (after an admin change in this process). */
  async reloadLogs(): Promise<void> {
    this.#states.clear();
    await this.#logs.reload();
  }

  /**
   * Handles one `add-checkpoint` request body.
   * @throws WitnessError `ERR_WITNESS_MALFORMED`, `ERR_WITNESS_OLD_SIZE_TOO_LARGE` (400);
   *   `ERR_WITNESS_BAD_SIGNATURE` (403); `ERR_WITNESS_UNKNOWN_LOG` (404);
   *   {@link SizeConflictError} (409 with the size); `ERR_WITNESS_ROOT_MISMATCH` (409);
   *   `ERR_WITNESS_PROOF_INVALID`, `ERR_WITNESS_PROOF_NOT_EMPTY` (422).
   */
  async addCheckpoint(body: Uint8Array): Promise<AddCheckpointResult> {
    const req = parseAddCheckpointRequest(body);
    let cp: checkpoint.Checkpoint;
    let parsed: note.Note;
    try {
      parsed = note.parse(req.note);
      cp = checkpoint.parse(parsed.text);
    } catch (err) {
      throw noteError(err);
    }
    const log = await this.#logs.get(cp.origin);
    if (!log) throw new WitnessError('ERR_WITNESS_UNKNOWN_LOG', 'unknown log origin');
    const verifiers = await this.#preverified(log, parsed);
    let opened: ReturnType<typeof note.open>;
    try {
      opened = note.open(req.note, verifiers);
    } catch (err) {
      throw noteError(err);
    }
    if (req.oldSize > cp.size) {
      throw new WitnessError(
        'ERR_WITNESS_OLD_SIZE_TOO_LARGE',
        'old size exceeds the checkpoint size',
      );
    }
    if (req.oldSize === 0 && req.proof.length > 0) {
      throw new WitnessError(
        'ERR_WITNESS_PROOF_NOT_EMPTY',
        'the proof must be empty when old is 0',
      );
    }
    if (cp.size === 0 && !bytes.equalBytes(cp.root, EMPTY_ROOT)) {
      throw new WitnessError(
        'ERR_WITNESS_PROOF_INVALID',
        'a size-0 checkpoint must have the empty root',
      );
    }
    // What we store: the checkpoint text and only the log signatures that verified.
    const signed = note.format({ text: opened.text, signatures: opened.verified });

    let state = this.#states.get(cp.origin);
    if (state?.size !== req.oldSize) state = await this.#readState(cp.origin);

    const evidence = async (kind: EvidenceKind, stored: LogState): Promise<void> => {
      await this.#store.recordEvidence({
        origin: cp.origin,
        kind,
        stored,
        oldSize: req.oldSize,
        proof: req.proof,
        receivedCheckpoint: signed,
        receivedText: opened.text,
        receivedSize: cp.size,
        receivedRoot: cp.root,
      });
      this.#observer.evidence?.(kind);
    };

    if (cp.size === state.size && !bytes.equalBytes(cp.root, state.root)) {
      // A validly signed checkpoint of the size we hold with another root: equivocation.
      await evidence('same_size_fork', state);
      if (req.oldSize !== state.size) throw new SizeConflictError(state.size);
      throw new WitnessError(
        'ERR_WITNESS_ROOT_MISMATCH',
        'same tree size with a different root hash',
      );
    }
    if (req.oldSize !== state.size) throw new SizeConflictError(state.size);
    const sameSize = req.oldSize === cp.size;
    if (sameSize) {
      if (req.proof.length > 0) {
        throw new WitnessError(
          'ERR_WITNESS_PROOF_INVALID',
          'the proof must be empty for equal sizes',
        );
      }
    } else if (req.oldSize > 0) {
      try {
        merkle.verifyConsistency(req.oldSize, cp.size, req.proof, state.root, cp.root);
      } catch (err) {
        if (!(err instanceof KtError)) throw err;
        await evidence('consistency_proof_failed', state);
        throw new WitnessError('ERR_WITNESS_PROOF_INVALID', 'consistency proof does not verify', {
          cause: err,
        });
      }
    }

    await this.#stall?.({ origin: cp.origin, oldSize: req.oldSize, size: cp.size });

    // Signed before the compare-and-swap so it is stored with the state; it leaves this
    // process only if the swap succeeds. The cosignature/v1 signature field is the big-endian
    // timestamp followed by Ed25519 over the cosignature message (as `cosignature.sign`).
    const timestamp = Math.floor(this.#now() / 1000);
    const sig = await this.#key.signAsync(cosignature.message(opened.text, timestamp));
    const line = formatSignatureLine({
      name: this.#key.name,
      keyId: this.#key.keyId,
      signature: bytes.concatBytes(bytes.uintBE(timestamp, 8), sig),
    });
    const next = { size: cp.size, root: cp.root, checkpoint: signed, cosignature: line, timestamp };
    const swapped = sameSize
      ? await this.#store.refresh(cp.origin, next)
      : await this.#store.advance(cp.origin, req.oldSize, next);
    if (!swapped) {
      this.#observer.casConflict?.();
      const fresh = await this.#readState(cp.origin);
      throw new SizeConflictError(fresh.size);
    }
    this.#states.set(cp.origin, { size: cp.size, root: cp.root, checkpoint: signed });
    return { origin: cp.origin, size: cp.size, cosignature: line, timestamp };
  }

  /**
   * The latest cosigned checkpoint for the origin whose SHA-256 is given, with the log's
   * signatures and this witness's cosignature, or undefined.
   */
  async latestCosigned(originSha256: Uint8Array): Promise<string | undefined> {
    return this.#store.latestCosigned(originSha256);
  }

  /**
   * Verifies, on the thread pool, the first line of each trusted key (the only one
   * `note.open` verifies: repeats are dropped), and returns verifiers that answer from those
   * results, so `note.open` applies the signed-note rules without blocking the event loop.
   */
  async #preverified(log: LogEntry, parsed: note.Note): Promise<note.Verifier[]> {
    const msg = bytes.utf8(parsed.text);
    const first = new Set<string>();
    const results = new Map<string, Promise<boolean>>();
    for (const s of parsed.signatures) {
      const id = idKey(s.name, s.keyId);
      const v = log.byId.get(id);
      if (!v || first.has(id)) continue;
      first.add(id);
      results.set(
        `${id}\u0000${bytes.toBase64(s.signature)}`,
        verifyAsync(v.key, msg, s.signature),
      );
    }
    const settled = new Map<string, boolean>();
    for (const [k, p] of results) settled.set(k, await p);
    // Keyed by key and signature bytes: anything not verified above is verified here, inline.
    return log.verifiers.map((v) => ({
      name: v.name,
      keyId: v.keyId,
      verify: (m: Uint8Array, sig: Uint8Array): boolean =>
        settled.get(`${idKey(v.name, v.keyId)}\u0000${bytes.toBase64(sig)}`) ?? v.verify(m, sig),
    }));
  }

  async #readState(origin: string): Promise<LogState> {
    const state = await this.#store.getState(origin);
    // The log was listed a moment ago and logs are never removed.
    if (!state) throw new WitnessError('ERR_WITNESS_UNKNOWN_LOG', 'unknown log origin');
    this.#states.set(origin, state);
    return state;
  }
}
