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
import { HttpError, type Queryable } from '@keytrail/server-kit';
import { EPOCH_LOCK, type KtStore } from './store.ts';
import type { Credential, UpdateAuthorizer } from './authorization.ts';

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

  async #current(
    q: Queryable,
    ref: AccountRef,
  ): Promise<{ version: number; list: Device[] | undefined }> {
    const r = await q.query<{ version: number; value: Uint8Array }>(
      `SELECT version, value FROM kt_versions WHERE tenant_id = $1 AND account_id = $2
        ORDER BY version DESC LIMIT 1`,
      [ref.tenant, ref.account],
    );
    const row = r.rows[0];
    return row
      ? { version: row.version, list: decodeDeviceList(row.value) }
      : { version: -1, list: undefined };
  }

  async #checkLoad(): Promise<void> {
    // Pushback (tessera ErrPushback): refuse rather than queue without bound.
    if (this.#now() - this.#pendingCheckedAt > 1000) {
      this.#pendingCheckedAt = this.#now();
      const r = await this.#store.db.query<{ n: number }>(
        'SELECT count(*)::bigint AS n FROM kt_versions WHERE label IS NULL',
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
   * Validates, authorises and stores one update.
   * @throws HttpError 400 (invalid list, unchanged device altered), 401/403 (authorisation),
   *   404 (unknown account), 409 (version conflict), 503 (overload).
   */
  async submit(req: UpdateRequest): Promise<Receipt> {
    const problem = checkDeviceList(req.devices);
    if (problem !== undefined) throw new HttpError(400, 'ERR_BAD_DEVICE_LIST', problem);
    await this.#checkLoad();
    const value = encodeDeviceList(req.devices);
    try {
      return await this.#insert(req, value);
    } catch (err) {
      // Two writers raced for the same version: the primary key decided.
      if ((err as { code?: unknown }).code === '23505') {
        throw new HttpError(409, 'ERR_VERSION_CONFLICT', 'another update took this version; retry');
      }
      throw err;
    }
  }

  #insert(req: UpdateRequest, value: Uint8Array): Promise<Receipt> {
    return this.#store.db.transaction(async (q) => {
      // Shared: many writes at once; the sequencer takes it exclusively to close an epoch.
      await q.query('SELECT pg_advisory_xact_lock_shared($1)', [EPOCH_LOCK]);
      const acct = await q.query(
        'SELECT 1 FROM accounts WHERE tenant_id = $1 AND account_id = $2',
        [req.ref.tenant, req.ref.account],
      );
      if (acct.rowCount === 0) throw new HttpError(404, 'ERR_ACCOUNT_NOT_FOUND', 'no such account');
      const cur = await this.#current(q, req.ref);
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
      const granted = await this.#authorizer.authorize(
        { ref: req.ref, version, previous: cur.list, next: req.devices },
        req.credential,
      );
      if (granted === undefined) throw new HttpError(401, 'ERR_UNAUTHORIZED', 'not authorised');
      const grant = granted;
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
      const s = await q.query<{ open_epoch: number }>(
        'SELECT open_epoch FROM kt_settings WHERE id = 1',
      );
      const epoch = s.rows[0]?.open_epoch;
      if (epoch === undefined) throw new Error('kt_settings missing');
      await q.query(
        `INSERT INTO kt_versions (tenant_id, account_id, version, epoch, value, auth_kind, auth_actor, auth_signature)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [
          req.ref.tenant,
          req.ref.account,
          version,
          epoch,
          value,
          grant.kind,
          grant.actor,
          grant.signature ?? null,
        ],
      );
      return { tenant: req.ref.tenant, account: req.ref.account, version, epoch };
    });
  }
}
