/**
 * A scriptable SAML IdP for the attack suite: responses built from a template (so every field
 * can be set wrong on purpose) and signed with samlify's XML-DSig signer (xml-crypto under the
 * hood), plus helpers to make keys and certificates with openssl.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SamlLib } from 'samlify';

/** An RSA key and its self-signed certificate, PEM. */
export interface Keypair {
  readonly key: string;
  readonly cert: string;
}

/** Makes an RSA-2048 key and a self-signed certificate valid for `days`. */
export function makeKeypair(cn: string, days = 30): Keypair {
  const dir = mkdtempSync(join(tmpdir(), 'kt-saml-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-sha256',
        '-days',
        String(days),
        '-subj',
        `/CN=${cn}`,
        '-keyout',
        join(dir, 'k.pem'),
        '-out',
        join(dir, 'c.pem'),
      ],
      { stdio: 'ignore' },
    );
    return {
      key: readFileSync(join(dir, 'k.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'c.pem'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every field of a forged response. */
export interface ResponseFields {
  responseId: string;
  assertionId: string;
  inResponseTo: string | null;
  destination: string;
  recipient: string;
  issuer: string;
  responseIssuer: string;
  audience: string;
  nameId: string;
  email: string;
  groups: string[];
  issueInstant: Date;
  notBefore: Date;
  notOnOrAfter: Date;
}

/** Sensible fields for a response to `requestId`, issued now. */
export function fields(o: {
  requestId: string | null;
  acsUrl: string;
  spEntityId: string;
  idpEntityId: string;
  now?: number;
}): ResponseFields {
  const now = o.now ?? Date.now();
  return {
    responseId: `_r${randomBytes(12).toString('hex')}`,
    assertionId: `_a${randomBytes(12).toString('hex')}`,
    inResponseTo: o.requestId,
    destination: o.acsUrl,
    recipient: o.acsUrl,
    issuer: o.idpEntityId,
    responseIssuer: o.idpEntityId,
    audience: o.spEntityId,
    nameId: 'alice-persistent-id',
    email: 'alice@acme.test',
    groups: ['kt-admins', 'eng'],
    issueInstant: new Date(now),
    notBefore: new Date(now - 60_000),
    notOnOrAfter: new Date(now + 300_000),
  };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The assertion element alone. */
export function assertionXml(f: ResponseFields): string {
  const irt = f.inResponseTo === null ? '' : ` InResponseTo="${esc(f.inResponseTo)}"`;
  return (
    `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${f.assertionId}" Version="2.0" IssueInstant="${iso(f.issueInstant)}">` +
    `<saml:Issuer>${esc(f.issuer)}</saml:Issuer>` +
    `<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">${esc(f.nameId)}</saml:NameID>` +
    `<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${iso(f.notOnOrAfter)}" Recipient="${esc(f.recipient)}"${irt}/></saml:SubjectConfirmation></saml:Subject>` +
    `<saml:Conditions NotBefore="${iso(f.notBefore)}" NotOnOrAfter="${iso(f.notOnOrAfter)}"><saml:AudienceRestriction><saml:Audience>${esc(f.audience)}</saml:Audience></saml:AudienceRestriction></saml:Conditions>` +
    `<saml:AuthnStatement AuthnInstant="${iso(f.issueInstant)}" SessionIndex="_s1"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>` +
    `<saml:AttributeStatement><saml:Attribute Name="email"><saml:AttributeValue>${esc(f.email)}</saml:AttributeValue></saml:Attribute>` +
    `<saml:Attribute Name="groups">${f.groups.map((g) => `<saml:AttributeValue>${esc(g)}</saml:AttributeValue>`).join('')}</saml:Attribute></saml:AttributeStatement>` +
    `</saml:Assertion>`
  );
}

/** A Response wrapping `assertion` (default: the fields' assertion). */
export function responseXml(
  f: ResponseFields,
  assertion = assertionXml(f),
  extensions = '',
): string {
  const irt = f.inResponseTo === null ? '' : ` InResponseTo="${esc(f.inResponseTo)}"`;
  return (
    `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${f.responseId}" Version="2.0" IssueInstant="${iso(f.issueInstant)}" Destination="${esc(f.destination)}"${irt}>` +
    `<saml:Issuer>${esc(f.responseIssuer)}</saml:Issuer>${extensions}` +
    `<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>` +
    assertion +
    `</samlp:Response>`
  );
}

const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
/** RSA-SHA1, which the SP must refuse. */
export const RSA_SHA1 = 'http://www.w3.org/2000/09/xmldsig#rsa-sha1';

/** Signs the Assertion (enveloped signature after its Issuer). */
export function signAssertion(xml: string, kp: Keypair, alg = RSA_SHA256): string {
  return SamlLib.constructSAMLSignature({
    rawSamlMessage: xml,
    referenceTagXPath: "//*[local-name(.)='Assertion']",
    privateKey: kp.key,
    signingCert: certBody(kp.cert),
    signatureAlgorithm: alg,
    isBase64Output: false,
    signatureConfig: {
      prefix: 'ds',
      location: {
        reference: "//*[local-name(.)='Assertion']/*[local-name(.)='Issuer']",
        action: 'after',
      },
    },
  });
}

/** Signs the Response (enveloped signature after its Issuer). */
export function signResponse(xml: string, kp: Keypair, alg = RSA_SHA256): string {
  return SamlLib.constructSAMLSignature({
    rawSamlMessage: xml,
    referenceTagXPath: "/*[local-name(.)='Response']",
    privateKey: kp.key,
    signingCert: certBody(kp.cert),
    signatureAlgorithm: alg,
    isBase64Output: false,
    signatureConfig: {
      prefix: 'ds',
      location: {
        reference: "/*[local-name(.)='Response']/*[local-name(.)='Issuer']",
        action: 'after',
      },
    },
  });
}

/** A response signed at both levels, as a well-behaved IdP sends it. */
export function signedResponse(f: ResponseFields, kp: Keypair, alg = RSA_SHA256): string {
  return signResponse(signAssertion(responseXml(f), kp, alg), kp, alg);
}

/** Base64 for the POST binding. */
export function b64(xml: string): string {
  return Buffer.from(xml, 'utf8').toString('base64');
}

/** A certificate's base64 body (samlify's signer wants it without PEM armour). */
export function certBody(pem: string): string {
  return pem.replace(/-----[^-]+-----|\s/g, '');
}
