/**
 * Accounts and roles: per-tenant settings (group → role mapping, default role, JIT), just-in-
 * time provisioning at first sign-in, and matching SCIM-provisioned accounts to their first
 * IdP sign-in. An account is keyed by (tenant, IdP, subject) once bound; it is never matched
 * across tenants, so an assertion from tenant A's IdP cannot reach tenant B's accounts.
 * @module
 */
import type { Queryable } from '@keytrail/server-kit';
import { identityError } from './errors.ts';
import { randomId } from './secrets.ts';
import { recordAudit } from './audit.ts';
import type { Role } from './tokens.ts';

/** A tenant's identity settings. */
export interface TenantSettings {
  /** IdP group → role. */
  readonly roleMapping: Readonly<Record<string, Role>>;
  /** Role for a person with no mapped group; `null` refuses the sign-in. */
  readonly defaultRole: Role | null;
  /** Just-in-time provisioning (switch off once SCIM provisions the tenant). */
  readonly jitEnabled: boolean;
}

/** The settings a tenant starts with. */
export const DEFAULT_SETTINGS: TenantSettings = Object.freeze({
  roleMapping: {},
  defaultRole: 'member',
  jitEnabled: true,
});

/** Reads a tenant's settings (defaults when none were saved). */
export async function getSettings(db: Queryable, tenantId: string): Promise<TenantSettings> {
  const r = await db.query<{
    role_mapping: Record<string, Role>;
    default_role: Role | null;
    jit_enabled: boolean;
  }>(
    'SELECT role_mapping, default_role, jit_enabled FROM identity_tenant_settings WHERE tenant_id = $1',
    [tenantId],
  );
  const row = r.rows[0];
  if (!row) return DEFAULT_SETTINGS;
  return {
    roleMapping: row.role_mapping,
    defaultRole: row.default_role,
    jitEnabled: row.jit_enabled,
  };
}

/** Saves a tenant's settings. */
export async function putSettings(
  db: Queryable,
  tenantId: string,
  s: TenantSettings,
  nowMs: number,
): Promise<void> {
  await db.query(
    `INSERT INTO identity_tenant_settings (tenant_id, role_mapping, default_role, jit_enabled, updated_at)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (tenant_id) DO UPDATE SET role_mapping = $2, default_role = $3, jit_enabled = $4, updated_at = $5`,
    [tenantId, JSON.stringify(s.roleMapping), s.defaultRole, s.jitEnabled, new Date(nowMs)],
  );
}

/**
 * Maps IdP groups to roles: every mapped group adds its role; with none, the default role.
 * @returns sorted, distinct roles; empty when the person gets no role.
 */
export function mapRoles(settings: TenantSettings, groups: readonly string[]): Role[] {
  const roles = new Set<Role>();
  for (const g of groups) {
    // Own-property lookup only: a group named "__proto__" or "constructor" maps to nothing.
    if (Object.prototype.hasOwnProperty.call(settings.roleMapping, g)) {
      const role = settings.roleMapping[g];
      if (role === 'admin' || role === 'member') roles.add(role);
    }
  }
  if (roles.size === 0 && settings.defaultRole) roles.add(settings.defaultRole);
  return [...roles].sort();
}

/** What an IdP asserted about a person, after the protocol checks. */
export interface IdpIdentity {
  readonly tenantId: string;
  readonly idpId: string;
  /** OIDC `sub` or SAML NameID: the IdP's stable identifier. */
  readonly subject: string;
  readonly email: string;
  readonly displayName?: string | undefined;
  readonly groups: readonly string[];
}

/** An account as sign-in sees it. */
export interface AccountRow {
  readonly id: string;
  readonly tenantId: string;
  readonly username: string;
  readonly roles: Role[];
  readonly active: boolean;
  readonly totpEnabled: boolean;
}

const ACCOUNT_COLUMNS = `id, tenant_id, username, roles, active, totp_enabled_at IS NOT NULL AS totp_enabled`;

type RawAccount = {
  id: string;
  tenant_id: string;
  username: string;
  roles: Role[];
  active: boolean;
  totp_enabled: boolean;
};

