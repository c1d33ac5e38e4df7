/**
 * OpenID Connect sign-in with openid-client v6 (OIDC Core 1.0, RFC 7636 PKCE, RFC 9207 `iss`):
 * discovery by issuer, authorization code flow with PKCE (S256), `state` and `nonce`, the ID
 * token's JWS verified against the IdP's JWKS (`enableNonRepudiationChecks`, not only trusted
 * over TLS), then userinfo with the ID token's `sub` as expected subject — e-mail and groups are
 * taken from userinfo first (many IdPs put them only there).
 *
 * Mix-up defences: a flow is bound to one (tenant, IdP) and its own redirect URI; openid-client
 * checks `iss` in the response and in the ID token against that IdP's issuer, and the code is
 * only ever sent to that IdP's token endpoint.
 * @module
 */
import * as client from 'openid-client';
import type { IdentityConfig } from './config.ts';
import { identityError } from './errors.ts';
import type { Idp, OidcSettings } from './idps.ts';
import type { IdpIdentity } from './accounts.ts';

type OidcIdp = Extract<Idp, { kind: 'oidc' }>;

const DISCOVERY_TTL_MS = 10 * 60_000;
const HTTP_TIMEOUT_SEC = 10;

/** Per-process cache of discovered configurations, keyed by IdP id. */
export class OidcClients {
  readonly #config: IdentityConfig;
  readonly #cache = new Map<string, { at: number; conf: Promise<client.Configuration> }>();

  constructor(config: IdentityConfig) {
    this.#config = config;
  }

  /**
   * The discovered configuration of an IdP (cached ten minutes).
   * @throws HttpError ERR_IDENTITY_IDP_UNREACHABLE when discovery fails.
   */
  async configuration(idp: OidcIdp): Promise<client.Configuration> {
    const hit = this.#cache.get(idp.id);
    if (hit && Date.now() - hit.at < DISCOVERY_TTL_MS) return hit.conf;
    const conf = this.#discover(idp);
    this.#cache.set(idp.id, { at: Date.now(), conf });
    conf.catch(() => this.#cache.delete(idp.id));
    return conf;
  }

  /** Drops an IdP's cached configuration (after unlinking or a failed test). */
  forget(idpId: string): void {
    this.#cache.delete(idpId);
  }

  async #discover(idp: OidcIdp): Promise<client.Configuration> {
    const s = idp.settings;
    const auth =
      s.clientAuth === 'none'
        ? client.None()
        : s.clientAuth === 'client_secret_post'
          ? client.ClientSecretPost(idp.clientSecret)
          : client.ClientSecretBasic(idp.clientSecret);
    let conf: client.Configuration;
    try {
      conf = await client.discovery(
        new URL(s.issuer),
        s.clientId,
        { redirect_uris: [s.redirectUri], response_types: ['code'] },
        auth,
        {
          // Only when KT_IDENTITY_ALLOW_INSECURE_IDP is set (loopback tests, development).
          // eslint-disable-next-line @typescript-eslint/no-deprecated -- deprecated only as a warning sign
          execute: this.#config.allowInsecureIdpRequests ? [client.allowInsecureRequests] : [],
          timeout: HTTP_TIMEOUT_SEC,
        },
      );
    } catch {
      throw identityError('ERR_IDENTITY_IDP_UNREACHABLE', 'OpenID Provider discovery failed');
    }
    if (!conf.serverMetadata().jwks_uri) {
      throw identityError('ERR_IDENTITY_IDP_INVALID', 'OpenID Provider publishes no jwks_uri');
    }
    // Verify the ID token's signature even though it came over TLS from the token endpoint.
    client.enableNonRepudiationChecks(conf);
    return conf;
  }
}

/** The per-flow secrets kept server side between start and callback. */
export interface OidcFlowState extends Record<string, string> {
  readonly state: string;
  readonly nonce: string;
  readonly verifier: string;
}

/** Builds the authorization URL and the state to store with the flow. */
export async function startOidc(
  clients: OidcClients,
  idp: OidcIdp,
): Promise<{ url: string; state: OidcFlowState }> {
  const conf = await clients.configuration(idp);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(conf, {
    redirect_uri: idp.settings.redirectUri,
    scope: idp.settings.scopes.join(' '),
    response_type: 'code',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  return { url: url.href, state: { state, nonce, verifier } };
}

function stringClaim(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 && v.length <= 1000 ? v : undefined;
}

function groupsClaim(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v)) return [];
  return v.filter((g): g is string => typeof g === 'string' && g.length <= 256).slice(0, 1000);
}

/**
 * Completes the flow from the URL the IdP redirected the browser to.
 * @throws HttpError ERR_IDENTITY_FLOW_INVALID (URL not our redirect URI, missing flow secrets),
 *   ERR_IDENTITY_OIDC_REJECTED (state, nonce, PKCE, issuer, signature, claims, userinfo)
 */
export async function completeOidc(
  clients: OidcClients,
  idp: OidcIdp,
  flowState: Readonly<Record<string, string>>,
  callbackUrl: string,
): Promise<IdpIdentity> {
  const { state, nonce, verifier } = flowState;
  if (!state || !nonce || !verifier)
    throw identityError('ERR_IDENTITY_FLOW_INVALID', 'sign-in flow not valid');
  const current = responseUrl(idp.settings, callbackUrl);
  const conf = await clients.configuration(idp);
  let sub: string;
  let claims: Record<string, unknown>;
  try {
    const tokens = await client.authorizationCodeGrant(conf, current, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    });
    const idClaims = tokens.claims();
    if (!idClaims) throw new Error('no ID token');
    sub = idClaims.sub;
    const info = await client.fetchUserInfo(conf, tokens.access_token, sub);
    claims = { ...idClaims, ...info };
  } catch {
    // One answer for every failure: which check failed stays in the IdP-facing audit only.
    throw identityError(
      'ERR_IDENTITY_OIDC_REJECTED',
      'the OpenID Provider response was not accepted',
    );
  }
  const email = stringClaim(claims['email']);
  if (!email || claims['email_verified'] === false) {
    throw identityError(
      'ERR_IDENTITY_OIDC_REJECTED',
      'the OpenID Provider sent no verified e-mail',
    );
  }
  return {
    tenantId: idp.tenantId,
    idpId: idp.id,
    subject: sub,
    email,
    displayName: stringClaim(claims['name']),
    groups: groupsClaim(claims[idp.settings.groupsClaim]),
  };
}

/** Rebuilds the response URL on our own redirect URI, refusing a response sent elsewhere. */
function responseUrl(s: OidcSettings, callbackUrl: string): URL {
  let given: URL;
  try {
    given = new URL(callbackUrl);
  } catch {
    throw identityError('ERR_IDENTITY_FLOW_INVALID', 'callbackUrl is not a URL');
  }
  const ours = new URL(s.redirectUri);
  if (given.origin !== ours.origin || given.pathname !== ours.pathname) {
    throw identityError(
      'ERR_IDENTITY_FLOW_INVALID',
      'callbackUrl is not this IdP link’s redirect URI',
    );
  }
  const url = new URL(ours.href);
  url.search = given.search;
  return url;
}
