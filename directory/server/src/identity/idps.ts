/**
 * Linked identity providers, per tenant: OIDC (issuer, client, scopes, claim names) and SAML
 * 2.0 (IdP entity id, SSO URL, signing certificates, attribute names). Client secrets are
 * sealed under the data key with the IdP id as associated data. Unlinking is soft: accounts
 * keep their binding for the audit trail, but the IdP no longer signs anyone in.
 * @module
 */
import { X509Certificate } from 'node:crypto';
import type { Queryable } from '@keytrail/server-kit';
import type { IdentityConfig } from './config.ts';
import { identityError } from './errors.ts';
import { open, randomId, seal } from './secrets.ts';

/** OIDC settings (non-secret). */
export interface OidcSettings {
  readonly issuer: string;
  readonly clientId: string;
  /** How the client authenticates at the token endpoint. */
  readonly clientAuth: 'client_secret_basic' | 'client_secret_post' | 'none';
  readonly scopes: readonly string[];
  /** Absolute redirect URI registered at the IdP (one per tenant and IdP). */
  readonly redirectUri: string;
  /** Claim carrying the person's groups (read from userinfo, then the ID token). */
  readonly groupsClaim: string;
}

/** SAML settings. */
export interface SamlSettings {
  /** The IdP's entity id: every assertion's Issuer must equal it. */
  readonly idpEntityId: string;
  /** The IdP's SSO URL (HTTP-Redirect binding). */
  readonly entryPoint: string;
  /** PEM certificates the IdP signs with (several during rollover). */
  readonly idpCerts: readonly string[];
  /** Our entity id for this IdP link (the expected Audience). */
  readonly spEntityId: string;
  /** Our assertion consumer service URL (expected Destination and Recipient). */
  readonly acsUrl: string;
  /** Require the Response itself to be signed, not only the assertion (default true). */
  readonly requireSignedResponse: boolean;
  readonly emailAttribute: string;
  readonly groupsAttribute: string;
  readonly displayNameAttribute: string;
}

/** A linked IdP. */
export type Idp =
  | {
      readonly id: string;
      readonly tenantId: string;
      readonly kind: 'oidc';
      readonly name: string;
      readonly settings: OidcSettings;
      readonly clientSecret?: string | undefined;
    }
  | {
      readonly id: string;
      readonly tenantId: string;
      readonly kind: 'saml';
      readonly name: string;
      readonly settings: SamlSettings;
    };

/** What an administrator sends to link an OIDC IdP. */
export interface OidcLinkInput {
  readonly kind: 'oidc';
  readonly name: string;
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret?: string | undefined;
  readonly clientAuth?: OidcSettings['clientAuth'] | undefined;
  readonly scopes?: readonly string[] | undefined;
  readonly redirectUri?: string | undefined;
  readonly groupsClaim?: string | undefined;
}

/** What an administrator sends to link a SAML IdP. */
export interface SamlLinkInput {
  readonly kind: 'saml';
  readonly name: string;
  readonly idpEntityId: string;
  readonly entryPoint: string;
  readonly idpCerts: readonly string[];
  readonly spEntityId?: string | undefined;
  readonly requireSignedResponse?: boolean | undefined;
  readonly emailAttribute?: string | undefined;
  readonly groupsAttribute?: string | undefined;
  readonly displayNameAttribute?: string | undefined;
}

function checkUrl(value: string, what: string, allowHttp: boolean): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw identityError('ERR_IDENTITY_IDP_INVALID', `${what} is not a URL`);
  }
  if (u.protocol !== 'https:' && !(allowHttp && u.protocol === 'http:')) {
    throw identityError('ERR_IDENTITY_IDP_INVALID', `${what} must use https`);
  }
  if (u.hash) throw identityError('ERR_IDENTITY_IDP_INVALID', `${what} must have no fragment`);
  return value;
}

/** Normalises a PEM certificate, or a bare base64 body, and checks it parses as X.509. */
export function normaliseCert(text: string): string {
  const body = text.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+=*$/.test(body))
    throw identityError('ERR_IDENTITY_IDP_INVALID', 'certificate is not PEM');
  const pem = `-----BEGIN CERTIFICATE-----\n${(body.match(/.{1,64}/g) ?? []).join('\n')}\n-----END CERTIFICATE-----\n`;
  try {
    new X509Certificate(pem);
  } catch {
    throw identityError('ERR_IDENTITY_IDP_INVALID', 'certificate does not parse');
  }
  return pem;
}

/** Base path of an IdP link's routes. */
export function idpBasePath(config: IdentityConfig, tenantId: string, idpId: string): string {
  return `${config.publicUrl}/identity/t/${tenantId}/idps/${idpId}`;
}

