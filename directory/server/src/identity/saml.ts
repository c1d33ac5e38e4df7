/**
 * SAML 2.0 Web Browser SSO (SAML Profiles §4.1) as a service provider, with
 * @node-saml/node-saml 5.1 for XML-DSig and assertion processing, in its secure settings:
 * signed assertions and signed responses required, `validateInResponseTo: 'always'` with a
 * PostgreSQL cache, audience = our entity id, bounded clock skew and assertion age.
 *
 * node-saml leaves some checks to the application (notes-identity.md), done here:
 * - only SHA-256/512 signature and digest algorithms are accepted (node-saml accepts SHA-1);
 * - the assertion's `Issuer` must be the linked IdP's entity id;
 * - the Response's `Destination` and every bearer `Recipient` must be this link's ACS URL;
 * - `InResponseTo` must be the request this very flow sent, and it is consumed exactly once
 *   by compare-and-swap (node-saml's get-then-remove would let two concurrent replays pass).
 * @module
 */
import {
  SAML,
  ValidateInResponseTo,
  type CacheItem,
  type CacheProvider,
  type Profile,
} from '@node-saml/node-saml';
import { DOMParser } from '@xmldom/xmldom';
import type { Queryable } from '@keytrail/server-kit';
import type { IdentityConfig } from './config.ts';
import { identityError } from './errors.ts';
import type { Idp } from './idps.ts';
import type { IdpIdentity } from './accounts.ts';
import { randomBytes } from 'node:crypto';

type SamlIdp = Extract<Idp, { kind: 'saml' }>;

const DSIG_NS = 'http://www.w3.org/2000/09/xmldsig#';
const SAMLP_NS = 'urn:oasis:names:tc:SAML:2.0:protocol';
const SAML_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
const ALLOWED_SIGNATURE = new Set([
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256',
  'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512',
]);
const ALLOWED_DIGEST = new Set([
  'http://www.w3.org/2001/04/xmlenc#sha256',
  'http://www.w3.org/2001/04/xmlenc#sha512',
]);
/** Largest base64 SAMLResponse accepted (a signed response is a few KiB). */
export const MAX_SAML_RESPONSE_CHARS = 256 * 1024;

/**
 * node-saml's InResponseTo cache over `identity_saml_requests`, scoped to one IdP link.
 * `removeAsync` does nothing: the request is consumed by {@link consumeSamlRequest} once every
 * check has passed (or burnt when one fails).
 */
export class PgSamlRequestCache implements CacheProvider {
  readonly #db: Queryable;
  readonly #idpId: string;
  readonly #clock: () => number;
  readonly #ttlMs: number;

  constructor(db: Queryable, idpId: string, clock: () => number, ttlMs: number) {
    this.#db = db;
    this.#idpId = idpId;
    this.#clock = clock;
    this.#ttlMs = ttlMs;
  }

  async saveAsync(key: string, value: string): Promise<CacheItem | null> {
    const now = this.#clock();
    const r = await this.#db.query(
      `INSERT INTO identity_saml_requests (idp_id, request_id, created_at) VALUES ($1, $2, $3)
       ON CONFLICT DO NOTHING`,
      [this.#idpId, key, new Date(now)],
    );
    return r.rowCount === 1 ? { value, createdAt: now } : null;
  }

  async getAsync(key: string): Promise<string | null> {
    if (key.length > 256) return null; // attacker-controlled
    const r = await this.#db.query<{ created_at: Date }>(
      `SELECT created_at FROM identity_saml_requests
       WHERE idp_id = $1 AND request_id = $2 AND consumed_at IS NULL AND created_at > $3`,
      [this.#idpId, key, new Date(this.#clock() - this.#ttlMs)],
    );
    return r.rows[0]?.created_at.toISOString() ?? null;
  }

  removeAsync(key: string | null): Promise<string | null> {
    return Promise.resolve(key);
  }
}

/** Consumes an AuthnRequest id exactly once; false when it was already used or never issued. */
export async function consumeSamlRequest(
  db: Queryable,
  idpId: string,
  requestId: string,
  nowMs: number,
): Promise<boolean> {
  const r = await db.query(
    `UPDATE identity_saml_requests SET consumed_at = $3
     WHERE idp_id = $1 AND request_id = $2 AND consumed_at IS NULL`,
    [idpId, requestId, new Date(nowMs)],
  );
  return r.rowCount === 1;
}

