/**
 * The key directory as the identity service sees it: identity's `DeviceDirectory` interface
 * (identity/device-directory.ts) implemented over the directory's write path, so wiring is
 * `new KtDeviceDirectory(directory)`. Each call becomes one new version of the account's
 * device list, durable before it returns; the receipt's reference is the epoch that will
 * publish it.
 * @module
 */
import { decodeDeviceList, type Device } from '@keytrail/client';
import type {
  DeviceAuthorization,
  DeviceDirectory,
  DeviceEntry,
  DeviceReceipt,
  DirectoryAccount,
} from '../identity/device-directory.ts';
import type { Grant } from './authorization.ts';
import type { Directory } from './directory.ts';

function grantOf(a: DeviceAuthorization): Grant {
  // A first device is enrolled under the organisation's authority (IdP sign-in and TOTP), the
  // same trust as an administrator's grant; the session is recorded as the actor.
  if (a.kind === 'first-device') return { kind: 'admin', actor: `session:${a.sessionId}` };
  if (a.kind === 'recovery') return { kind: 'recovery', actor: `session:${a.sessionId}` };
  return { kind: 'admin', actor: a.actor };
}

const equalKey = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean =>
  Buffer.compare(Buffer.from(a ?? []), Buffer.from(b ?? [])) === 0;

/** Identity's `DeviceDirectory` over the key directory. */
export class KtDeviceDirectory implements DeviceDirectory {
  readonly #dir: Directory;
  readonly #now: () => number;

  constructor(directory: Directory, now: () => number = Date.now) {
    this.#dir = directory;
    this.#now = now;
  }

  async #current(account: DirectoryAccount): Promise<{ version: number; list: Device[] }> {
    const r = await this.#dir.store.db.query<{ version: number; value: Uint8Array }>(
      `SELECT version, value FROM kt_versions WHERE tenant_id = $1 AND account_id = $2
        ORDER BY version DESC LIMIT 1`,
      [account.tenantId, account.accountId],
    );
    const row = r.rows[0];
    return row
      ? { version: row.version, list: decodeDeviceList(row.value) }
      : { version: -1, list: [] };
  }

  async #ensureAccount(account: DirectoryAccount): Promise<void> {
    await this.#dir.store.db.query(
      `INSERT INTO accounts (tenant_id, account_id, display_name) VALUES ($1, $2, $3)
       ON CONFLICT (tenant_id, account_id) DO NOTHING`,
      [account.tenantId, account.accountId, account.username],
    );
  }

  /**
   * Replaces the account's device list. Devices kept (same id and keys) keep their entry;
   * new ones are added now, marked with the grant's kind.
   * @throws HttpError from the write path (400 invalid list or a kept id with other keys,
   *   409 a concurrent change).
   */
  async publishDevices(
    account: DirectoryAccount,
    devices: readonly DeviceEntry[],
    authorization: DeviceAuthorization,
  ): Promise<DeviceReceipt> {
    await this.#ensureAccount(account);
    const grant = grantOf(authorization);
    const cur = await this.#current(account);
    const now = this.#now();
    const list: Device[] = devices.map((d) => {
      const kept = cur.list.find(
        (x) =>
          x.id === d.deviceId &&
          equalKey(x.identityKey, d.identityKey) &&
          equalKey(x.x25519Key, d.x25519Key),
      );
      return (
        kept ?? {
          id: d.deviceId,
          identityKey: d.identityKey,
          ...(d.x25519Key ? { x25519Key: d.x25519Key } : {}),
          addedAt: now,
          addedBy: grant.kind,
        }
      );
    });
    const receipt = await this.#dir.writes.submit({
      ref: { tenant: account.tenantId, account: account.accountId },
      version: cur.version + 1,
      devices: list,
      credential: { kind: 'internal', grant },
    });
    this.#dir.sequencer?.notify();
    return { version: receipt.version, reference: `epoch:${receipt.epoch}` };
  }

  /** Publishes an empty list; idempotent (an already empty list is not published again). */
  async removeAllDevices(
    account: DirectoryAccount,
    authorization: DeviceAuthorization,
  ): Promise<DeviceReceipt> {
    const cur = await this.#current(account);
    if (cur.version >= 0 && cur.list.length === 0) {
      const r = await this.#dir.store.db.query<{ epoch: number }>(
        'SELECT epoch FROM kt_versions WHERE tenant_id = $1 AND account_id = $2 AND version = $3',
        [account.tenantId, account.accountId, cur.version],
      );
      return { version: cur.version, reference: `epoch:${r.rows[0]?.epoch ?? 0}` };
    }
    return this.publishDevices(account, [], authorization);
  }
}