/** Links an IdP; returns it with derived URLs filled in. */
export async function linkIdp(
  db: Queryable,
  config: IdentityConfig,
  tenantId: string,
  input: OidcLinkInput | SamlLinkInput,
  nowMs: number,
): Promise<Idp> {
  const id = randomId();
  const base = idpBasePath(config, tenantId, id);
  const allowHttp = config.allowInsecureIdpRequests;
  let idp: Idp;
  let secretEnc: Uint8Array | null = null;
  if (input.kind === 'oidc') {
    const clientAuth = input.clientAuth ?? (input.clientSecret ? 'client_secret_basic' : 'none');
    if (clientAuth !== 'none' && !input.clientSecret) {
      throw identityError(
        'ERR_IDENTITY_IDP_INVALID',
        'this client authentication needs a client secret',
      );
    }
    const scopes = input.scopes ?? ['openid', 'email', 'profile'];
    if (!scopes.includes('openid'))
      throw identityError('ERR_IDENTITY_IDP_INVALID', 'scopes must include openid');
    const settings: OidcSettings = {
      issuer: checkUrl(input.issuer, 'issuer', allowHttp),
      clientId: input.clientId,
      clientAuth,
      scopes,
      redirectUri: checkUrl(input.redirectUri ?? `${base}/oidc/callback`, 'redirectUri', true),
      groupsClaim: input.groupsClaim ?? 'groups',
    };
    if (input.clientSecret) {
      secretEnc = seal(
        config.dataKey,
        new TextEncoder().encode(input.clientSecret),
        `idp-secret:${id}`,
      );
    }
    idp = {
      id,
      tenantId,
      kind: 'oidc',
      name: input.name,
      settings,
      clientSecret: input.clientSecret,
    };
  } else {
    if (input.idpCerts.length === 0)
      throw identityError('ERR_IDENTITY_IDP_INVALID', 'at least one certificate');
    const settings: SamlSettings = {
      idpEntityId: input.idpEntityId,
      entryPoint: checkUrl(input.entryPoint, 'entryPoint', allowHttp),
      idpCerts: input.idpCerts.map(normaliseCert),
      spEntityId: input.spEntityId ?? `${base}/saml/metadata`,
      acsUrl: `${base}/saml/acs`,
      requireSignedResponse: input.requireSignedResponse ?? true,
      emailAttribute: input.emailAttribute ?? 'email',
      groupsAttribute: input.groupsAttribute ?? 'groups',
      displayNameAttribute: input.displayNameAttribute ?? 'displayName',
    };
    idp = { id, tenantId, kind: 'saml', name: input.name, settings };
  }
  await db.query(
    `INSERT INTO identity_idps (id, tenant_id, kind, name, settings, secret_enc, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [id, tenantId, idp.kind, idp.name, JSON.stringify(idp.settings), secretEnc, new Date(nowMs)],
  );
  return idp;
}

/** A tenant's linked IdPs. */
export async function listIdps(
  db: Queryable,
  config: IdentityConfig,
  tenantId: string,
): Promise<Idp[]> {
  const r = await db.query<IdpRow>(
    `SELECT id, tenant_id, kind, name, settings, secret_enc FROM identity_idps
     WHERE tenant_id = $1 AND unlinked_at IS NULL ORDER BY created_at, id`,
    [tenantId],
  );
  return r.rows.map((row) => fromRow(config, row));
}

interface IdpRow {
  id: string;
  tenant_id: string;
  kind: 'oidc' | 'saml';
  name: string;
  settings: OidcSettings | SamlSettings;
  secret_enc: Uint8Array | null;
}

function fromRow(config: IdentityConfig, row: IdpRow): Idp {
  if (row.kind === 'oidc') {
    let clientSecret: string | undefined;
    if (row.secret_enc) {
      const plain = open(config.dataKey, row.secret_enc, `idp-secret:${row.id}`);
      if (!plain) throw new Error('identity: IdP secret does not open under KT_IDENTITY_DATA_KEY');
      clientSecret = new TextDecoder().decode(plain);
    }
    return {
      id: row.id,
      tenantId: row.tenant_id,
      kind: 'oidc',
      name: row.name,
      settings: row.settings as OidcSettings,
      clientSecret,
    };
  }
  return {
    id: row.id,
    tenantId: row.tenant_id,
    kind: 'saml',
    name: row.name,
    settings: row.settings as SamlSettings,
  };
}

/**
 * A linked IdP of the tenant. The tenant is part of the lookup: an IdP id from another tenant
 * is "not found", which is what keeps tenants apart at the first step of every flow.
 * @throws HttpError ERR_IDENTITY_NOT_FOUND
 */
export async function getIdp(
  db: Queryable,
  config: IdentityConfig,
  tenantId: string,
  idpId: string,
): Promise<Idp> {
  const r = await db.query<IdpRow>(
    `SELECT id, tenant_id, kind, name, settings, secret_enc FROM identity_idps
     WHERE id = $1 AND tenant_id = $2 AND unlinked_at IS NULL`,
    [idpId, tenantId],
  );
  const row = r.rows[0];
  if (!row) throw identityError('ERR_IDENTITY_NOT_FOUND', 'no such identity provider');
  return fromRow(config, row);
}

/** Unlinks an IdP; ends its flows in progress. */
export async function unlinkIdp(
  db: Queryable,
  tenantId: string,
  idpId: string,
  nowMs: number,
): Promise<void> {
  const r = await db.query(
    'UPDATE identity_idps SET unlinked_at = $3 WHERE id = $1 AND tenant_id = $2 AND unlinked_at IS NULL',
    [idpId, tenantId, new Date(nowMs)],
  );
  if (r.rowCount !== 1) throw identityError('ERR_IDENTITY_NOT_FOUND', 'no such identity provider');
  await db.query(`DELETE FROM identity_flows WHERE idp_id = $1`, [idpId]);
}
