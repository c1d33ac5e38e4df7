/**
 * The security audit log: sign-ins, TOTP enrolment and failures, recoveries, refresh-token
 * reuse, SCIM actions, deprovisioning, IdP and admin changes, with actor, tenant and time.
 * Rows are kept for the configured retention (90 days) and then deleted by {@link purgeAudit}.
 * Details carry identifiers only, never secrets or assertion contents.
 * @module
 */
import type { Queryable } from '@keytrail/server-kit';

/** Every kind of event recorded. */
export type AuditEvent =
  | 'signin.idp'
  | 'signin.idp_failed'
  | 'signin.completed'
  | 'account.provisioned'
  | 'totp.enrolled'
  | 'totp.failed'
  | 'totp.locked'
  | 'backup.registered'
  | 'backup.recovered'
  | 'backup.failed'
  | 'token.refresh_reuse'
  | 'session.logout'
  | 'session.revoked'
  | 'device.first_published'
  | 'device.recovery_published'
  | 'device.removed_all'
  | 'idp.linked'
  | 'idp.unlinked'
  | 'idp.tested'
  | 'tenant.settings'
  | 'scim.token_rotated'
  | 'scim.user_created'
  | 'scim.user_deactivated'
  | 'scim.user_reactivated'
  | 'scim.user_deleted'
  | 'account.deprovisioned';

/** One event to record. */
export interface AuditEntry {
  readonly tenantId: string;
  readonly event: AuditEvent;
  /** Who acted: `account:<id>`, `operator`, `scim`, `idp:<id>`, `anonymous`. */
  readonly actor: string;
  readonly accountId?: string | undefined;
  readonly detail?: Readonly<Record<string, string | number | boolean | null>>;
}

/** One stored event. */
export interface AuditRecord extends AuditEntry {
  readonly id: number;
  readonly at: Date;
}

/** Appends an event at time `nowMs`. */
export async function recordAudit(db: Queryable, nowMs: number, e: AuditEntry): Promise<void> {
  await db.query(
    `INSERT INTO identity_audit (tenant_id, at, event, actor, account_id, detail)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [
      e.tenantId,
      new Date(nowMs),
      e.event,
      e.actor,
      e.accountId ?? null,
      JSON.stringify(e.detail ?? {}),
    ],
  );
}

/** A tenant's events, newest first. */
export async function listAudit(
  db: Queryable,
  tenantId: string,
  options: { limit: number; event?: AuditEvent | undefined },
): Promise<AuditRecord[]> {
  const r = await db.query<{
    id: number;
    at: Date;
    event: AuditEvent;
    actor: string;
    account_id: string | null;
    detail: Record<string, string | number | boolean | null>;
  }>(
    `SELECT id, at, event, actor, account_id, detail FROM identity_audit
     WHERE tenant_id = $1 AND ($2::text IS NULL OR event = $2)
     ORDER BY id DESC LIMIT $3`,
    [tenantId, options.event ?? null, options.limit],
  );
  return r.rows.map((row) => ({
    id: row.id,
    at: row.at,
    tenantId,
    event: row.event,
    actor: row.actor,
    accountId: row.account_id ?? undefined,
    detail: row.detail,
  }));
}

/**
 * Deletes events older than `retentionDays` before `nowMs`; returns how many were deleted.
 * Run it daily (the directory's scheduler, or cron via `npm run` script).
 */
export async function purgeAudit(
  db: Queryable,
  nowMs: number,
  retentionDays = 90,
): Promise<number> {
  const cutoff = new Date(nowMs - retentionDays * 86_400_000);
  const r = await db.query('DELETE FROM identity_audit WHERE at < $1', [cutoff]);
  return r.rowCount;
}
