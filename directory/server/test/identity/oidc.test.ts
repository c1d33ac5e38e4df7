/**
 * OIDC sign-in against a real OpenID Provider (oidc-provider, in-process on 127.0.0.1) with
 * two issuers: the full flow to tokens with roles from groups, and rejection of a wrong state,
 * a wrong nonce, a missing or wrong PKCE verifier, mix-up (a response or code from the other
 * issuer) and cross-tenant use; JIT on and off; IdP link, test and unlink.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, json, completeWithTotp, type Harness } from './helpers.ts';
import { startOp, type TestOp } from './oidc-idp.ts';

const PUBLIC = 'http://127.0.0.1:8099';
const redirect = (tenant: string, name: string) => `${PUBLIC}/signin/${tenant}/${name}/callback`;

let h: Harness;
let opA: TestOp;
let opB: TestOp;
const idp: Record<string, string> = {};

const users = {
  alice: { email: 'alice@acme.test', name: 'Alice', groups: ['kt-admins', 'eng'] },
  bob: { email: 'bob@acme.test', name: 'Bob', groups: ['eng'] },
  carol: { email: 'carol@acme.test', name: 'Carol', groups: [] },
};

async function link(tenant: string, name: string, op: TestOp, clientId: string) {
  const r = await h.app.inject({
    method: 'POST',
    url: `/identity/t/${tenant}/admin/idps`,
    headers: { authorization: `Bearer ${h.operatorToken}` },
    payload: {
      kind: 'oidc',
      name,
      issuer: op.issuer,
      clientId,
      clientSecret: `${clientId}-secret-0123456789`,
      scopes: ['openid', 'email', 'profile', 'groups'],
      redirectUri: redirect(tenant, name),
    },
  });
  expect(r.statusCode).toBe(201);
  return json(r).id as string;
}

beforeAll(async () => {
  h = await createHarness('oidc', { publicUrl: PUBLIC });
  opA = await startOp({
    clientId: 'kt-a',
    clientSecret: 'kt-a-secret-0123456789',
    redirectUris: [redirect('acme', 'op-a')],
    users,
  });
  opB = await startOp({
    clientId: 'kt-b',
    clientSecret: 'kt-b-secret-0123456789',
    redirectUris: [redirect('acme', 'op-b'), redirect('globex', 'op-b')],
    users: { ...users, alice: { ...users.alice, email: 'alice@acme.test' } },
  });
  idp['acme-a'] = await link('acme', 'op-a', opA, 'kt-a');
  idp['acme-b'] = await link('acme', 'op-b', opB, 'kt-b');
  idp['globex-b'] = await link('globex', 'op-b', opB, 'kt-b');
  const s = await h.app.inject({
    method: 'PUT',
    url: '/identity/t/acme/admin/settings',
    headers: { authorization: `Bearer ${h.operatorToken}` },
    payload: {
      roleMapping: { 'kt-admins': 'admin', eng: 'member' },
      defaultRole: null,
      jitEnabled: true,
    },
  });
  expect(s.statusCode).toBe(200);
});
afterAll(async () => {
  await opA.close();
  await opB.close();
  await h.close();
});

async function start(tenant: string, idpId: string) {
  const r = await h.app.inject({
    method: 'POST',
    url: `/identity/t/${tenant}/idps/${idpId}/start`,
  });
  expect(r.statusCode).toBe(200);
  return json(r) as { flow: string; flowId: string; redirectUrl: string };
}
const callback = (tenant: string, idpId: string, flow: string, callbackUrl: string) =>
  h.app.inject({
    method: 'POST',
    url: `/identity/t/${tenant}/idps/${idpId}/oidc/callback`,
    payload: { flow, callbackUrl },
  });

describe('OIDC sign-in', () => {
  it('signs in end to end: PKCE S256, state, nonce, JIT, roles from userinfo groups, TOTP', async () => {
    const s = await start('acme', idp['acme-a']!);
    const auth = new URL(s.redirectUrl);
    expect(auth.origin).toBe(opA.issuer);
    expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
    expect(auth.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(auth.searchParams.get('state')).toBeTruthy();
    expect(auth.searchParams.get('nonce')).toBeTruthy();
    expect(auth.searchParams.get('redirect_uri')).toBe(redirect('acme', 'op-a'));
    const back = await opA.login(s.redirectUrl, 'alice');
    expect(new URL(back).searchParams.get('iss')).toBe(opA.issuer);
    const r = await callback('acme', idp['acme-a']!, s.flow, back);
    expect(r.statusCode).toBe(200);
    const step = json(r);
    expect(step).toMatchObject({
      next: 'totp_enroll',
      recoveryAvailable: false,
      account: { username: 'alice@acme.test', roles: ['admin', 'member'] },
    });
    const tokens = await completeWithTotp(h, 'acme', s.flow, step.account.id);
    const me = await h.app.inject({
      method: 'GET',
      url: '/identity/t/acme/me',
      headers: { authorization: `Bearer ${tokens.accessToken}` },
    });
    expect(json(me)).toMatchObject({
      username: 'alice@acme.test',
      roles: ['admin', 'member'],
      totpEnabled: true,
    });
    // The admin role opens the admin API.
    const admin = await h.app.inject({
      method: 'GET',
      url: '/identity/t/acme/admin/idps',
      headers: { authorization: `Bearer ${tokens.accessToken}` },
    });
    expect(admin.statusCode).toBe(200);
    expect(json(admin).idps).toHaveLength(2);
    // Completing a flow twice is refused.
    expect((await callback('acme', idp['acme-a']!, s.flow, back)).statusCode).toBe(400);
    const audit = await h.tdb.db.query<{ event: string }>(
      `SELECT event FROM identity_audit WHERE account_id = $1 ORDER BY id`,
      [step.account.id],
    );
    expect(audit.rows.map((x) => x.event)).toEqual([
      'account.provisioned',
      'signin.idp',
      'totp.enrolled',
      'signin.completed',
    ]);
  });

  it('rejects a wrong state', async () => {
    const s = await start('acme', idp['acme-a']!);
    const back = new URL(await opA.login(s.redirectUrl, 'bob'));
    back.searchParams.set('state', 'forged-state');
    const r = await callback('acme', idp['acme-a']!, s.flow, back.href);
    expect(r.statusCode).toBe(401);
    expect(json(r)).toEqual({
      code: 'ERR_IDENTITY_OIDC_REJECTED',
      message: 'the OpenID Provider response was not accepted',
    });
    // The flow is dead: the genuine response cannot be replayed into it afterwards.
    back.searchParams.set('state', new URL(s.redirectUrl).searchParams.get('state')!);
    expect((await callback('acme', idp['acme-a']!, s.flow, back.href)).statusCode).toBe(400);
  });

  it('rejects an ID token with a wrong nonce', async () => {
    const s = await start('acme', idp['acme-a']!);
    await h.tdb.db.query(
      `UPDATE identity_flows SET state = jsonb_set(state, '{nonce}', '"not-the-nonce"') WHERE id = $1`,
      [s.flowId],
    );
    const back = await opA.login(s.redirectUrl, 'bob');
    const r = await callback('acme', idp['acme-a']!, s.flow, back);
    expect(r.statusCode).toBe(401);
    expect(json(r).code).toBe('ERR_IDENTITY_OIDC_REJECTED');
  });

  it('rejects a missing PKCE verifier before the token request, and a wrong one at the OP', async () => {
    const s1 = await start('acme', idp['acme-a']!);
    await h.tdb.db.query(`UPDATE identity_flows SET state = state - 'verifier' WHERE id = $1`, [
      s1.flowId,
    ]);
    const r1 = await callback(
      'acme',
      idp['acme-a']!,
      s1.flow,
      await opA.login(s1.redirectUrl, 'bob'),
    );
    expect(r1.statusCode).toBe(400);
    expect(json(r1).code).toBe('ERR_IDENTITY_FLOW_INVALID');
    const s2 = await start('acme', idp['acme-a']!);
    await h.tdb.db.query(
      `UPDATE identity_flows SET state = jsonb_set(state, '{verifier}', to_jsonb($2::text)) WHERE id = $1`,
      [s2.flowId, 'x'.repeat(43)],
    );
    const r2 = await callback(
      'acme',
      idp['acme-a']!,
      s2.flow,
      await opA.login(s2.redirectUrl, 'bob'),
    );
    expect(r2.statusCode).toBe(401);
    expect(json(r2).code).toBe('ERR_IDENTITY_OIDC_REJECTED');
  });

  it('rejects mix-up: the other issuer’s response, even on our redirect URI with our state', async () => {
    const a = await start('acme', idp['acme-a']!);
    const b = await start('acme', idp['acme-b']!);
    const fromB = await opB.login(b.redirectUrl, 'bob');
    // 1. B's response posted to A's flow: it went to B's redirect URI.
    const r1 = await callback('acme', idp['acme-a']!, a.flow, fromB);
    expect(json(r1).code).toBe('ERR_IDENTITY_FLOW_INVALID');
    // 2. The attacker makes B answer with A's state, then moves it onto A's redirect URI:
    //    the iss parameter (RFC 9207) names B, and A's flow refuses it.
    const a2 = await start('acme', idp['acme-a']!);
    const stateA = new URL(a2.redirectUrl).searchParams.get('state')!;
    const b2 = await start('acme', idp['acme-b']!);
    const crafted = new URL(b2.redirectUrl);
    crafted.searchParams.set('state', stateA);
    const answer = new URL(await opB.login(crafted.href, 'bob'));
    expect(answer.searchParams.get('iss')).toBe(opB.issuer);
    const moved = new URL(redirect('acme', 'op-a'));
    moved.search = answer.search;
    const r2 = await callback('acme', idp['acme-a']!, a2.flow, moved.href);
    expect(r2.statusCode).toBe(401);
    expect(json(r2).code).toBe('ERR_IDENTITY_OIDC_REJECTED');
    // 3. Same without iss: B's code is sent to A's token endpoint, which refuses it.
    const a3 = await start('acme', idp['acme-a']!);
    const b3 = await start('acme', idp['acme-b']!);
    const c3 = new URL(b3.redirectUrl);
    c3.searchParams.set('state', new URL(a3.redirectUrl).searchParams.get('state')!);
    const ans3 = new URL(await opB.login(c3.href, 'bob'));
    ans3.searchParams.delete('iss');
    const moved3 = new URL(redirect('acme', 'op-a'));
    moved3.search = ans3.search;
    expect(json(await callback('acme', idp['acme-a']!, a3.flow, moved3.href)).code).toBe(
      'ERR_IDENTITY_OIDC_REJECTED',
    );
  });

  it('keeps tenants apart', async () => {
    // Tenant A's IdP is unknown under tenant B's path.
    const r0 = await h.app.inject({
      method: 'POST',
      url: `/identity/t/globex/idps/${idp['acme-a']!}/start`,
    });
    expect(r0.statusCode).toBe(404);
    // A flow of tenant acme cannot be completed under globex, even with globex's IdP id.
    const s = await start('acme', idp['acme-b']!);
    const back = await opB.login(s.redirectUrl, 'bob');
    expect(json(await callback('globex', idp['globex-b']!, s.flow, back)).code).toBe(
      'ERR_IDENTITY_FLOW_INVALID',
    );
    expect(json(await callback('globex', idp['acme-b']!, s.flow, back)).code).toBe(
      'ERR_IDENTITY_FLOW_INVALID',
    );
    // The same person through globex's link of the same OP gets a separate globex account.
    const g = await start('globex', idp['globex-b']!);
    const gr = await callback(
      'globex',
      idp['globex-b']!,
      g.flow,
      await opB.login(g.redirectUrl, 'alice'),
    );
    expect(gr.statusCode).toBe(200);
    const a = await h.tdb.db.query<{ tenant_id: string }>(
      `SELECT tenant_id FROM identity_accounts WHERE username = 'alice@acme.test' ORDER BY tenant_id`,
    );
    expect(a.rows.map((x) => x.tenant_id)).toEqual(['acme', 'globex']);
    // globex has no role mapping: the default role applies.
    expect(json(gr).account.roles).toEqual(['member']);
  });

  it('refuses a person with no mapped group when there is no default role', async () => {
    const s = await start('acme', idp['acme-a']!);
    const r = await callback(
      'acme',
      idp['acme-a']!,
      s.flow,
      await opA.login(s.redirectUrl, 'carol'),
    );
    expect(r.statusCode).toBe(403);
    expect(json(r).code).toBe('ERR_IDENTITY_NO_ROLE');
  });

  it('does not provision just in time when JIT is off', async () => {
    await h.app.inject({
      method: 'PUT',
      url: '/identity/t/globex/admin/settings',
      headers: { authorization: `Bearer ${h.operatorToken}` },
      payload: { roleMapping: {}, defaultRole: 'member', jitEnabled: false },
    });
    const s = await start('globex', idp['globex-b']!);
    const r = await callback(
      'globex',
      idp['globex-b']!,
      s.flow,
      await opB.login(s.redirectUrl, 'bob'),
    );
    expect(r.statusCode).toBe(403);
    expect(json(r).code).toBe('ERR_IDENTITY_NOT_PROVISIONED');
    // An existing globex account still signs in.
    const s2 = await start('globex', idp['globex-b']!);
    expect(
      (
        await callback(
          'globex',
          idp['globex-b']!,
          s2.flow,
          await opB.login(s2.redirectUrl, 'alice'),
        )
      ).statusCode,
    ).toBe(200);
  });
});

describe('IdP administration', () => {
  const auth = () => ({ authorization: `Bearer ${h.operatorToken}` });

  it('tests a link: discovery succeeds for a live OP, fails cleanly for a dead one', async () => {
    const ok = await h.app.inject({
      method: 'POST',
      url: `/identity/t/acme/admin/idps/${idp['acme-a']!}/test`,
      headers: auth(),
    });
    expect(json(ok)).toMatchObject({ ok: true, details: { issuer: opA.issuer } });
    const dead = await h.app.inject({
      method: 'POST',
      url: '/identity/t/acme/admin/idps',
      headers: auth(),
      payload: { kind: 'oidc', name: 'dead', issuer: 'http://127.0.0.1:9', clientId: 'x' },
    });
    const bad = await h.app.inject({
      method: 'POST',
      url: `/identity/t/acme/admin/idps/${json(dead).id}/test`,
      headers: auth(),
    });
    expect(json(bad)).toMatchObject({ ok: false, problem: 'OpenID Provider discovery failed' });
    const start502 = await h.app.inject({
      method: 'POST',
      url: `/identity/t/acme/idps/${json(dead).id}/start`,
    });
    expect(start502.statusCode).toBe(502);
  });

  it('validates links and refuses non-admins; unlinking stops sign-in', async () => {
    const bad = await h.app.inject({
      method: 'POST',
      url: '/identity/t/acme/admin/idps',
      headers: auth(),
      payload: { kind: 'oidc', name: 'x', issuer: 'ftp://idp', clientId: 'x' },
    });
    expect(json(bad).code).toBe('ERR_IDENTITY_IDP_INVALID');
    const noSecret = await h.app.inject({
      method: 'POST',
      url: '/identity/t/acme/admin/idps',
      headers: auth(),
      payload: {
        kind: 'oidc',
        name: 'x',
        issuer: opA.issuer,
        clientId: 'x',
        clientAuth: 'client_secret_basic',
      },
    });
    expect(json(noSecret).code).toBe('ERR_IDENTITY_IDP_INVALID');
    const anon = await h.app.inject({ method: 'GET', url: '/identity/t/acme/admin/idps' });
    expect(anon.statusCode).toBe(401);
    const wrongOp = await h.app.inject({
      method: 'GET',
      url: '/identity/t/acme/admin/idps',
      headers: { authorization: 'Bearer nope' },
    });
    expect(wrongOp.statusCode).toBe(401);
    const extra = await link('acme', 'op-a', opA, 'kt-a');
    const un = await h.app.inject({
      method: 'DELETE',
      url: `/identity/t/acme/admin/idps/${extra}`,
      headers: auth(),
    });
    expect(json(un)).toEqual({ unlinked: true });
    expect(
      (await h.app.inject({ method: 'POST', url: `/identity/t/acme/idps/${extra}/start` }))
        .statusCode,
    ).toBe(404);
    // Secrets never come back out of the admin API.
    const list = await h.app.inject({
      method: 'GET',
      url: '/identity/t/acme/admin/idps',
      headers: auth(),
    });
    expect(list.body).not.toContain('secret-0123456789');
  });
});