/**
 * Consumes the flow's request id inside the caller's transaction.
 * @throws HttpError ERR_IDENTITY_SAML_REJECTED when it was already consumed (a replay)
 */
export async function claimSamlRequest(
  tx: Queryable,
  idpId: string,
  requestId: string,
  nowMs: number,
): Promise<void> {
  if (!(await consumeSamlRequest(tx, idpId, requestId, nowMs))) throw reject();
}

/** Deletes AuthnRequest ids older than `olderThanMs` (housekeeping). */
export async function purgeSamlRequests(db: Queryable, olderThanMs: number): Promise<number> {
  const r = await db.query('DELETE FROM identity_saml_requests WHERE created_at < $1', [
    new Date(olderThanMs),
  ]);
  return r.rowCount;
}

function samlFor(
  db: Queryable,
  config: IdentityConfig,
  idp: SamlIdp,
  clock: () => number,
  requestId?: string,
): SAML {
  const s = idp.settings;
  return new SAML({
    idpCert: [...s.idpCerts],
    issuer: s.spEntityId,
    callbackUrl: s.acsUrl,
    entryPoint: s.entryPoint,
    audience: s.spEntityId,
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: s.requireSignedResponse,
    signatureAlgorithm: 'sha256',
    digestAlgorithm: 'sha256',
    validateInResponseTo: ValidateInResponseTo.always,
    cacheProvider: new PgSamlRequestCache(db, idp.id, clock, config.samlRequestTtlMs),
    requestIdExpirationPeriodMs: config.samlRequestTtlMs,
    acceptedClockSkewMs: config.samlClockSkewMs,
    maxAssertionAgeMs: config.samlMaxAssertionAgeMs,
    identifierFormat: null,
    disableRequestedAuthnContext: true,
    ...(requestId ? { generateUniqueId: () => requestId } : {}),
  });
}

/** A fresh AuthnRequest id (an NCName: starts with a letter or underscore). */
export function newSamlRequestId(): string {
  return `_${randomBytes(20).toString('hex')}`;
}

/** Builds the HTTP-Redirect AuthnRequest URL for a flow; records the request id. */
export async function startSaml(
  db: Queryable,
  config: IdentityConfig,
  idp: SamlIdp,
  clock: () => number,
  flow: { id: string; requestId: string },
): Promise<string> {
  return samlFor(db, config, idp, clock, flow.requestId).getAuthorizeUrlAsync(
    flow.id,
    undefined,
    {},
  );
}

/** Our SP metadata for an IdP link. */
export function samlMetadata(
  db: Queryable,
  config: IdentityConfig,
  idp: SamlIdp,
  clock: () => number,
): string {
  return samlFor(db, config, idp, clock).generateServiceProviderMetadata(null, null);
}

function parseXml(xml: string): Document | undefined {
  const parse = { failed: false };
  const fail = (): void => {
    parse.failed = true;
  };
  // Any warning counts too: a SAML message has no business being anything but clean XML.
  const doc = new DOMParser({
    errorHandler: { warning: fail, error: fail, fatalError: fail },
  }).parseFromString(xml, 'text/xml');
  return parse.failed ? undefined : doc;
}

function elements(node: Document | Element, ns: string, name: string): Element[] {
  return Array.from(node.getElementsByTagNameNS(ns, name));
}

function reject(): Error {
  return identityError('ERR_IDENTITY_SAML_REJECTED', 'the SAML response was not accepted');
}

/**
 * Refuses comments and processing instructions anywhere in the message. Canonicalisation drops
 * comments, so `alice@acme.test<!---->.evil.com` keeps a valid signature while naive text
 * extraction reads `alice@acme.test` (CVE-2017-11427…11430); no IdP needs them.
 */
function checkNoComments(node: Node): void {
  for (let c = node.firstChild; c; c = c.nextSibling) {
    if (c.nodeType === 8 || c.nodeType === 7) throw reject();
    if (c.nodeType === 1) checkNoComments(c);
  }
}

