/**
 * Keytrail identity: enterprise sign-in (OIDC and SAML 2.0 IdPs per tenant), JIT provisioning
 * and group → role mapping, SCIM 2.0 deprovisioning, TOTP (RFC 6238), backup codes that each
 * wrap the archive key, EdDSA access tokens with rotating refresh tokens (RFC 9700), sessions
 * per device and a security audit log. See `directory/server/IDENTITY.md`.
 *
 * Wiring (in the directory's `buildApp`):
 * ```ts
 * await registerIdentity(app, { db, config: readIdentityConfig(process.env), devices });
 * ```
 * @module
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import formbody from '@fastify/formbody';
import { installErrorHandler, type Db, type Queryable } from '@keytrail/server-kit';
import type { IdentityConfig } from './config.ts';
import type { DeviceDirectory } from './device-directory.ts';
import type { IdentityContext } from './context.ts';
import { TokenService } from './tokens.ts';
import { TotpService } from './totp.ts';
import { OidcClients } from './oidc.ts';
import { signinRoutes } from './routes-signin.ts';
import { meRoutes } from './routes-me.ts';
import { adminRoutes } from './routes-admin.ts';
import { scimRoutes } from './routes-scim.ts';
import { purgeAudit } from './audit.ts';
import { purgeFlows } from './flows.ts';
import { purgeSamlRequests } from './saml.ts';

export {
  identityConfig,
  readIdentityConfig,
  IDENTITY_DEFAULTS,
  BACKUP_KDF_PARAMS,
  BACKUP_KDF_FLOOR,
  type IdentityConfig,
  type KdfParams,
} from './config.ts';
export type {
  DeviceDirectory,
  DeviceEntry,
  DeviceAuthorization,
  DeviceReceipt,
  DirectoryAccount,
} from './device-directory.ts';
export type { IdentityErrorCode } from './errors.ts';
export type { AccessClaims, Role, AuthMethod, TokenSet } from './tokens.ts';
export { purgeAudit, listAudit, type AuditEvent, type AuditRecord } from './audit.ts';
export {
  generateBackupCodes,
  parseBackupCode,
  formatBackupCode,
  deriveBackupKeys,
  unwrapArchiveKey,
  type BackupSlot,
  type GeneratedBackupCodes,
} from './backup-code.ts';

/** What the identity routes need from the service that hosts them. */
export interface IdentityDeps {
  readonly db: Db;
  readonly config: IdentityConfig;
  readonly devices: DeviceDirectory;
  /** Milliseconds since the epoch; `Date.now` unless a test drives time. */
  readonly clock?: () => number;
}

/** What {@link registerIdentity} hands back, for other components to verify tokens. */
export interface IdentityHandle {
  /**
   * Verifies an access token (EdDSA, issuer, audience, `typ`, expiry) and that its session is
   * live; for the directory's authorisation seam ("identity sessions").
   * @throws HttpError ERR_IDENTITY_UNAUTHENTICATED
   */
  verifyAccessToken(token: string): ReturnType<TokenService['verifyAccessToken']>;
  /** Deletes expired flows and SAML request ids, and audit events past retention. */
  housekeeping(): Promise<{ audit: number; flows: number; samlRequests: number }>;
}

function contextOf(deps: IdentityDeps): IdentityContext {
  const clock = deps.clock ?? Date.now;
  return {
    db: deps.db,
    config: deps.config,
    devices: deps.devices,
    clock,
    tokens: new TokenService(deps.db, deps.config, clock),
    totp: new TotpService(deps.config),
    oidc: new OidcClients(deps.config),
  };
}

/**
 * The identity routes as an encapsulated Fastify plugin (schema-first, TypeBox). Register it
 * with a prefix; {@link registerIdentity} uses `/identity`.
 */
export const identityRoutes: FastifyPluginAsync<
  IdentityDeps & { context?: IdentityContext }
> = async (app, opts) => {
  const ctx = opts.context ?? contextOf(opts);
  installErrorHandler(app);
  await app.register(formbody, { bodyLimit: 300_000 });
  signinRoutes(app, ctx);
  meRoutes(app, ctx);
  adminRoutes(app, ctx);
  await app.register((scim, _o, done) => {
    scimRoutes(scim, ctx);
    done();
  });
};

/** Deletes what has expired: flows, SAML request ids, audit events past retention. */
export async function identityHousekeeping(
  db: Queryable,
  config: IdentityConfig,
  nowMs: number,
): Promise<{ audit: number; flows: number; samlRequests: number }> {
  return {
    audit: await purgeAudit(db, nowMs, config.auditRetentionDays),
    flows: await purgeFlows(db, nowMs),
    samlRequests: await purgeSamlRequests(db, nowMs - config.samlRequestTtlMs),
  };
}

/**
 * Registers the identity routes under `/identity` and returns a handle for token checks.
 * @example const identity = await registerIdentity(app, { db, config, devices });
 */
export async function registerIdentity(
  app: FastifyInstance,
  deps: IdentityDeps,
): Promise<IdentityHandle> {
  const context = contextOf(deps);
  await app.register(identityRoutes, { ...deps, context, prefix: '/identity' });
  return {
    verifyAccessToken: (token) => context.tokens.verifyAccessToken(token),
    housekeeping: () => identityHousekeeping(deps.db, deps.config, context.clock()),
  };
}
