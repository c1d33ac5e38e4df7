/**
 * The SAML attack suite against the node-saml SP with Keytrail's own checks: responses forged
 * with samlify's signer from a template (every field can be set wrong) and edited by hand.
 * A genuine response signs in; signature wrapping variants, comment injection, unsigned,
 * wrongly signed, SHA-1, wrong audience / issuer / destination / recipient, replayed (also
 * concurrently), expired, unsolicited and cross-tenant responses are all rejected.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHarness, json, type Harness } from './helpers.ts';
import { consumeSamlRequest, PgSamlRequestCache } from '../../src/identity/saml.ts';
import {
  assertionXml,
  b64,
  fields,
  makeKeypair,
  responseXml,
  RSA_SHA1,
  signAssertion,
  signedResponse,
  signResponse,
  type Keypair,
  type ResponseFields,
} from './saml-forge.ts';

const IDP = 'https://idp.forge.test/metadata';
let h: Harness;
let kp: Keypair;
let other: Keypair;
let globexKp: Keypair;
const links: Record<string, { id: string; acsUrl: string; spEntityId: string }> = {};

async function link(tenant: string, name: string, cert: string, extra: object = {}) {
  const r = await h.app.inject({
    method: 'POST',
    url: `/identity/t/${tenant}/admin/idps`,
    headers: { authorization: `Bearer ${h.operatorToken}` },
    payload: {
      kind: 'saml',
      name,
      idpEntityId: IDP,
      entryPoint: 'https://idp.forge.test/sso',
      idpCerts: [cert],
      ...extra,
    },
  });
  expect(r.statusCode).toBe(201);
  return json(r) as { id: string; acsUrl: string; spEntityId: string };
}

beforeAll(async () => {
  h = await createHarness('saml-attacks');
  kp = makeKeypair('idp.forge.test');
  other = makeKeypair('attacker.test');
  globexKp = makeKeypair('idp.globex.test');
  links['acme'] = await link('acme', 'forge', kp.cert);
  links['acme-assertion-only'] = await link('acme', 'assertion-only', kp.cert, {
    requireSignedResponse: false,
  });
  links['globex'] = await link('globex', 'forge', globexKp.cert);
});
afterAll(async () => h.close());

async function start(which: string, tenant = 'acme') {
  const l = links[which]!;
  const r = await h.app.inject({ method: 'POST', url: `/identity/t/${tenant}/idps/${l.id}/start` });
  expect(r.statusCode).toBe(200);
  const s = json(r) as { flow: string; flowId: string; redirectUrl: string };
  const q = await h.tdb.db.query<{ r: string }>(
    `SELECT state->>'requestId' AS r FROM identity_flows WHERE id = $1`,
    [s.flowId],
  );
  const requestId = q.rows[0]!.r;
  return {
    ...s,
    requestId,
    f: fields({ requestId, acsUrl: l.acsUrl, spEntityId: l.spEntityId, idpEntityId: IDP }),
  };
}

function acs(which: string, relayState: string, xml: string, tenant = 'acme') {
  return h.app.inject({
    method: 'POST',
    url: `/identity/t/${tenant}/idps/${links[which]!.id}/saml/acs`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ SAMLResponse: b64(xml), RelayState: relayState }).toString(),
  });
}

function expectRejected(res: Awaited<ReturnType<typeof acs>>) {
  expect(res.statusCode).toBe(401);
  expect(json(res)).toEqual({
    code: 'ERR_IDENTITY_SAML_REJECTED',
    message: 'the SAML response was not accepted',
  });
}

/** Starts a flow, lets `edit` forge the response from the flow's correct fields, posts it. */
async function attempt(edit: (f: ResponseFields) => string, which = 'acme') {
  const s = await start(which);
  return acs(which, s.flowId, edit(s.f));
}

