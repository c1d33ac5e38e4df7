/**
 * The write path: a device-list change is authorised, checked against the current list and
 * stored durably, in one transaction, before it is acknowledged with a receipt naming the
 * epoch it will appear in (directory/PROTOCOL.md §3).
 * @module
 */
import {
  encodeDeviceList,
  decodeDeviceList,
  checkDeviceList,
  type AccountRef,
  type Device,
  type DeviceList,
} from '@keytrail/client';
import { HttpError } from '@keytrail/server-kit';
import { EPOCH_LOCK, type KtStore } from './store.ts';
import type { Credential, Grant, UpdateAuthorizer } from './authorization.ts';

/** The answer to an accepted write. */
export interface Receipt {
  readonly tenant: string;
  readonly account: string;
  readonly version: number;
  /** The epoch whose checkpoint will include this version. */
  readonly epoch: number;
}

/** A requested device list change. */
export interface UpdateRequest {
  readonly ref: AccountRef;
  /** The version the caller expects to create (compare-and-swap); default: current + 1. */
  readonly version?: number;
  readonly devices: DeviceList;
  readonly credential: Credential;
}

/** Most updates committed in one transaction. */
const MAX_BATCH = 1000;
/** Group-commit batches in flight at once (one is committing while the next one is built). */
const MAX_IN_FLIGHT = 2;

interface Job {
  readonly req: UpdateRequest;
  readonly value: Uint8Array;
  resolve(r: Receipt): void;
  reject(err: unknown): void;
}

interface Current {
  readonly version: number;
  readonly list: Device[] | undefined;
}

/** Largest clock skew accepted on a new device's `addedAt`. */
export const ADDED_AT_SKEW_MS = 10 * 60_000;

function sameDevice(a: Device, b: Device): boolean {
  return (
    a.id === b.id &&
    a.addedAt === b.addedAt &&
    a.addedBy === b.addedBy &&
    Buffer.compare(Buffer.from(a.identityKey), Buffer.from(b.identityKey)) === 0 &&
    Buffer.compare(Buffer.from(a.x25519Key ?? []), Buffer.from(b.x25519Key ?? [])) === 0
  );
}

/** Accepts device-list updates. */
export class WriteService {
  readonly #store: KtStore;
  readonly #authorizer: UpdateAuthorizer;
  readonly #maxPending: number;
  readonly #now: () => number;
  #pendingEstimate = 0;
  /** Called after each committed batch with its receipts (the sequencer proves ahead). */
  onCommitted: ((receipts: readonly Receipt[]) => void) | undefined;
  #pendingCheckedAt = 0;

  constructor(
    store: KtStore,
    authorizer: UpdateAuthorizer,
    maxPending: number,
    now: () => number = Date.now,
  ) {
    this.#store = store;
    this.#authorizer = authorizer;
    this.#maxPending = maxPending;
    this.#now = now;
  }