function toAccount(r: RawAccount): AccountRow {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    username: r.username,
    roles: r.roles,
    active: r.active,
    totpEnabled: r.totp_enabled,
  };
}

/** Loads an account of a tenant. */
export async function getAccount(
  db: Queryable,
  tenantId: string,
  accountId: string,
): Promise<AccountRow | undefined> {
  const r = await db.query<RawAccount>(
    `SELECT ${ACCOUNT_COLUMNS} FROM identity_accounts WHERE id = $1 AND tenant_id = $2`,
    [accountId, tenantId],
  );
  const row = r.rows[0];
  return row ? toAccount(row) : undefined;
}

/** Normalises an e-mail address or SCIM userName into the stored username. */
export function normaliseUsername(name: string): string {
  return name.trim().toLowerCase();
}

/**
 * Finds or provisions the account for an IdP sign-in, and refreshes its roles from the groups.
 * Order: the account already bound to (tenant, IdP, subject); else an unbound account of the
 * tenant with that username (SCIM-provisioned, bound now); else JIT when enabled.
 * @throws HttpError ERR_IDENTITY_NO_ROLE, ERR_IDENTITY_ACCOUNT_DISABLED, ERR_IDENTITY_NOT_PROVISIONED,
 *   ERR_IDENTITY_CONFLICT (the username belongs to an account bound to another IdP subject)
 */
export async function resolveSignIn(
  tx: Queryable,
  who: IdpIdentity,
  nowMs: number,
): Promise<AccountRow> {
  const settings = await getSettings(tx, who.tenantId);
  const roles = mapRoles(settings, who.groups);
  if (roles.length === 0)
    throw identityError('ERR_IDENTITY_NO_ROLE', 'no role is mapped for this person');
  const username = normaliseUsername(who.email);
  const bound = await tx.query<RawAccount>(
    `UPDATE identity_accounts SET roles = $4, display_name = COALESCE($5, display_name)
     WHERE tenant_id = $1 AND idp_id = $2 AND idp_subject = $3 RETURNING ${ACCOUNT_COLUMNS}`,
    [who.tenantId, who.idpId, who.subject, roles, who.displayName ?? null],
  );
  let row = bound.rows[0];
  if (!row) {
    const claimed = await tx.query<RawAccount>(
      `UPDATE identity_accounts SET idp_id = $2, idp_subject = $3, roles = $5,
         display_name = COALESCE(display_name, $6)
       WHERE tenant_id = $1 AND username = $4 AND idp_subject IS NULL RETURNING ${ACCOUNT_COLUMNS}`,
      [who.tenantId, who.idpId, who.subject, username, roles, who.displayName ?? null],
    );
    row = claimed.rows[0];
  }
  if (!row) {
    const taken = await tx.query(
      'SELECT 1 FROM identity_accounts WHERE tenant_id = $1 AND username = $2',
      [who.tenantId, username],
    );
    if (taken.rowCount > 0) {
      throw identityError('ERR_IDENTITY_CONFLICT', 'this username is bound to another identity');
    }
    if (!settings.jitEnabled) {
      throw identityError('ERR_IDENTITY_NOT_PROVISIONED', 'this person has not been provisioned');
    }
    const id = randomId();
    const ins = await tx.query<RawAccount>(
      `INSERT INTO identity_accounts (id, tenant_id, username, display_name, idp_id, idp_subject, roles, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING ${ACCOUNT_COLUMNS}`,
      [
        id,
        who.tenantId,
        username,
        who.displayName ?? null,
        who.idpId,
        who.subject,
        roles,
        new Date(nowMs),
      ],
    );
    row = ins.rows[0];
    // A concurrent first sign-in of the same person won the insert: the client retries.
    if (!row) throw identityError('ERR_IDENTITY_CONFLICT', 'sign-in raced another; retry');
    await recordAudit(tx, nowMs, {
      tenantId: who.tenantId,
      event: 'account.provisioned',
      actor: `idp:${who.idpId}`,
      accountId: id,
      detail: { via: 'jit' },
    });
  }
  if (!row.active)
    throw identityError('ERR_IDENTITY_ACCOUNT_DISABLED', 'this account is deactivated');
  return toAccount(row);
}
