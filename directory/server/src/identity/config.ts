/**
 * Identity configuration: the defaults, their bounds, and reading them from environment
 * variables through `EnvReader` (every bad value reported at once, secret values never echoed).
 * The variables are listed in `directory/server/IDENTITY.md`.
 * @module
 */
import { EnvReader } from '@keytrail/server-kit';
import { sha256 } from './secrets.ts';

/** Argon2id cost parameters (RFC 9106 §3.1 names: m in KiB, t passes, p lanes). */
export interface KdfParams {
  readonly memoryKiB: number;
  readonly passes: number;
  readonly parallelism: number;
}

/**
 * The chosen backup-code parameters: RFC 9106 §4 "second recommended option" (t=3, 64 MiB,
 * p=4). The codes carry 100 bits, so the KDF is defence in depth; see IDENTITY.md.
 */
export const BACKUP_KDF_PARAMS: KdfParams = Object.freeze({
  memoryKiB: 65536,
  passes: 3,
  parallelism: 4,
});

/** The weakest parameters the server accepts from a client (OWASP floor: 19 MiB, t=2, p=1). */
export const BACKUP_KDF_FLOOR: KdfParams = Object.freeze({
  memoryKiB: 19456,
  passes: 2,
  parallelism: 1,
});

/** Everything the identity routes need to know about their deployment. */
export interface IdentityConfig {
  /** Public base URL of this service, no trailing slash (redirect URIs, ACS URLs, token issuer). */
  readonly publicUrl: string;
  /** 32-byte key sealing OIDC client secrets, TOTP seeds and token-signing keys at rest. */
  readonly dataKey: Uint8Array;
  /** SHA-256 of the operator token that may administer any tenant (bootstrap); none if unset. */
  readonly operatorTokenHash?: Uint8Array;
  /** Allows `http:` IdP endpoints (loopback tests and development only). */
  readonly allowInsecureIdpRequests: boolean;
  /** Access-token lifetime, seconds (15 minutes). */
  readonly accessTokenTtlSec: number;
  /** Refresh-token lifetime, seconds (7 days); each rotation starts a new one. */
  readonly refreshTokenTtlSec: number;
  /** Absolute session (refresh family) lifetime, seconds. */
  readonly sessionMaxSec: number;
  /** Sign-in flow lifetime (IdP round trip plus second factor), seconds. */
  readonly flowTtlSec: number;
  /** SAML clock skew, ms (bounded to 60 s). */
  readonly samlClockSkewMs: number;
  /** SAML maximum assertion age, ms. */
  readonly samlMaxAssertionAgeMs: number;
  /** How long an AuthnRequest ID stays valid for InResponseTo, ms. */
  readonly samlRequestTtlMs: number;
  /** TOTP failures before lockout. */
  readonly totpMaxFailures: number;
  /** TOTP lockout, seconds. */
  readonly totpLockoutSec: number;
  /** Issuer shown in authenticator apps. */
  readonly totpIssuer: string;
  /** Weakest Argon2id parameters accepted for backup-code slots. */
  readonly backupKdfFloor: KdfParams;
  /** Audit-log retention, days (90). */
  readonly auditRetentionDays: number;
}

/** Defaults for everything except `publicUrl` and `dataKey`. */
export const IDENTITY_DEFAULTS = Object.freeze({
  allowInsecureIdpRequests: false,
  accessTokenTtlSec: 900,
  refreshTokenTtlSec: 7 * 24 * 3600,
  sessionMaxSec: 30 * 24 * 3600,
  flowTtlSec: 600,
  samlClockSkewMs: 30_000,
  samlMaxAssertionAgeMs: 300_000,
  samlRequestTtlMs: 600_000,
  totpMaxFailures: 5,
  totpLockoutSec: 900,
  totpIssuer: 'Keytrail',
  backupKdfFloor: BACKUP_KDF_FLOOR,
  auditRetentionDays: 90,
});

/**
 * Builds a config from the defaults and the given values.
 * @throws RangeError when the data key is not 32 bytes or the URL is not absolute.
 */
