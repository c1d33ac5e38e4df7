/**
 * Deprovisioning (SCIM `active=false` or DELETE, or an administrator): the account is
 * deactivated, every session and refresh family is revoked and pending sign-ins are dropped
 * in one transaction; then the removal of all the person's devices is published through the
 * {@link DeviceDirectory}. If the directory is unavailable the call fails with 503 and the
 * removal is retried on the next attempt (`devices_removed_at` stays NULL until it succeeds);
 * the revocation itself is already committed by then.
 * @module
 */
import type { IdentityContext } from './context.ts';
import type { DeviceReceipt } from './device-directory.ts';
import { identityError } from './errors.ts';
import { recordAudit } from './audit.ts';
import { revokeAllSessions } from './tokens.ts';

/** What deprovisioning did. */
export interface DeprovisionResult {
  readonly sessionsRevoked: number;
  /** The directory's receipt, or null when devices had already been removed. */
  readonly receipt: DeviceReceipt | null;
}

/**
 * Deactivates an account and removes its devices.
 * @throws HttpError ERR_IDENTITY_NOT_FOUND, ERR_IDENTITY_DIRECTORY_UNAVAILABLE
 */
export async function deprovisionAccount(
  ctx: IdentityContext,
  q: { tenantId: string; accountId: string; actor: string },
): Promise<DeprovisionResult> {
  const now = ctx.clock();
  const step = await ctx.db.transaction(async (tx) => {
    const r = await tx.query<{ username: string; devices_removed_at: Date | null }>(
      `UPDATE identity_accounts SET active = false, deactivated_at = COALESCE(deactivated_at, $3)
       WHERE id = $1 AND tenant_id = $2 RETURNING username, devices_removed_at`,
      [q.accountId, q.tenantId, new Date(now)],
    );
    const row = r.rows[0];
    if (!row) throw identityError('ERR_IDENTITY_NOT_FOUND', 'no such account');
    const sessionsRevoked = await revokeAllSessions(tx, {
      ...q,
      reason: 'deprovisioned',
      nowMs: now,
    });
    await tx.query('DELETE FROM identity_flows WHERE account_id = $1', [q.accountId]);
    await recordAudit(tx, now, {
      tenantId: q.tenantId,
      event: 'account.deprovisioned',
      actor: q.actor,
      accountId: q.accountId,
      detail: { sessionsRevoked },
    });
    return {
      username: row.username,
      devicesRemoved: row.devices_removed_at !== null,
      sessionsRevoked,
    };
  });
  if (step.devicesRemoved) return { sessionsRevoked: step.sessionsRevoked, receipt: null };
  let receipt: DeviceReceipt;
  try {
    receipt = await ctx.devices.removeAllDevices(
      { tenantId: q.tenantId, accountId: q.accountId, username: step.username },
      { kind: 'admin', actor: q.actor },
    );
  } catch {
    throw identityError(
      'ERR_IDENTITY_DIRECTORY_UNAVAILABLE',
      'device removal could not be published; retry',
    );
  }
  await ctx.db.query('UPDATE identity_accounts SET devices_removed_at = $2 WHERE id = $1', [
    q.accountId,
    new Date(ctx.clock()),
  ]);
  await recordAudit(ctx.db, ctx.clock(), {
    tenantId: q.tenantId,
    event: 'device.removed_all',
    actor: q.actor,
    accountId: q.accountId,
    detail: { devicesRemovedVersion: receipt.version, reference: receipt.reference },
  });
  return { sessionsRevoked: step.sessionsRevoked, receipt };
}

/** Reactivates an account (SCIM `active=true`): it signs in again and registers a first device anew. */
export async function reactivateAccount(
  ctx: IdentityContext,
  q: { tenantId: string; accountId: string },
): Promise<void> {
  const r = await ctx.db.query(
    `UPDATE identity_accounts SET active = true, deactivated_at = NULL, devices_removed_at = NULL,
       first_device_published_at = NULL
     WHERE id = $1 AND tenant_id = $2 AND NOT active`,
    [q.accountId, q.tenantId],
  );
  if (r.rowCount === 1) {
    await recordAudit(ctx.db, ctx.clock(), {
      tenantId: q.tenantId,
      event: 'scim.user_reactivated',
      actor: 'scim',
      accountId: q.accountId,
    });
  }
}
