/**
 * The verifying directory client. It pins a trust configuration (the directory's checkpoint
 * verifier key, its VRF public key, witnesses and quorum, maximum checkpoint age), remembers the
 * last checkpoint it accepted, and accepts an answer only if every proof holds:
 * checkpoint signature and witness quorum (C2SP signed-note, tlog-cosignature), freshness,
 * consistency with the last accepted checkpoint (RFC 9162 §2.1.4), the epoch record's
 * inclusion as the checkpoint's newest leaf (RFC 9162 §2.1.3), the prefix-tree proof against the
 * record's root, the VRF proofs (RFC 9381) of every probed version, the binary ladder
 * (KEYTRANS §6.2) and the commitment opening (KEYTRANS §11.6).
 *
 * Isomorphic: no Node built-ins; `fetch` and the clock are injected.
 * @module
 */
import { note, cosignature, bytes, merkle, KtError } from '@keytrail/core';
import { accountLabel, type AccountRef } from './account.ts';
import { decodeDeviceList, type Device } from './device-list.ts';
import {
  ClientError,
  ServiceError,
  MalformedResponseError,
  ProofError,
  AccountNotFoundError,
  InconsistencyDetectedError,
  type ClientErrorCode,
} from './errors.ts';
import {
  decodeLookupProof,
  decodeHistoryProof,
  verifyLookupProof,
  verifyHistoryProof,
  type ProofContext,
} from './proof.ts';

/** The answer of a `fetch`-compatible function that the client reads. */
export interface FetchResponse {
  readonly status: number;
  text(): Promise<string>;
}

/** A `fetch`-compatible function (the global `fetch` fits). */
export type FetchLike = (
  url: string,
  init?: { method?: string; headers?: Record<string, string>; body?: string },
) => Promise<FetchResponse>;

/** What the client trusts, pinned out of band. */
export interface TrustConfig {
  /** The directory's checkpoint verifier key (`name+hash+base64`), Ed25519 type 0x01. */
  readonly logKey: string;
  /** The directory's VRF public key (32 bytes). */
  readonly vrfPublicKey: Uint8Array;
  /** Witness cosignature verifier keys (type 0x04). */
  readonly witnesses?: readonly string[];
  /** How many witnesses must have cosigned; default 0. */
  readonly quorum?: number;
  /** Oldest acceptable checkpoint, by its newest epoch's timestamp and by cosignature time. */
  readonly maxCheckpointAgeMs: number;
}

/** The client's persistent state: the last checkpoint it accepted. */
export interface ClientState {
  readonly note: string;
  readonly size: number;
  readonly root: Uint8Array;
}

/** Options of {@link DirectoryClient}. */
export interface ClientOptions {
  /** Base URL of the directory, such as `https://kt.example.com`. */
  readonly baseUrl: string;
  readonly trust: TrustConfig;
  readonly fetch: FetchLike;
  /** The clock, in milliseconds since the Unix epoch. */
  readonly now: () => number;
  /** A state saved from an earlier session ({@link DirectoryClient.state}). */
  readonly state?: ClientState;
}

/** A verified lookup. */
export interface LookupResult {
  readonly tenant: string;
  readonly account: string;
  /** The greatest version. */
  readonly version: number;
  /** Its device list. */
  readonly devices: Device[];
  /** The canonical encoding of the device list. */
  readonly value: Uint8Array;
  /** The epoch the proof was made against (the checkpoint's newest). */
  readonly epoch: number;
  /** The checkpoint note the proof was checked against. */
  readonly checkpoint: string;
}

/** One version in a verified owner history. */
export interface VerifiedVersion {
  readonly version: number;
  readonly epoch: number;
  readonly value: Uint8Array;
  readonly devices: Device[] | undefined;
}

/** Why monitoring raised an alert. */
export type AlertKind = 'unknown-version' | 'value-mismatch' | 'missing-version';

/** A version the owner did not publish, or one it published that the directory lost. */
export interface MonitorAlert {
  readonly kind: AlertKind;
  readonly version: number;
  /** The epoch the directory says the version appeared in. */
  readonly epoch?: number;
  /** The device list the directory holds for that version, when it decodes. */
  readonly devices?: Device[];
}

