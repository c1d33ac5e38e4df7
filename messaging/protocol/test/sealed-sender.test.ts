/**
 * Sealed sender: round trips through the manager, certificate checks against the directory,
 * expiry, key binding, tampering, and what the relay can see.
 * @module
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  type CryptoProvider,
  MessagingError,
  createSenderCertificate,
  decodeSenderCertificate,
  fromUtf8,
  openSealedSender,
  sealSender,
  setCryptoProvider,
  utf8,
  verifySenderCertificate,
} from '../src/index.ts';
import { NODE_PROVIDER, expectCode, expectCodeSync } from './support/helpers.ts';
import { World } from './support/world.ts';

let prev: CryptoProvider;
beforeAll(() => {
  prev = setCryptoProvider(NODE_PROVIDER);
});
afterAll(() => {
  setCryptoProvider(prev);
});

const T0 = 1_700_000_000_000;
const DAY = 86_400_000;

function setup() {
  const w = new World();
  const a = w.addDevice('alice', 1);
  const a2 = w.addDevice('alice', 2);
  const b = w.addDevice('bob', 1);
  const cert = createSenderCertificate(a.local.identity, a.address, T0 + DAY);
  return { w, a, a2, b, cert };
}

describe('sealed sender', () => {
  it('hides the sender from the relay; the recipient learns it from the checked certificate', async () => {
    const { a, b, cert } = setup();
    const out = await a.manager.encrypt('bob', utf8('secret'), T0, { sealed: cert });
    expect(out.every((m) => m.kind === 'sealed')).toBe(true);
    const toBob = out.find((m) => m.address.account === 'bob')!;
    const hex = Buffer.from(toBob.body).toString('hex');
    expect(hex).not.toContain(Buffer.from(a.local.identity.publicKey).toString('hex'));
    expect(hex).not.toContain(Buffer.from('alice').toString('hex'));
    // No transport sender is given: it comes from the certificate.
    const r = await b.manager.receive(toBob.body, T0);
    expect(r).toMatchObject({ kind: 'data', sealed: true, sender: a.address });
    if (r.kind === 'data') expect(fromUtf8(r.body)).toBe('secret');
    // Replies work (unsealed here) and the sealed session is the same session.
    const back = await b.manager.encrypt('alice', utf8('reply'), T0);
    const r2 = await a.manager.receive(back.find((m) => m.address.device === 1)!.body, T0, {
      sender: b.address,
    });
    expect(r2.kind).toBe('data');
  });

  it('refuses an expired certificate', async () => {
    const { a, b, cert } = setup();
    const [m] = await a.manager.encrypt('bob', utf8('x'), T0, { sealed: cert });
    await expectCode(
      () => b.manager.receive(m!.body, T0 + 2 * DAY),
      'ERR_SENDER_CERTIFICATE_EXPIRED',
    );
  });

  it('refuses a certificate whose device the directory no longer lists', async () => {
    const { w, a, b, cert } = setup();
    const [m] = await a.manager.encrypt('bob', utf8('x'), T0, { sealed: cert });
    w.removeDevice(a.address);
    await expectCode(() => b.manager.receive(m!.body, T0), 'ERR_SENDER_NOT_IN_DIRECTORY');
  });

  it('refuses a certificate claiming another device of the account', async () => {
    const { a, a2, b } = setup();
    // alice/1 claims to be alice/2 with her own key: the directory lists another key for alice/2.
    const lie = createSenderCertificate(a.local.identity, a2.address, T0 + DAY);
    const [m] = await a.manager.encrypt('bob', utf8('x'), T0, { sealed: lie });
    await expectCode(() => b.manager.receive(m!.body, T0), 'ERR_SENDER_NOT_IN_DIRECTORY');
  });

  it('refuses a certificate for a key other than the one that sealed the envelope', () => {
    const { a, a2, b } = setup();
    const other = createSenderCertificate(a2.local.identity, a2.address, T0 + DAY);
    // Smuggle alice/2's certificate into an envelope sealed with alice/1's key.
    const env = sealSender({
      sender: a.local.identity,
      certificate: { ...other, identityKey: a.local.identity.publicKey },
      recipientIdentityKey: b.local.identity.publicKey,
      content: utf8('x'),
    });
    expectCodeSync(() => openSealedSender(env, b.local.identity, T0), 'ERR_SENDER_MISMATCH');
  });

  it('refuses a transport sender that differs from the certificate', async () => {
    const { a, b, cert, w } = setup();
    const [m] = await a.manager.encrypt('bob', utf8('x'), T0, { sealed: cert });
    await expectCode(
      () => b.manager.receive(m!.body, T0, { sender: w.addDevice('carol', 1).address }),
      'ERR_SENDER_MISMATCH',
    );
  });

  it('only the addressed device can open it', async () => {
    const { a, a2, cert } = setup();
    const out = await a.manager.encrypt('bob', utf8('x'), T0, { sealed: cert });
    const toBob = out.find((m) => m.address.account === 'bob')!;
    await expectCode(() => a2.manager.receive(toBob.body, T0), 'ERR_DECRYPTION_FAILED');
  });

  it('rejects tampering with any byte with a typed error', () => {
    const { a, b, cert } = setup();
    const env = sealSender({
      sender: a.local.identity,
      certificate: cert,
      recipientIdentityKey: b.local.identity.publicKey,
      content: utf8('payload'),
    });
    expect(fromUtf8(openSealedSender(env, b.local.identity, T0).content)).toBe('payload');
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (pos, x) => {
        const bad = env.slice();
        bad[pos % bad.length]! ^= x;
        expect(() => openSealedSender(bad, b.local.identity, T0)).toThrow(MessagingError);
      }),
      { numRuns: 200 },
    );
  });

  it('certificates are signed, strictly decoded and checked against the device list', () => {
    const { a, cert, w } = setup();
    const decoded = decodeSenderCertificate(cert.encoded, T0);
    expect(decoded.address).toEqual(a.address);
    const bad = cert.encoded.slice();
    bad[5]! ^= 1;
    expect(() => decodeSenderCertificate(bad, T0)).toThrow(MessagingError);
    expectCodeSync(
      () => decodeSenderCertificate(cert.encoded.subarray(0, cert.encoded.length - 1), T0),
      'ERR_ENCODING_MALFORMED',
    );
    const sig = cert.encoded.slice();
    sig[sig.length - 1]! ^= 1;
    expectCodeSync(() => decodeSenderCertificate(sig, T0), 'ERR_SENDER_CERTIFICATE_INVALID');
    expect(
      verifySenderCertificate(decoded, { account: 'alice', devices: w.directory.get('alice')! })
        .device,
    ).toBe(1);
    expectCodeSync(
      () =>
        verifySenderCertificate(decoded, { account: 'bob', devices: w.directory.get('alice')! }),
      'ERR_SENDER_NOT_IN_DIRECTORY',
    );
  });

  it('an envelope inside an envelope is refused', async () => {
    const { a, b, cert } = setup();
    const inner = sealSender({
      sender: a.local.identity,
      certificate: cert,
      recipientIdentityKey: b.local.identity.publicKey,
      content: utf8('x'),
    });
    const outer = sealSender({
      sender: a.local.identity,
      certificate: cert,
      recipientIdentityKey: b.local.identity.publicKey,
      content: inner,
    });
    await expectCode(() => b.manager.receive(outer, T0), 'ERR_UNEXPECTED_TYPE');
  });

  it('a reset request can travel sealed', async () => {
    const { w, a, b } = setup();
    await a.manager.encrypt('bob', utf8('x'), T0).then((out) => w.deliver(a.address, out, T0));
    const bobCert = createSenderCertificate(b.local.identity, b.address, T0 + DAY);
    const req = await b.manager.createResetRequest(a.address, undefined, T0);
    const sealed = await b.manager.seal(a.address, req, bobCert);
    const r = await a.manager.receive(sealed.body, T0);
    expect(r).toMatchObject({ kind: 'reset', accepted: true, sealed: true, sender: b.address });
  });
});
