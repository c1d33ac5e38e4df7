/**
 * Sign-in through a real SAML IdP: SimpleSAMLphp (Debian) signs response and assertion with
 * RSA-SHA256 using xmlseclibs; Keytrail's SP validates and signs the person in. A replay and a
 * wrong password are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, json, completeWithTotp, type Harness } from './helpers.ts';
import { makeKeypair } from './saml-forge.ts';
import { startSsp, type Ssp } from './simplesamlphp.ts';

let h: Harness;
let ssp: Ssp;
let idpId: string;

beforeAll(async () => {
  h = await createHarness('ssp');
  const kp = makeKeypair('ssp-idp');
  // Link first (the SP entity id and ACS URL contain the link id), then start the IdP for them.
  // The IdP's URLs are only known once its port is; link with a placeholder and update.
  const link = await h.app.inject({
    method: 'POST',
    url: '/identity/t/acme/admin/idps',
    headers: { authorization: `Bearer ${h.operatorToken}` },
    payload: {
      kind: 'saml',
      name: 'ssp',
      idpEntityId: 'pending',
      entryPoint: 'http://127.0.0.1/pending',
      idpCerts: [kp.cert],
    },
  });
  expect(link.statusCode).toBe(201);
  const l = json(link);
  idpId = l.id;
  ssp = await startSsp({ keypair: kp, spEntityId: l.spEntityId, acsUrl: l.acsUrl });
  await h.tdb.db.query(
    `UPDATE identity_idps SET settings = settings || jsonb_build_object('idpEntityId', $2::text, 'entryPoint', $3::text) WHERE id = $1`,
    [idpId, ssp.entityId, ssp.ssoUrl],
  );
  await h.app.inject({
    method: 'PUT',
    url: '/identity/t/acme/admin/settings',
    headers: { authorization: `Bearer ${h.operatorToken}` },
    payload: {
      roleMapping: { 'kt-admins': 'admin', eng: 'member' },
      defaultRole: null,
      jitEnabled: true,
    },
  });
});
afterAll(async () => {
  ssp.close();
  await h.close();
});

const start = async () =>
  json(await h.app.inject({ method: 'POST', url: `/identity/t/acme/idps/${idpId}/start` }));
const acs = (body: { SAMLResponse: string; RelayState: string }) =>
  h.app.inject({
    method: 'POST',
    url: `/identity/t/acme/idps/${idpId}/saml/acs`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(body).toString(),
  });

describe('SimpleSAMLphp', () => {
  it('signs alice in with a real signed response, groups mapped to roles', async () => {
    const s = await start();
    expect(s.redirectUrl.startsWith(ssp.ssoUrl)).toBe(true);
    const posted = await ssp.login(s.redirectUrl, 'alice', 'alicepass');
    expect(posted.RelayState).toBe(s.flowId);
    const xml = Buffer.from(posted.SAMLResponse, 'base64').toString('utf8');
    expect(xml).toContain('rsa-sha256');
    expect(xml).toContain(
      `Destination="http://127.0.0.1:8099/identity/t/acme/idps/${idpId}/saml/acs"`,
    );
    const r = await acs(posted);
    expect(r.statusCode).toBe(200);
    const step = json(r);
    expect(step).toMatchObject({
      next: 'totp_enroll',
      account: { username: 'alice@acme.test', roles: ['admin', 'member'] },
    });
    const tokens = await completeWithTotp(h, 'acme', s.flow, step.account.id);
    expect(tokens.accessToken).toBeTruthy();
    const subject = await h.tdb.db.query<{ s: string }>(
      'SELECT idp_subject AS s FROM identity_accounts WHERE id = $1',
      [step.account.id],
    );
    expect(subject.rows[0]!.s).toBe('alice@acme.test');

    // Replay of the same response, into a fresh flow: refused.
    const s2 = await start();
    const replay = await acs({ ...posted, RelayState: s2.flowId });
    expect(replay.statusCode).toBe(401);
    expect(json(replay).code).toBe('ERR_IDENTITY_SAML_REJECTED');
  });

  it('a wrong password yields no response', async () => {
    const s = await start();
    await expect(ssp.login(s.redirectUrl, 'alice', 'wrong')).rejects.toThrow(/no SAMLResponse/);
  });
});