/** The result of {@link DirectoryClient.monitor}. */
export interface MonitorReport {
  /** Greatest version the directory proves, -1 for none. */
  readonly greatestVersion: number;
  readonly versions: readonly VerifiedVersion[];
  /** Empty when the directory holds exactly what the owner published. */
  readonly alerts: readonly MonitorAlert[];
}

/** How far ahead of the client's clock an epoch timestamp may be. */
const MAX_FUTURE_SKEW_MS = 60_000;

const LOOKUP_PATH = (ref: AccountRef): string =>
  `/v1/tenants/${encodeURIComponent(ref.tenant)}/accounts/${encodeURIComponent(ref.account)}`;

function record(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new MalformedResponseError('ERR_RESPONSE_MALFORMED', 'response is not a JSON object');
  }
  return value as Record<string, unknown>;
}

function field<T extends 'string' | 'number'>(
  obj: Record<string, unknown>,
  name: string,
  type: T,
): T extends 'string' ? string : number {
  const v = obj[name];
  if (typeof v !== type) {
    throw new MalformedResponseError('ERR_RESPONSE_MALFORMED', `response field ${name} is missing`);
  }
  return v as T extends 'string' ? string : number;
}

function b64(text: string, what: string): Uint8Array {
  try {
    return bytes.fromBase64(text);
  } catch (cause) {
    throw new MalformedResponseError('ERR_RESPONSE_MALFORMED', `${what} is not base64`, { cause });
  }
}

function checkpointCode(err: KtError): ClientErrorCode {
  if (err.code === 'ERR_COSIGNATURE_QUORUM' || err.code === 'ERR_COSIGNATURE_FUTURE')
    return 'ERR_CHECKPOINT_QUORUM';
  if (err.code === 'ERR_COSIGNATURE_STALE') return 'ERR_CHECKPOINT_STALE';
  return 'ERR_CHECKPOINT_SIGNATURE';
}

/** A verifying client of one Keytrail directory. */
export class DirectoryClient {
  readonly #opts: ClientOptions;
  readonly #log: note.Verifier;
  readonly #witnesses: cosignature.CosignatureVerifier[];
  readonly #quorum: number;
  #state: ClientState | undefined;
  /** Greatest version seen per account: an account never goes back. */
  readonly #seen = new Map<string, number>();