export function identityConfig(
  base: Pick<IdentityConfig, 'publicUrl' | 'dataKey'> & Partial<IdentityConfig>,
): IdentityConfig {
  if (base.dataKey.length !== 32) throw new RangeError('identityConfig: dataKey must be 32 bytes');
  const url = new URL(base.publicUrl);
  if (url.search || url.hash) throw new RangeError('identityConfig: publicUrl must have no query');
  return { ...IDENTITY_DEFAULTS, ...base, publicUrl: base.publicUrl.replace(/\/+$/, '') };
}

/**
 * Reads the identity configuration from the environment:
 * `KT_PUBLIC_URL`, `KT_IDENTITY_DATA_KEY` (base64, 32 bytes), `KT_OPERATOR_TOKEN`,
 * `KT_IDENTITY_ALLOW_INSECURE_IDP`, `KT_ACCESS_TOKEN_TTL`, `KT_REFRESH_TOKEN_TTL`,
 * `KT_SESSION_MAX_AGE`, `KT_SAML_CLOCK_SKEW_MS`, `KT_SAML_MAX_ASSERTION_AGE_MS`,
 * `KT_TOTP_MAX_FAILURES`, `KT_TOTP_LOCKOUT`, `KT_TOTP_ISSUER`, `KT_AUDIT_RETENTION_DAYS`.
 * @throws ConfigError naming every bad or missing value.
 */
export function readIdentityConfig(
  env: Readonly<Record<string, string | undefined>>,
): IdentityConfig {
  const r = new EnvReader(env);
  const publicUrl = r.url('KT_PUBLIC_URL', ['http:', 'https:']);
  if (publicUrl === undefined)
    r.problem('KT_PUBLIC_URL: required (the public base URL of the directory)');
  const keyText = r.string('KT_IDENTITY_DATA_KEY');
  let dataKey = new Uint8Array(32);
  if (keyText === undefined) r.problem('KT_IDENTITY_DATA_KEY: required (32 random bytes, base64)');
  else {
    const k = Buffer.from(keyText, 'base64');
    if (k.length !== 32) r.problem('KT_IDENTITY_DATA_KEY: expected 32 bytes in base64');
    else dataKey = new Uint8Array(k);
  }
  const operator = r.string('KT_OPERATOR_TOKEN');
  if (operator !== undefined && operator.length < 32) {
    r.problem('KT_OPERATOR_TOKEN: expected at least 32 characters');
  }
  const cfg: IdentityConfig = {
    ...IDENTITY_DEFAULTS,
    publicUrl: (publicUrl ?? 'http://invalid').replace(/\/+$/, ''),
    dataKey,
    ...(operator !== undefined ? { operatorTokenHash: sha256(operator) } : {}),
    allowInsecureIdpRequests: r.bool('KT_IDENTITY_ALLOW_INSECURE_IDP', false),
    accessTokenTtlSec: r.int('KT_ACCESS_TOKEN_TTL', 900, 60, 3600),
    refreshTokenTtlSec: r.int('KT_REFRESH_TOKEN_TTL', 7 * 24 * 3600, 300, 90 * 24 * 3600),
    sessionMaxSec: r.int('KT_SESSION_MAX_AGE', 30 * 24 * 3600, 3600, 365 * 24 * 3600),
    samlClockSkewMs: r.int('KT_SAML_CLOCK_SKEW_MS', 30_000, 0, 60_000),
    samlMaxAssertionAgeMs: r.int('KT_SAML_MAX_ASSERTION_AGE_MS', 300_000, 30_000, 3_600_000),
    totpMaxFailures: r.int('KT_TOTP_MAX_FAILURES', 5, 1, 20),
    totpLockoutSec: r.int('KT_TOTP_LOCKOUT', 900, 30, 86_400),
    totpIssuer: r.string('KT_TOTP_ISSUER', 'Keytrail'),
    auditRetentionDays: r.int('KT_AUDIT_RETENTION_DAYS', 90, 1, 3650),
  };
  r.done();
  return cfg;
}