describe('genuine responses', () => {
  it('a response signed at both levels signs in, with groups mapped to roles', async () => {
    await h.app.inject({
      method: 'PUT',
      url: '/identity/t/acme/admin/settings',
      headers: { authorization: `Bearer ${h.operatorToken}` },
      payload: { roleMapping: { 'kt-admins': 'admin' }, defaultRole: 'member', jitEnabled: true },
    });
    const s = await start('acme');
    const authn = new URL(s.redirectUrl);
    expect(authn.origin + authn.pathname).toBe('https://idp.forge.test/sso');
    expect(authn.searchParams.get('RelayState')).toBe(s.flowId);
    const r = await acs('acme', s.flowId, signedResponse(s.f, kp));
    expect(r.statusCode).toBe(200);
    expect(json(r)).toMatchObject({
      next: 'totp_enroll',
      account: { username: 'alice@acme.test', roles: ['admin'] },
    });
  });

  it('an assertion-only IdP link accepts a signed assertion in an unsigned response', async () => {
    const r = await attempt(
      (f) =>
        signAssertion(responseXml({ ...f, email: 'ao@acme.test', nameId: 'ao', groups: [] }), kp),
      'acme-assertion-only',
    );
    expect(r.statusCode).toBe(200);
    expect(json(r).account.roles).toEqual(['member']);
  });

  it('SP metadata names our entity id and ACS', async () => {
    const m = await h.app.inject({
      method: 'GET',
      url: `/identity/t/acme/idps/${links['acme']!.id}/saml/metadata`,
    });
    expect(m.statusCode).toBe(200);
    expect(m.headers['content-type']).toContain('application/samlmetadata+xml');
    expect(m.body).toContain(`entityID="${links['acme']!.spEntityId}"`);
    expect(m.body).toContain(`Location="${links['acme']!.acsUrl}"`);
  });
});

describe('signatures', () => {
  it('rejects an unsigned response', async () => {
    expectRejected(await attempt((f) => responseXml(f)));
    expectRejected(await attempt((f) => responseXml(f), 'acme-assertion-only'));
  });

  it('rejects a signed assertion in an unsigned response when the link requires signed responses', async () => {
    expectRejected(await attempt((f) => signAssertion(responseXml(f), kp)));
  });

  it('rejects a signed response whose assertion is unsigned', async () => {
    expectRejected(await attempt((f) => signResponse(responseXml(f), kp)));
  });

  it('rejects signatures by another key', async () => {
    expectRejected(await attempt((f) => signedResponse(f, other)));
    expectRejected(await attempt((f) => signResponse(signAssertion(responseXml(f), other), kp)));
  });

  it('rejects RSA-SHA1 signatures', async () => {
    expectRejected(await attempt((f) => signedResponse(f, kp, RSA_SHA1)));
  });

  it('rejects a tampered attribute or NameID', async () => {
    expectRejected(
      await attempt((f) => signedResponse(f, kp).replace('alice@acme.test', 'mallory@acme.test')),
    );
    expectRejected(await attempt((f) => signedResponse(f, kp).replace('kt-admins', 'kt-admins2')));
    expectRejected(
      await attempt(
        (f) =>
          signAssertion(responseXml(f), kp).replace('alice-persistent-id', 'bob-persistent-id'),
        'acme-assertion-only',
      ),
    );
  });
});