  async #checkLoad(): Promise<void> {
    // Pushback (tessera ErrPushback): refuse rather than queue without bound.
    if (this.#now() - this.#pendingCheckedAt > 1000) {
      this.#pendingCheckedAt = this.#now();
      const r = await this.#store.db.query<{ n: number }>(
        // Only unpublished epochs: an index range scan, not the whole table.
        `SELECT count(*)::bigint AS n FROM kt_versions
          WHERE epoch > (SELECT published_epoch FROM kt_settings WHERE id = 1) AND label IS NULL`,
      );
      this.#pendingEstimate = r.rows[0]?.n ?? 0;
    }
    if (this.#pendingEstimate >= this.#maxPending) {
      throw new HttpError(503, 'ERR_OVERLOADED', 'too many updates waiting; retry later', {
        headers: { 'retry-after': '2' },
      });
    }
  }

  /**
   * Validates, authorises and stores one update. Concurrent calls are committed together
   * (group commit: one transaction and one fsync per batch); each is acknowledged only after
   * its batch committed.
   * @throws HttpError 400 (invalid list, unchanged device altered), 401/403 (authorisation),
   *   404 (unknown account), 409 (version conflict), 503 (overload).
   */
  async submit(req: UpdateRequest): Promise<Receipt> {
    const problem = checkDeviceList(req.devices);
    if (problem !== undefined) throw new HttpError(400, 'ERR_BAD_DEVICE_LIST', problem);
    await this.#checkLoad();
    const value = encodeDeviceList(req.devices);
    return new Promise<Receipt>((resolve, reject) => {
      this.#queue.push({ req, value, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        // Later in this turn of the event loop more writes arrive: they join the batch.
        setImmediate(() => {
          this.#scheduled = false;
          this.#pump();
        });
      }
    });
  }

  readonly #queue: Job[] = [];
  #scheduled = false;
  #inFlight = 0;
  /** Accounts with a batch in flight: a batch never holds an account another one holds. */
  readonly #busy = new Set<string>();

  /**
   * Starts batches while fewer than {@link MAX_IN_FLIGHT} are in flight. Batches in flight hold
   * disjoint accounts, so they cannot race each other for a version, and an account's writes
   * keep their order (one queued behind a busy account waits for the next batch).
   */
  #pump(): void {
    while (this.#inFlight < MAX_IN_FLIGHT && this.#queue.length > 0) {
      const batch: Job[] = [];
      const rest: Job[] = [];
      const keys = new Set<string>();
      const blocked = new Set<string>();
      for (const job of this.#queue) {
        const key = `${job.req.ref.tenant}\u0000${job.req.ref.account}`;
        if (batch.length < MAX_BATCH && !this.#busy.has(key) && !blocked.has(key)) {
          batch.push(job);
          keys.add(key);
        } else {
          // Everything later for this account waits too, so its writes stay in order.
          if (!keys.has(key)) blocked.add(key);
          rest.push(job);
        }
      }
      if (batch.length === 0) return;
      this.#queue.length = 0;
      for (const job of rest) this.#queue.push(job);
      for (const key of keys) this.#busy.add(key);
      this.#inFlight++;
      void this.#flush(batch).finally(() => {
        for (const key of keys) this.#busy.delete(key);
        this.#inFlight--;
        this.#pump();
      });
    }
  }

  async #flush(batch: Job[]): Promise<void> {
    let outcomes: (Receipt | HttpError)[];
    try {
      outcomes = await this.#insertBatch(batch);
    } catch (err) {
      if (batch.length > 1) {
        // Another process wrote the same account meanwhile: settle each job on its own.
        for (const job of batch) await this.#flush([job]);
        return;
      }
      const job = batch[0];
      // Two writers raced for the same version: the primary key decided.
      if ((err as { code?: unknown }).code === '23505') {
        job?.reject(
          new HttpError(409, 'ERR_VERSION_CONFLICT', 'another update took this version; retry'),
        );
      } else job?.reject(err);
      return;
    }
    const committed = outcomes.filter((o): o is Receipt => !(o instanceof HttpError));
    if (committed.length > 0) this.onCommitted?.(committed);
    batch.forEach((job, i) => {
      const o = outcomes[i];
      if (o instanceof HttpError || o === undefined) job.reject(o ?? new Error('no outcome'));
      else job.resolve(o);
    });
  }

  #insertBatch(batch: readonly Job[]): Promise<(Receipt | HttpError)[]> {
    return this.#store.db.transaction(async (q) => {
      // Shared: many writers at once; the sequencer takes it exclusively to close an epoch.
      // A statement of its own, so the next statement's snapshot sees any epoch just closed.
      await q.query('SELECT pg_advisory_xact_lock_shared($1)', [EPOCH_LOCK]);
      const s = await q.query<{ open_epoch: number }>(
        'SELECT open_epoch FROM kt_settings WHERE id = 1',
      );
      const epoch = s.rows[0]?.open_epoch;
      if (epoch === undefined) throw new Error('kt_settings missing');
      const cur = await q.query<{
        t: string;
        a: string;
        version: number | null;
        value: Uint8Array | null;
      }>(
        `SELECT k.t, k.a, v.version, v.value
           FROM (SELECT DISTINCT t, a FROM unnest($1::text[], $2::text[]) AS u(t, a)) k
           JOIN accounts acc ON acc.tenant_id = k.t AND acc.account_id = k.a
           LEFT JOIN LATERAL (SELECT version, value FROM kt_versions
                               WHERE tenant_id = k.t AND account_id = k.a
                               ORDER BY version DESC LIMIT 1) v ON true`,
        [batch.map((j) => j.req.ref.tenant), batch.map((j) => j.req.ref.account)],
      );
      const state = new Map<string, Current>();
      for (const r of cur.rows) {
        state.set(`${r.t}\u0000${r.a}`, {
          version: r.version ?? -1,
          list: r.value ? decodeDeviceList(r.value) : undefined,
        });
      }
      const outcomes: (Receipt | HttpError)[] = [];
      const rows: { job: Job; version: number; grant: Grant }[] = [];
      for (const job of batch) {
        const key = `${job.req.ref.tenant}\u0000${job.req.ref.account}`;
        const c = state.get(key);
        try {
          if (!c) throw new HttpError(404, 'ERR_ACCOUNT_NOT_FOUND', 'no such account');
          const grant = await this.#check(job.req, c);
          const version = c.version + 1;
          state.set(key, { version, list: [...job.req.devices] });
          rows.push({ job, version, grant });
          outcomes.push({
            tenant: job.req.ref.tenant,
            account: job.req.ref.account,
            version,
            epoch,
          });
        } catch (err) {
          if (!(err instanceof HttpError)) throw err;
          outcomes.push(err);
        }
      }
      if (rows.length > 0) {
        await q.query(
          `INSERT INTO kt_versions (tenant_id, account_id, version, epoch, value, auth_kind, auth_actor, auth_signature)
           SELECT t, a, v, $4, decode(val, 'hex'), k, actor, decode(sig, 'hex')
             FROM unnest($1::text[], $2::text[], $3::bigint[], $5::text[], $6::text[], $7::text[], $8::text[])
                  AS u(t, a, v, val, k, actor, sig)`,
          [
            rows.map((r) => r.job.req.ref.tenant),
            rows.map((r) => r.job.req.ref.account),
            rows.map((r) => String(r.version)),
            epoch,
            rows.map((r) => Buffer.from(r.job.value).toString('hex')),
            rows.map((r) => r.grant.kind),
            rows.map((r) => r.grant.actor),
            rows.map((r) =>
              r.grant.signature ? Buffer.from(r.grant.signature).toString('hex') : null,
            ),
          ],
        );
      }
      return outcomes;
    });
  }

  /** Checks one change against the account's current list and authorises it. */
  async #check(req: UpdateRequest, cur: Current): Promise<Grant> {
    const version = cur.version + 1;
    if (req.version !== undefined && req.version !== version) {
      throw new HttpError(409, 'ERR_VERSION_CONFLICT', `the next version is ${version}`);
    }
    for (const d of req.devices) {
      const before = cur.list?.find((x) => x.id === d.id);
      if (before !== undefined && !sameDevice(before, d)) {
        throw new HttpError(
          400,
          'ERR_DEVICE_CHANGED',
          'a kept device must be unchanged; add a new device id instead',
        );
      }
    }
    const grant = await this.#authorizer.authorize(
      { ref: req.ref, version, previous: cur.list, next: req.devices },
      req.credential,
    );
    if (grant === undefined) throw new HttpError(401, 'ERR_UNAUTHORIZED', 'not authorised');
    const now = this.#now();
    for (const d of req.devices) {
      if (cur.list?.some((x) => x.id === d.id)) continue;
      if (d.addedBy !== grant.kind) {
        throw new HttpError(
          400,
          'ERR_BAD_DEVICE_LIST',
          `a new device must be marked addedBy "${grant.kind}"`,
        );
      }
      if (Math.abs(d.addedAt - now) > ADDED_AT_SKEW_MS) {
        throw new HttpError(
          400,
          'ERR_BAD_DEVICE_LIST',
          "a new device's addedAt is too far from the directory's clock",
        );
      }
    }
    return grant;
  }
}
