/**
 * What every identity route shares: the database, configuration, clock, the token, TOTP and
 * OIDC services, the device directory, and the three ways a request authenticates (access
 * token, tenant administrator or operator, SCIM bearer token).
 * @module
 */
import type { FastifyRequest } from 'fastify';
import type { Db } from '@keytrail/server-kit';
import type { IdentityConfig } from './config.ts';
import type { DeviceDirectory } from './device-directory.ts';
import { identityError } from './errors.ts';
import { constantTimeEqual, sha256 } from './secrets.ts';
import type { AccessClaims, TokenService } from './tokens.ts';
import type { TotpService } from './totp.ts';
import type { OidcClients } from './oidc.ts';

/** Shared state of the identity routes. */
export interface IdentityContext {
  readonly db: Db;
  readonly config: IdentityConfig;
  readonly devices: DeviceDirectory;
  readonly clock: () => number;
  readonly tokens: TokenService;
  readonly totp: TotpService;
  readonly oidc: OidcClients;
}

/** The bearer token of a request, if any (never logged). */
export function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer ([\x21-\x7e]{1,4096})$/i.exec(h);
  return m?.[1];
}

/**
 * The access-token claims of a request for `tenantId`.
 * @throws HttpError ERR_IDENTITY_UNAUTHENTICATED, ERR_IDENTITY_FORBIDDEN (another tenant's token)
 */
export async function requireAccess(
  ctx: IdentityContext,
  req: FastifyRequest,
  tenantId: string,
): Promise<AccessClaims> {
  const token = bearer(req);
  if (!token) throw identityError('ERR_IDENTITY_UNAUTHENTICATED', 'an access token is required');
  const claims = await ctx.tokens.verifyAccessToken(token);
  if (claims.tenantId !== tenantId)
    throw identityError('ERR_IDENTITY_FORBIDDEN', 'token is for another tenant');
  return claims;
}

/** Who administers: the operator (any tenant) or an admin of the tenant. */
export type AdminActor =
  { readonly kind: 'operator' } | { readonly kind: 'admin'; readonly claims: AccessClaims };

/** The audit actor string of an administrator. */
export function actorName(a: AdminActor): string {
  return a.kind === 'operator' ? 'operator' : `account:${a.claims.accountId}`;
}

/**
 * Authenticates an administrator of `tenantId`: the operator token (compared as SHA-256 in
 * constant time) or an access token with the `admin` role in that tenant.
 * @throws HttpError ERR_IDENTITY_UNAUTHENTICATED, ERR_IDENTITY_FORBIDDEN
 */
export async function requireAdmin(
  ctx: IdentityContext,
  req: FastifyRequest,
  tenantId: string,
): Promise<AdminActor> {
  const token = bearer(req);
  if (!token) throw identityError('ERR_IDENTITY_UNAUTHENTICATED', 'an access token is required');
  const op = ctx.config.operatorTokenHash;
  if (op && constantTimeEqual(sha256(token), op)) return { kind: 'operator' };
  const claims = await ctx.tokens.verifyAccessToken(token);
  if (claims.tenantId !== tenantId || !claims.roles.includes('admin')) {
    throw identityError('ERR_IDENTITY_FORBIDDEN', 'administrator role required');
  }
  return { kind: 'admin', claims };
}

/**
 * Checks a tenant's SCIM bearer token (SHA-256 compared in constant time).
 * @throws HttpError ERR_IDENTITY_UNAUTHENTICATED
 */
export async function requireScim(
  ctx: IdentityContext,
  req: FastifyRequest,
  tenantId: string,
): Promise<void> {
  const token = bearer(req);
  const r = await ctx.db.query<{ scim_token_hash: Uint8Array | null }>(
    'SELECT scim_token_hash FROM identity_tenant_settings WHERE tenant_id = $1',
    [tenantId],
  );
  const stored = r.rows[0]?.scim_token_hash;
  // Hash even when there is nothing to compare, so timing does not tell configured tenants apart.
  const given = sha256(token ?? '');
  if (!token || !stored || !constantTimeEqual(given, stored)) {
    throw identityError('ERR_IDENTITY_UNAUTHENTICATED', 'SCIM bearer token not valid');
  }
}

/**
 * Checks that a tenant exists.
 * @throws HttpError ERR_IDENTITY_NOT_FOUND
 */
export async function requireTenant(ctx: IdentityContext, tenantId: string): Promise<void> {
  const r = await ctx.db.query('SELECT 1 FROM tenants WHERE id = $1', [tenantId]);
  if (r.rowCount !== 1) throw identityError('ERR_IDENTITY_NOT_FOUND', 'no such tenant');
}

/** Decodes base64url of an exact length (attacker-controlled input). */
export function decodeB64url(text: string, bytes: number, what: string): Uint8Array {
  const out = Buffer.from(text, 'base64url');
  if (out.length !== bytes || out.toString('base64url') !== text.replace(/=+$/, '')) {
    throw identityError('ERR_IDENTITY_MALFORMED', `${what} must be ${bytes} bytes of base64url`);
  }
  return new Uint8Array(out);
}

/** Encodes bytes as base64url without padding. */
export function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}