describe('signature wrapping (XSW)', () => {
  const forged = (f: ResponseFields) =>
    assertionXml({
      ...f,
      assertionId: '_evil',
      email: 'mallory@acme.test',
      nameId: 'mallory',
      groups: ['kt-admins'],
    });
  const signedA = (f: ResponseFields) => {
    const signed = signAssertion(responseXml(f), kp);
    return /<saml:Assertion[\s\S]*<\/saml:Assertion>/.exec(signed)![0];
  };

  it('XSW: an extra unsigned assertion before or after the signed one', async () => {
    for (const which of ['acme', 'acme-assertion-only']) {
      expectRejected(await attempt((f) => responseXml(f, forged(f) + signedA(f)), which));
      expectRejected(await attempt((f) => responseXml(f, signedA(f) + forged(f)), which));
    }
  });

  it('XSW: the signed assertion hidden in Extensions under a forged one', async () => {
    expectRejected(
      await attempt(
        (f) => responseXml(f, forged(f), `<samlp:Extensions>${signedA(f)}</samlp:Extensions>`),
        'acme-assertion-only',
      ),
    );
  });

  it('XSW: the signed assertion wrapped inside the forged assertion', async () => {
    expectRejected(
      await attempt((f) => {
        const evil = forged(f).replace(
          '</saml:Subject>',
          `</saml:Subject><saml:Advice>${signedA(f)}</saml:Advice>`,
        );
        return responseXml(f, evil);
      }, 'acme-assertion-only'),
    );
  });

  it('XSW: a forged assertion reusing the signed assertion’s ID, with the signature moved onto it', async () => {
    expectRejected(
      await attempt((f) => {
        const good = signedA(f);
        const sig = /<ds:Signature[\s\S]*<\/ds:Signature>/.exec(good)![0];
        const evil = forged({ ...f, assertionId: f.assertionId }).replace(
          '</saml:Issuer>',
          `</saml:Issuer>${sig}`,
        );
        return responseXml(f, evil);
      }, 'acme-assertion-only'),
    );
  });

  it('XSW: a whole signed response wrapped inside a forged response', async () => {
    expectRejected(
      await attempt((f) => {
        const genuine = signedResponse(f, kp);
        return responseXml(
          { ...f, responseId: '_outer' },
          forged(f),
          `<samlp:Extensions>${genuine}</samlp:Extensions>`,
        );
      }),
    );
  });
});

describe('content checks', () => {
  it('rejects comment injection in a signed value', async () => {
    // The IdP signed "alice@acme.test.evil.com"; the comment leaves the digest intact.
    expectRejected(
      await attempt((f) =>
        signedResponse({ ...f, email: 'alice@acme.test.evil.com' }, kp).replace(
          'alice@acme.test.evil.com',
          'alice@acme.test<!---->.evil.com',
        ),
      ),
    );
    expectRejected(
      await attempt((f) =>
        signedResponse({ ...f, nameId: 'alice.evil' }, kp).replace(
          '>alice.evil<',
          '>alice<!-- x -->.evil<',
        ),
      ),
    );
  });

  it('rejects a wrong audience', async () => {
    expectRejected(
      await attempt((f) => signedResponse({ ...f, audience: 'https://other-sp.test' }, kp)),
    );
    expectRejected(
      await attempt((f) => signedResponse({ ...f, audience: links['globex']!.spEntityId }, kp)),
    );
  });

  it('rejects a foreign issuer, in the assertion or in the response', async () => {
    expectRejected(
      await attempt((f) => signedResponse({ ...f, issuer: 'https://evil-idp.test' }, kp)),
    );
    expectRejected(
      await attempt((f) => signedResponse({ ...f, responseIssuer: 'https://evil-idp.test' }, kp)),
    );
  });

  it('rejects a wrong Destination or Recipient', async () => {
    const otherAcs = links['acme-assertion-only']!.acsUrl;
    expectRejected(await attempt((f) => signedResponse({ ...f, destination: otherAcs }, kp)));
    expectRejected(await attempt((f) => signedResponse({ ...f, recipient: otherAcs }, kp)));
    const acmeAcs = links['acme']!.acsUrl;
    expectRejected(
      await attempt(
        (f) => signAssertion(responseXml({ ...f, recipient: acmeAcs }), kp),
        'acme-assertion-only',
      ),
    );
  });

  it('rejects expired and not-yet-valid assertions, and old ones beyond the maximum age', async () => {
    const now = Date.now();
    expectRejected(
      await attempt((f) =>
        signedResponse(
          { ...f, notBefore: new Date(now - 600_000), notOnOrAfter: new Date(now - 120_000) },
          kp,
        ),
      ),
    );
    expectRejected(
      await attempt((f) =>
        signedResponse(
          { ...f, notBefore: new Date(now + 120_000), notOnOrAfter: new Date(now + 600_000) },
          kp,
        ),
      ),
    );
    expectRejected(
      await attempt((f) =>
        signedResponse(
          {
            ...f,
            issueInstant: new Date(now - 3_600_000),
            notBefore: new Date(now - 3_600_000),
            notOnOrAfter: new Date(now + 600_000),
          },
          kp,
        ),
      ),
    );
  });

  it('rejects malformed input with 4xx, never 500', async () => {
    const s = await start('acme');
    for (const junk of [
      '',
      'not xml',
      '<a/>',
      '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"><x>',
      '\u0000\u0001',
    ]) {
      const r = await acs('acme', s.flowId, junk);
      expect(r.statusCode).toBeGreaterThanOrEqual(400);
      expect(r.statusCode).toBeLessThan(500);
    }
    const bad = await h.app.inject({
      method: 'POST',
      url: `/identity/t/acme/idps/${links['acme']!.id}/saml/acs`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'SAMLResponse=%%%&RelayState=',
    });
    expect(bad.statusCode).toBeLessThan(500);
  });
});

