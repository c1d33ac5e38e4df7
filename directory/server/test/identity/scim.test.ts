/**
 * SCIM 2.0 /Users with a per-tenant bearer token: create, read, filter, PATCH active=false
 * (sessions and refresh families revoked, devices removed in the directory), reactivation,
 * DELETE, and tenant isolation of the token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, json, signIn, type Harness } from './helpers.ts';

let h: Harness;
let token: string;
let globexToken: string;

beforeAll(async () => {
  h = await createHarness('scim');
  const mint = async (tenant: string) => {
    const r = await h.app.inject({
      method: 'POST',
      url: `/identity/t/${tenant}/admin/scim-token`,
      headers: { authorization: `Bearer ${h.operatorToken}` },
    });
    expect(r.statusCode).toBe(200);
    return json(r).token as string;
  };
  token = await mint('acme');
  globexToken = await mint('globex');
});
afterAll(async () => h.close());

const scim = (
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
  url: string,
  payload?: object,
  t = token,
  tenant = 'acme',
) =>
  h.app.inject({
    method,
    url: `/identity/t/${tenant}/scim/v2${url}`,
    headers: { authorization: `Bearer ${t}`, 'content-type': 'application/scim+json' },
    ...(payload ? { payload: JSON.stringify(payload) } : {}),
  });
const deactivate = {
  schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
  Operations: [{ op: 'Replace', path: 'active', value: false }],
};

describe('SCIM /Users', () => {
  it('stores only a hash of the token and refuses wrong or foreign tokens', async () => {
    const row = await h.tdb.db.query<{ h: Uint8Array }>(
      `SELECT scim_token_hash AS h FROM identity_tenant_settings WHERE tenant_id = 'acme'`,
    );
    expect(row.rows[0]!.h.length).toBe(32);
    expect(Buffer.from(row.rows[0]!.h).toString('base64url')).not.toBe(token);
    for (const t of ['', 'nope', globexToken]) {
      const r = await scim('GET', '/Users', undefined, t);
      expect(r.statusCode).toBe(401);
      expect(json(r)).toMatchObject({
        schemas: ['urn:ietf:params:scim:api:messages:2.0:Error'],
        status: '401',
        code: 'ERR_IDENTITY_UNAUTHENTICATED',
      });
    }
  });

  it('creates, reads, filters; refuses a duplicate userName with 409 uniqueness', async () => {
    const c = await scim('POST', '/Users', {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      userName: 'Dana@Acme.test',
      externalId: 'entra-123',
      displayName: 'Dana',
      active: true,
    });
    expect(c.statusCode).toBe(201);
    expect(c.headers['content-type']).toContain('application/scim+json');
    const u = json(c);
    expect(u).toMatchObject({
      userName: 'dana@acme.test',
      externalId: 'entra-123',
      active: true,
      meta: { resourceType: 'User' },
    });
    expect((await scim('GET', `/Users/${u.id}`)).statusCode).toBe(200);
    const f = await scim(
      'GET',
      `/Users?filter=${encodeURIComponent('userName eq "dana@acme.test"')}`,
    );
    expect(json(f)).toMatchObject({ totalResults: 1, Resources: [{ id: u.id }] });
    const e = await scim('GET', `/Users?filter=${encodeURIComponent('externalId eq "entra-123"')}`);
    expect(json(e).totalResults).toBe(1);
    expect(
      (await scim('GET', `/Users?filter=${encodeURIComponent('name.givenName sw "D"')}`))
        .statusCode,
    ).toBe(400);
    const dup = await scim('POST', '/Users', { userName: 'dana@acme.test' });
    expect(dup.statusCode).toBe(409);
    expect(json(dup).scimType).toBe('uniqueness');
    // globex's token sees nothing of acme.
    expect((await scim('GET', `/Users/${u.id}`, undefined, globexToken, 'globex')).statusCode).toBe(
      404,
    );
    const malformed = await h.app.inject({
      method: 'POST',
      url: '/identity/t/acme/scim/v2/Users',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
      payload: '{"userName": ',
    });
    expect(malformed.statusCode).toBe(400);
  });

  it('a SCIM-provisioned person is bound at first IdP sign-in (JIT off)', async () => {
    await h.app.inject({
      method: 'PUT',
      url: '/identity/t/acme/admin/settings',
      headers: { authorization: `Bearer ${h.operatorToken}` },
      payload: { roleMapping: {}, defaultRole: 'member', jitEnabled: false },
    });
    const c = await scim('POST', '/Users', { userName: 'erin@acme.test' });
    const s = await signIn(h, 'acme', 'erin@acme.test');
    expect(s.accountId).toBe(json(c).id);
    await expect(signIn(h, 'acme', 'stranger@acme.test')).rejects.toMatchObject({
      code: 'ERR_IDENTITY_NOT_PROVISIONED',
    });
  });

  it('PATCH active=false revokes sessions and refresh tokens and removes devices', async () => {
    const c = await scim('POST', '/Users', { userName: 'frank@acme.test' });
    const id = json(c).id as string;
    const a = await signIn(h, 'acme', 'frank@acme.test');
    const b = await signIn(h, 'acme', 'frank@acme.test');
    const key = Buffer.from(new Uint8Array(32).fill(5)).toString('base64url');
    const pub = await h.app.inject({
      method: 'POST',
      url: '/identity/t/acme/me/devices',
      headers: { authorization: `Bearer ${a.accessToken}` },
      payload: { devices: [{ deviceId: 'frank-laptop', identityKey: key }] },
    });
    expect(pub.statusCode).toBe(200);
    expect((await h.devices.latest('acme', id))!.devices).toHaveLength(1);

    const p = await scim('PATCH', `/Users/${id}`, deactivate);
    expect(p.statusCode).toBe(200);
    expect(json(p).active).toBe(false);
    for (const s of [a, b]) {
      expect(
        (
          await h.app.inject({
            method: 'GET',
            url: '/identity/t/acme/me',
            headers: { authorization: `Bearer ${s.accessToken}` },
          })
        ).statusCode,
      ).toBe(401);
      const r = await h.app.inject({
        method: 'POST',
        url: '/identity/t/acme/token/refresh',
        payload: { refreshToken: s.refreshToken },
      });
      expect(json(r).code).toBe('ERR_IDENTITY_REFRESH_INVALID');
    }
    const latest = await h.devices.latest('acme', id);
    expect(latest).toMatchObject({ version: 2, devices: [], kind: 'admin' });
    // Sign-in is refused while deactivated.
    await expect(signIn(h, 'acme', 'frank@acme.test')).rejects.toMatchObject({
      code: 'ERR_IDENTITY_ACCOUNT_DISABLED',
    });
    // A repeated PATCH is idempotent: no second removal.
    expect((await scim('PATCH', `/Users/${id}`, deactivate)).statusCode).toBe(200);
    expect((await h.devices.latest('acme', id))!.version).toBe(2);
    const audit = await h.tdb.db.query<{ event: string }>(
      `SELECT event FROM identity_audit WHERE account_id = $1 ORDER BY id`,
      [id],
    );
    expect(audit.rows.map((r) => r.event)).toEqual(
      expect.arrayContaining([
        'account.deprovisioned',
        'device.removed_all',
        'scim.user_deactivated',
      ]),
    );
    // Entra's form: value object with a string boolean; reactivation allows sign-in again.
    const re = await scim('PATCH', `/Users/${id}`, {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', value: { active: 'True', displayName: 'Frank' } }],
    });
    expect(json(re)).toMatchObject({ active: true, displayName: 'Frank' });
    const again = await signIn(h, 'acme', 'frank@acme.test');
    expect(again.accountId).toBe(id);
  });

  it('DELETE deprovisions and deletes; unknown ids are 404', async () => {
    const c = await scim('POST', '/Users', { userName: 'gina@acme.test' });
    const id = json(c).id as string;
    const s = await signIn(h, 'acme', 'gina@acme.test');
    const d = await scim('DELETE', `/Users/${id}`);
    expect(d.statusCode).toBe(204);
    expect((await scim('GET', `/Users/${id}`)).statusCode).toBe(404);
    expect(
      (
        await h.app.inject({
          method: 'GET',
          url: '/identity/t/acme/me',
          headers: { authorization: `Bearer ${s.accessToken}` },
        })
      ).statusCode,
    ).toBe(401);
    expect((await h.devices.latest('acme', id))!.devices).toEqual([]);
    expect((await scim('DELETE', `/Users/${id}`)).statusCode).toBe(404);
    expect((await scim('PATCH', '/Users/unknown', deactivate)).statusCode).toBe(404);
  });

  it('rejects bad PATCH documents with 400', async () => {
    const c = await scim('POST', '/Users', { userName: 'hank@acme.test' });
    const id = json(c).id as string;
    const bad = [
      { schemas: ['x'], Operations: [{ op: 'replace', path: 'active', value: false }] },
      {
        schemas: deactivate.schemas,
        Operations: [{ op: 'replace', path: 'active', value: 'maybe' }],
      },
      {
        schemas: deactivate.schemas,
        Operations: [{ op: 'explode', path: 'active', value: false }],
      },
      { schemas: deactivate.schemas, Operations: [] },
    ];
    for (const b of bad) expect((await scim('PATCH', `/Users/${id}`, b)).statusCode).toBe(400);
  });
});
