/**
 * Access tokens (EdDSA JWTs, pinned algorithms, JWKS), refresh rotation with family revocation
 * on reuse (RFC 9700 §4.14.2), logout, sessions per device, tenant isolation of tokens, and
 * the audit log's 90-day purge.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SignJWT,
  UnsecuredJWT,
  decodeProtectedHeader,
  decodeJwt,
  jwtVerify,
  createLocalJWKSet,
} from 'jose';
import { generateKeyPairSync } from 'node:crypto';
import { purgeAudit } from '../../src/identity/audit.ts';
import { createHarness, json, signIn, type Harness } from './helpers.ts';

let h: Harness;
beforeAll(async () => {
  h = await createHarness('tokens');
});
afterAll(async () => h.close());

const get = (url: string, token?: string) =>
  h.app.inject({
    method: 'GET',
    url: `/identity${url}`,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
const post = (url: string, payload?: object, token?: string) =>
  h.app.inject({
    method: 'POST',
    url: `/identity${url}`,
    ...(payload ? { payload } : {}),
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });

describe('access tokens', () => {
  it('are EdDSA at+jwt with 15-minute lifetime, verifiable with the published JWKS', async () => {
    const s = await signIn(h, 'acme', 'jwt@acme.test');
    expect(decodeProtectedHeader(s.accessToken)).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
    const claims = decodeJwt(s.accessToken);
    expect(claims.exp! - claims.iat!).toBe(900);
    expect(claims).toMatchObject({
      sub: s.accountId,
      tid: 'acme',
      sid: s.sessionId,
      roles: ['member'],
      amr: ['ext', 'otp'],
    });
    const jwks = await get('/jwks.json');
    expect(jwks.statusCode).toBe(200);
    expect(json(jwks).keys[0]).toMatchObject({
      kty: 'OKP',
      crv: 'Ed25519',
      alg: 'EdDSA',
      use: 'sig',
    });
    expect(json(jwks).keys[0].d).toBeUndefined();
    const v = await jwtVerify(s.accessToken, createLocalJWKSet(json(jwks)), {
      algorithms: ['EdDSA'],
      currentDate: new Date(h.clock.now),
    });
    expect(v.payload.sub).toBe(s.accountId);
    expect((await get('/t/acme/me', s.accessToken)).statusCode).toBe(200);
  });

  it('rejects alg none, a foreign key, tampering, expiry and another tenant', async () => {
    const s = await signIn(h, 'acme', 'forge@acme.test');
    const c = decodeJwt(s.accessToken);
    const kid = decodeProtectedHeader(s.accessToken).kid!;
    const none = new UnsecuredJWT(c).encode();
    const { privateKey } = generateKeyPairSync('ed25519');
    const foreign = await new SignJWT(c)
      .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' })
      .sign(privateKey);
    const hs = await new SignJWT(c)
      .setProtectedHeader({ alg: 'HS256', kid, typ: 'at+jwt' })
      .sign(new Uint8Array(32));
    const [hd, body, sig] = s.accessToken.split('.');
    const tampered = `${hd}.${Buffer.from(JSON.stringify({ ...c, roles: ['admin'] })).toString('base64url')}.${sig}`;
    for (const bad of [none, foreign, hs, tampered, 'x.y.z', `${hd}.${body}`]) {
      const r = await get('/t/acme/me', bad);
      expect(r.statusCode).toBe(401);
      expect(json(r).code).toBe('ERR_IDENTITY_UNAUTHENTICATED');
    }
    // Same token, other tenant's path.
    const other = await get('/t/globex/me', s.accessToken);
    expect(other.statusCode).toBe(403);
    expect(json(other).code).toBe('ERR_IDENTITY_FORBIDDEN');
    // The admin API refuses a member.
    expect((await get('/t/acme/admin/idps', s.accessToken)).statusCode).toBe(403);
    h.clock.advance(901_000);
    expect((await get('/t/acme/me', s.accessToken)).statusCode).toBe(401);
  });
});

describe('refresh tokens', () => {
  it('rotate on every use; reuse of a rotated token revokes the whole family', async () => {
    const s = await signIn(h, 'acme', 'rotate@acme.test');
    const r1 = await post('/t/acme/token/refresh', { refreshToken: s.refreshToken });
    expect(r1.statusCode).toBe(200);
    const t1 = json(r1);
    expect(t1.refreshToken).not.toBe(s.refreshToken);
    expect(t1.sessionId).toBe(s.sessionId);
    const r2 = await post('/t/acme/token/refresh', { refreshToken: t1.refreshToken });
    expect(r2.statusCode).toBe(200);
    const t2 = json(r2);
    // Reuse of the first (already rotated) token.
    const reuse = await post('/t/acme/token/refresh', { refreshToken: s.refreshToken });
    expect(reuse.statusCode).toBe(400);
    expect(json(reuse)).toEqual({
      code: 'ERR_IDENTITY_REFRESH_INVALID',
      message: 'refresh token not valid',
    });
    // The newest token of the family and its access token are dead too.
    expect(
      (await post('/t/acme/token/refresh', { refreshToken: t2.refreshToken })).statusCode,
    ).toBe(400);
    expect((await get('/t/acme/me', t2.accessToken)).statusCode).toBe(401);
    const audit = await h.tdb.db.query(
      `SELECT 1 FROM identity_audit WHERE event = 'token.refresh_reuse' AND account_id = $1`,
      [s.accountId],
    );
    expect(audit.rowCount).toBe(1);
  });

  it('two concurrent refreshes with one token: one succeeds, the family is revoked', async () => {
    const s = await signIn(h, 'acme', 'concurrent@acme.test');
    const rs = await Promise.all(
      [1, 2].map(() => post('/t/acme/token/refresh', { refreshToken: s.refreshToken })),
    );
    expect(rs.map((r) => r.statusCode).sort()).toEqual([200, 400]);
    const winner = json(rs.find((r) => r.statusCode === 200)!);
    expect(
      (await post('/t/acme/token/refresh', { refreshToken: winner.refreshToken })).statusCode,
    ).toBe(400);
  });

  it('expire after 7 days; are bound to their tenant; unknown tokens are refused alike', async () => {
    const s = await signIn(h, 'acme', 'expire@acme.test');
    expect(
      (await post('/t/globex/token/refresh', { refreshToken: s.refreshToken })).statusCode,
    ).toBe(400);
    expect((await post('/t/acme/token/refresh', { refreshToken: 'A'.repeat(43) })).statusCode).toBe(
      400,
    );
    expect((await post('/t/acme/token/refresh', { refreshToken: 'short' })).statusCode).toBe(400);
    h.clock.advance(7 * 86_400_000 + 1000);
    const late = await post('/t/acme/token/refresh', { refreshToken: s.refreshToken });
    expect(json(late).code).toBe('ERR_IDENTITY_REFRESH_INVALID');
  });
});

describe('sessions and logout', () => {
  it('lists sessions per device, revokes one, and logs out', async () => {
    const a = await signIn(h, 'acme', 'devices@acme.test');
    const b = await signIn(h, 'acme', 'devices@acme.test');
    const list = await get('/t/acme/me/sessions', a.accessToken);
    expect(
      json(list).sessions.map((x: { id: string; current: boolean }) => [x.id, x.current]),
    ).toEqual([
      [a.sessionId, true],
      [b.sessionId, false],
    ]);
    const del = await h.app.inject({
      method: 'DELETE',
      url: `/identity/t/acme/me/sessions/${b.sessionId}`,
      headers: { authorization: `Bearer ${a.accessToken}` },
    });
    expect(json(del)).toEqual({ revoked: true });
    expect((await get('/t/acme/me', b.accessToken)).statusCode).toBe(401);
    expect((await post('/t/acme/token/refresh', { refreshToken: b.refreshToken })).statusCode).toBe(
      400,
    );
    const out = await post('/t/acme/logout', undefined, a.accessToken);
    expect(json(out)).toEqual({ revoked: true });
    expect((await get('/t/acme/me', a.accessToken)).statusCode).toBe(401);
    expect((await post('/t/acme/token/refresh', { refreshToken: a.refreshToken })).statusCode).toBe(
      400,
    );
    expect((await post('/t/acme/logout')).statusCode).toBe(401);
  });
});

describe('audit log', () => {
  it('keeps 90 days and purges older events', async () => {
    const before = await h.tdb.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM identity_audit',
    );
    expect(before.rows[0]!.n).toBeGreaterThan(0);
    const now = h.clock.now;
    await h.tdb.db.query(
      `INSERT INTO identity_audit (tenant_id, at, event, actor) VALUES ('acme', $1, 'signin.completed', 'anonymous'),
       ('acme', $2, 'signin.completed', 'anonymous')`,
      [new Date(now - 91 * 86_400_000), new Date(now - 89 * 86_400_000)],
    );
    expect(await purgeAudit(h.tdb.db, now, 90)).toBe(1);
    const after = await h.tdb.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM identity_audit',
    );
    expect(after.rows[0]!.n).toBe(before.rows[0]!.n + 1);
    const hk = await h.identity.housekeeping();
    expect(hk.audit).toBe(0);
  });

  it('is readable by the operator, never with secrets in it', async () => {
    const r = await get('/t/acme/admin/audit?limit=500', h.operatorToken);
    expect(r.statusCode).toBe(200);
    const events = json(r).events as { event: string; detail: Record<string, unknown> }[];
    expect(events.some((e) => e.event === 'token.refresh_reuse')).toBe(true);
    expect(r.body).not.toMatch(/refreshToken|accessToken|eyJ/);
  });
});