describe('replay and binding to the request', () => {
  it('rejects a replayed response, into the same flow or a new one', async () => {
    const s = await start('acme');
    const xml = signedResponse({ ...s.f, email: 'replay@acme.test', nameId: 'replay' }, kp);
    expect((await acs('acme', s.flowId, xml)).statusCode).toBe(200);
    // The request id is consumed with the sign-in: node-saml's cache no longer knows it.
    const cache = new PgSamlRequestCache(
      h.tdb.db,
      links['acme']!.id,
      h.clock.read,
      h.config.samlRequestTtlMs,
    );
    expect(await cache.getAsync(s.requestId)).toBeNull();
    expect(await consumeSamlRequest(h.tdb.db, links['acme']!.id, s.requestId, h.clock.now)).toBe(
      false,
    );
    const again = await acs('acme', s.flowId, xml);
    expect(again.statusCode).toBe(400);
    expect(json(again).code).toBe('ERR_IDENTITY_FLOW_INVALID');
    const s2 = await start('acme');
    expectRejected(await acs('acme', s2.flowId, xml));
  });

  it('of concurrent posts of one response exactly one is accepted', async () => {
    const s = await start('acme');
    const xml = signedResponse({ ...s.f, email: 'race@acme.test', nameId: 'race' }, kp);
    const rs = await Promise.all([1, 2, 3, 4].map(() => acs('acme', s.flowId, xml)));
    expect(rs.filter((r) => r.statusCode === 200)).toHaveLength(1);
  });

  it('rejects a response to another flow’s request, and an unsolicited one', async () => {
    const a = await start('acme');
    const b = await start('acme');
    expectRejected(await acs('acme', b.flowId, signedResponse(a.f, kp)));
    const c = await start('acme');
    expectRejected(await acs('acme', c.flowId, signedResponse({ ...c.f, inResponseTo: null }, kp)));
  });

  it('rejects a response whose request expired', async () => {
    const s = await start('acme');
    h.clock.advance(h.config.samlRequestTtlMs + 1000);
    try {
      const r = await acs('acme', s.flowId, signedResponse(s.f, kp));
      // The flow outlives the request id only if flowTtl > samlRequestTtl; either check refuses it.
      expect([400, 401]).toContain(r.statusCode);
    } finally {
      h.clock.advance(-(h.config.samlRequestTtlMs + 1000));
    }
  });

  it('keeps tenants apart: acme’s IdP response cannot sign in to globex', async () => {
    const s = await start('globex', 'globex');
    // Correct fields for globex's flow, but signed by acme's IdP key.
    expectRejected(await acs('globex', s.flowId, signedResponse(s.f, kp), 'globex'));
    // acme's flow id is unknown under globex's link.
    const a = await start('acme');
    const r = await acs('globex', a.flowId, signedResponse(a.f, globexKp), 'globex');
    expect(json(r).code).toBe('ERR_IDENTITY_FLOW_INVALID');
  });
});
