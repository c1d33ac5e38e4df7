/**
 * An in-process OpenID Provider (oidc-provider 9, a certified OP) on 127.0.0.1 for tests and
 * the benchmark, with a scripted browser (cookie jar, manual redirects) that logs a user in
 * and consents, returning the URL the OP redirects back to.
 * @module
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

/** A person the OP knows. */
export interface OpUser {
  readonly email: string;
  readonly name: string;
  readonly groups: readonly string[];
}

/** A running OP. */
export interface TestOp {
  readonly issuer: string;
  /** Follows the authorization URL as a browser would, logs `user` in, consents; returns the callback URL. */
  login(authorizationUrl: string, user: string): Promise<string>;
  close(): Promise<void>;
}

/** Starts an OP with one confidential client. */
export async function startOp(o: {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
  users: Record<string, OpUser>;
}): Promise<TestOp> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: o.clientId,
        client_secret: o.clientSecret,
        redirect_uris: o.redirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ['test-only-cookie-key-0123456789abcdef'] },
    findAccount: (_ctx: unknown, id: string) => {
      const u = o.users[id];
      if (!u) return undefined;
      return {
        accountId: id,
        claims: () => ({
          sub: id,
          email: u.email,
          email_verified: true,
          name: u.name,
          groups: [...u.groups],
        }),
      };
    },
  });
  // Expected noise on Node 20 / dev keys; not errors of the code under test.
  provider.on('server_error', () => undefined);
  server.on('request', provider.callback());

  async function login(authorizationUrl: string, user: string): Promise<string> {
    const jar = new Map<string, string>();
    const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const remember = (res: Response) => {
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const eq = pair!.indexOf('=');
        jar.set(pair!.slice(0, eq), pair!.slice(eq + 1));
      }
    };
    let url = authorizationUrl;
    let prompt: 'login' | 'consent' = 'login';
    for (let hop = 0; hop < 12; hop++) {
      if (!url.startsWith(issuer)) return url; // back at the relying party
      const interaction = /\/interaction\/[^/?]+$/.exec(new URL(url).pathname);
      let res: Response;
      if (interaction) {
        const body = new URLSearchParams(
          prompt === 'login' ? { prompt: 'login', login: user } : { prompt: 'consent' },
        );
        res = await fetch(url, {
          method: 'POST',
          redirect: 'manual',
          headers: { cookie: cookieHeader(), 'content-type': 'application/x-www-form-urlencoded' },
          body,
        });
        prompt = 'consent';
      } else {
        res = await fetch(url, { redirect: 'manual', headers: { cookie: cookieHeader() } });
      }
      remember(res);
      const location = res.headers.get('location');
      if (!location)
        throw new Error(`OP answered ${res.status} at ${url}: ${(await res.text()).slice(0, 300)}`);
      url = new URL(location, url).href;
    }
    throw new Error('too many redirects');
  }

  return {
    issuer,
    login,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