  /**
   * @throws MalformedError from `@keytrail/core` if a verifier key does not parse.
   * @throws RangeError if the quorum exceeds the number of witnesses.
   */
  constructor(options: ClientOptions) {
    this.#opts = options;
    this.#log = note.parseVerifierKey(options.trust.logKey);
    this.#witnesses = (options.trust.witnesses ?? []).map((k) => cosignature.parseVerifierKey(k));
    this.#quorum = options.trust.quorum ?? 0;
    if (this.#quorum > this.#witnesses.length)
      throw new RangeError('DirectoryClient: quorum exceeds witnesses');
    this.#state = options.state;
  }

  /** The last accepted checkpoint, to persist between sessions. */
  get state(): ClientState | undefined {
    return this.#state;
  }

  async #get(
    path: string,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: string }> {
    let res: FetchResponse;
    try {
      res = await this.#opts.fetch(this.#opts.baseUrl.replace(/\/$/, '') + path, {
        method: 'GET',
        headers,
      });
    } catch (cause) {
      throw new ServiceError('ERR_TRANSPORT', 'the directory could not be reached', 0, undefined, {
        cause,
      });
    }
    const body = await res.text();
    if (res.status !== 200) {
      let code: string | undefined;
      try {
        const parsed = record(JSON.parse(body));
        code = typeof parsed['code'] === 'string' ? parsed['code'] : undefined;
      } catch {
        code = undefined;
      }
      throw new ServiceError(
        'ERR_SERVICE',
        `the directory answered ${res.status}`,
        res.status,
        code,
      );
    }
    return { status: res.status, body };
  }

  async #json(path: string, headers?: Record<string, string>): Promise<Record<string, unknown>> {
    const { body } = await this.#get(path, headers);
    try {
      return record(JSON.parse(body));
    } catch (err) {
      if (err instanceof ClientError) throw err;
      throw new MalformedResponseError('ERR_RESPONSE_MALFORMED', 'response is not JSON', {
        cause: err,
      });
    }
  }

  /**
   * Verifies a checkpoint note (signature, quorum, cosignature age) and its consistency with the
   * last accepted one, fetching a consistency proof when it grew; then remembers it.
   * @throws ProofError `ERR_CHECKPOINT_SIGNATURE`, `ERR_CHECKPOINT_QUORUM`, `ERR_CHECKPOINT_STALE`
   * @throws InconsistencyDetectedError `ERR_LOG_ROLLBACK`, `ERR_LOG_INCONSISTENT`
   */
  async acceptCheckpoint(noteText: string): Promise<ClientState> {
    const now = this.#opts.now();
    let size: number;
    let root: Uint8Array;
    try {
      const { checkpoint } = cosignature.verifyCheckpoint(noteText, {
        log: [this.#log],
        witnesses: this.#witnesses,
        quorum: this.#quorum,
        maxAgeSeconds: Math.floor(this.#opts.trust.maxCheckpointAgeMs / 1000),
        now: Math.floor(now / 1000),
      });
      ({ size, root } = checkpoint);
      if (checkpoint.origin !== this.#log.name) {
        throw new ProofError(
          'ERR_CHECKPOINT_SIGNATURE',
          'the checkpoint origin is not the pinned log name',
        );
      }
    } catch (err) {
      if (err instanceof KtError) {
        throw new ProofError(checkpointCode(err), 'the checkpoint does not verify', { cause: err });
      }
      throw err;
    }
    const prev = this.#state;
    if (prev !== undefined) {
      const evidence = { notes: [prev.note, noteText] };
      if (size < prev.size) {
        throw new InconsistencyDetectedError(
          'ERR_LOG_ROLLBACK',
          'the log is smaller than a checkpoint already accepted',
          evidence,
        );
      }
      if (size === prev.size && !bytes.equalBytes(root, prev.root)) {
        throw new InconsistencyDetectedError(
          'ERR_LOG_INCONSISTENT',
          'two checkpoints of one size with different roots',
          evidence,
        );
      }
      if (size > prev.size) {
        const body = await this.#json(`/v1/log/consistency?from=${prev.size}&to=${size}`);
        const list = body['proof'];
        if (!Array.isArray(list) || list.some((x) => typeof x !== 'string')) {
          throw new MalformedResponseError(
            'ERR_RESPONSE_MALFORMED',
            'consistency proof is not a list',
          );
        }
        const proof = (list as string[]).map((x) => b64(x, 'consistency proof'));
        try {
          merkle.verifyConsistency(prev.size, size, proof, prev.root, root);
        } catch (cause) {
          throw new InconsistencyDetectedError(
            'ERR_LOG_INCONSISTENT',
            'the log is not consistent with a checkpoint already accepted',
            { notes: [prev.note, noteText], proof },
            { cause },
          );
        }
      }
    }
    const next = { note: noteText, size, root };
    if (prev === undefined || size >= prev.size) this.#state = next;
    return next;
  }

  #context(ref: AccountRef, st: ClientState): ProofContext {
    return {
      vrfPublicKey: this.#opts.trust.vrfPublicKey,
      label: accountLabel(ref),
      size: st.size,
      root: st.root,
    };
  }

  #checkFresh(timestampMs: number): void {
    const age = this.#opts.now() - timestampMs;
    if (age > this.#opts.trust.maxCheckpointAgeMs) {
      throw new ProofError(
        'ERR_CHECKPOINT_STALE',
        'the newest epoch is older than the maximum checkpoint age',
      );
    }
    // A timestamp ahead of the clock would stretch freshness: a checkpoint signed "in the
    // future" could be replayed until then.
    if (-age > MAX_FUTURE_SKEW_MS) {
      throw new ProofError('ERR_CHECKPOINT_STALE', 'the newest epoch is dated in the future');
    }
  }

  /**
   * Looks an account up and verifies everything.
   * @returns the account's greatest version and its device list.
   * @throws AccountNotFoundError `ERR_ACCOUNT_NOT_FOUND` when the directory proves there is none.
   * @throws ProofError, InconsistencyDetectedError, MalformedResponseError, ServiceError.
   */
  async lookup(ref: AccountRef): Promise<LookupResult> {
    accountLabel(ref);
    const body = await this.#json(LOOKUP_PATH(ref));
    const checkpointText = field(body, 'checkpoint', 'string');
    const proof = decodeLookupProof(b64(field(body, 'proof', 'string'), 'proof'));
    const rawValue = body['value'];
    if (rawValue !== null && typeof rawValue !== 'string') {
      throw new MalformedResponseError('ERR_RESPONSE_MALFORMED', 'response field value is missing');
    }
    const value = rawValue === null ? undefined : b64(rawValue, 'value');
    const st = await this.acceptCheckpoint(checkpointText);
    verifyLookupProof(this.#context(ref, st), proof, value);
    this.#checkFresh(proof.record.timestampMs);
    const key = `${ref.tenant}/${ref.account}`;
    const seen = this.#seen.get(key);
    if (seen !== undefined && proof.version < seen) {
      throw new InconsistencyDetectedError(
        'ERR_VERSION_ROLLBACK',
        'the account went back to an older version',
        {
          notes: [checkpointText],
          details: { seen, served: proof.version },
        },
      );
    }
    this.#seen.set(key, proof.version);
    if (value === undefined) throw new AccountNotFoundError();
    return {
      tenant: ref.tenant,
      account: ref.account,
      version: proof.version,
      devices: decodeDeviceList(value),
      value,
      epoch: proof.record.epoch,
      checkpoint: checkpointText,
    };
  }

  /**
   * Fetches and verifies the owner's full history: every version with its value, and proof that
   * no other version of the ladder exists.
   * @param auth - headers authenticating the owner (see `ownerReadMessage`).
   * @throws as {@link lookup}.
   */
  async history(ref: AccountRef, auth: Record<string, string>): Promise<VerifiedVersion[]> {
    accountLabel(ref);
    const body = await this.#json(`${LOOKUP_PATH(ref)}/history`, auth);
    const checkpointText = field(body, 'checkpoint', 'string');
    const proof = decodeHistoryProof(b64(field(body, 'proof', 'string'), 'proof'));
    const st = await this.acceptCheckpoint(checkpointText);
    verifyHistoryProof(this.#context(ref, st), proof);
    this.#checkFresh(proof.record.timestampMs);
    return proof.entries.map((e) => {
      let devices: Device[] | undefined;
      try {
        devices = decodeDeviceList(e.value);
      } catch {
        devices = undefined;
      }
      return { version: e.version, epoch: e.epoch, value: e.value, devices };
    });
  }

  /**
   * Owner monitoring: compares every version the directory proves for the account with the
   * versions the owner published. Any version the owner did not publish raises an alert,
   * whatever its number: the proof shows every listed version and the absence of the rest of
   * the greatest version's ladder, and any version a viewer could be shown needs a ladder
   * version that this proof shows absent (PROTOCOL.md §5).
   * @param known - version → canonical device-list encoding the owner published.
   * @throws as {@link history}; a proof that fails is itself a reason for alarm.
   */
  async monitor(
    ref: AccountRef,
    known: ReadonlyMap<number, Uint8Array>,
    auth: Record<string, string>,
  ): Promise<MonitorReport> {
    const versions = await this.history(ref, auth);
    const alerts: MonitorAlert[] = [];
    const listed = new Set<number>();
    for (const v of versions) {
      listed.add(v.version);
      const mine = known.get(v.version);
      const extra = {
        version: v.version,
        epoch: v.epoch,
        ...(v.devices ? { devices: v.devices } : {}),
      };
      if (mine === undefined) alerts.push({ kind: 'unknown-version', ...extra });
      else if (!bytes.equalBytes(mine, v.value)) alerts.push({ kind: 'value-mismatch', ...extra });
    }
    for (const version of known.keys()) {
      if (!listed.has(version)) alerts.push({ kind: 'missing-version', version });
    }
    alerts.sort((a, b) => a.version - b.version);
    // Entries are sorted by version (decodeHistoryProof enforces it); no spread of a long list.
    const greatestVersion = versions[versions.length - 1]?.version ?? -1;
    return { greatestVersion, versions, alerts };
  }
}