/** Checks that only SHA-2 algorithms sign and digest the document. */
function checkAlgorithms(doc: Document): void {
  for (const m of elements(doc, DSIG_NS, 'SignatureMethod')) {
    if (!ALLOWED_SIGNATURE.has(m.getAttribute('Algorithm') ?? '')) throw reject();
  }
  for (const m of elements(doc, DSIG_NS, 'DigestMethod')) {
    if (!ALLOWED_DIGEST.has(m.getAttribute('Algorithm') ?? '')) throw reject();
  }
}

function attributeValues(profile: Profile, name: string): string[] {
  const attrs = profile['attributes'];
  if (
    typeof attrs !== 'object' ||
    attrs === null ||
    !Object.prototype.hasOwnProperty.call(attrs, name)
  )
    return [];
  const v = (attrs as Record<string, unknown>)[name];
  const list = Array.isArray(v) ? (v as unknown[]) : [v];
  return list.filter((x): x is string => typeof x === 'string' && x.length <= 1000);
}

/**
 * Validates a POSTed SAMLResponse for a flow and returns who signed in.
 * The caller must then {@link claimSamlRequest} in the transaction that advances the flow.
 * @throws HttpError ERR_IDENTITY_SAML_REJECTED for every failure (one message; the request id
 *   is burnt so the flow cannot be retried with another forged response).
 */
export async function completeSaml(
  db: Queryable,
  config: IdentityConfig,
  idp: SamlIdp,
  clock: () => number,
  flow: { requestId: string },
  samlResponse: string,
): Promise<IdpIdentity> {
  const s = idp.settings;
  try {
    if (samlResponse.length > MAX_SAML_RESPONSE_CHARS || !/^[A-Za-z0-9+/=\s]+$/.test(samlResponse))
      throw reject();
    const xml = Buffer.from(samlResponse, 'base64').toString('utf8');
    const doc = parseXml(xml);
    const root = doc?.documentElement;
    if (!doc || !root || root.namespaceURI !== SAMLP_NS || root.localName !== 'Response')
      throw reject();
    checkNoComments(root);
    checkAlgorithms(doc);
    // The Response is signed (wantAuthnResponseSigned), so its root attributes are authentic
    // once node-saml accepts it; the InResponseTo must be this flow's own request.
    if (root.getAttribute('Destination') !== s.acsUrl) throw reject();
    if (root.getAttribute('InResponseTo') !== flow.requestId) throw reject();
    let profile: Profile | null;
    try {
      ({ profile } = await samlFor(db, config, idp, clock).validatePostResponseAsync({
        SAMLResponse: samlResponse,
      }));
    } catch {
      throw reject();
    }
    if (!profile) throw reject();
    if (profile.issuer !== s.idpEntityId) throw reject();
    if (profile['inResponseTo'] !== flow.requestId) throw reject();
    // Recipient, read from the signed assertion bytes node-saml verified.
    const assertionXml = profile.getAssertionXml?.();
    const assertion = assertionXml ? parseXml(assertionXml) : undefined;
    if (!assertion) throw reject();
    const confirmations = elements(assertion, SAML_NS, 'SubjectConfirmationData');
    if (confirmations.length === 0) throw reject();
    for (const c of confirmations) if (c.getAttribute('Recipient') !== s.acsUrl) throw reject();
    const responseIssuers = Array.from(root.childNodes).filter(
      (n) => (n as Element).localName === 'Issuer' && (n as Element).namespaceURI === SAML_NS,
    );
    for (const i of responseIssuers) if (i.textContent?.trim() !== s.idpEntityId) throw reject();

    const email =
      attributeValues(profile, s.emailAttribute)[0] ??
      (typeof profile.email === 'string' ? profile.email : undefined) ??
      (profile.nameIDFormat === 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress'
        ? profile.nameID
        : undefined);
    if (!email || !/^[^\s@]+@[^\s@]+$/.test(email) || email.length > 320) throw reject();
    if (!profile.nameID || profile.nameID.length > 1000) throw reject();
    // Still to do by the caller, in the transaction that advances the flow: consume the
    // request id (claimSamlRequest), so that of two concurrent replays exactly one succeeds.
    return {
      tenantId: idp.tenantId,
      idpId: idp.id,
      subject: profile.nameID,
      email,
      displayName: attributeValues(profile, s.displayNameAttribute)[0],
      groups: attributeValues(profile, s.groupsAttribute),
    };
  } catch (err) {
    await consumeSamlRequest(db, idp.id, flow.requestId, clock());
    throw err;
  }
}
