/**
 * Sesame scenarios through the real session manager: three devices per person, devices added
 * and removed mid-conversation, stale devices, simultaneous initiation, replayed initial
 * messages, bundles that contradict the directory, identity changes, and automatic session
 * reset with rate limiting, replay protection and no downgrade.
 * @module
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CryptoProvider,
  type OutgoingMessage,
  type Received,
  InconsistencyError,
  createKemPreKey,
  MessagingError,
  decodeDeviceRecord,
  decodePreKeyBundle,
  encodeDeviceRecord,
  encodePreKeyBundle,
  encryptSession,
  fromUtf8,
  initiateSession,
  setCryptoProvider,
  utf8,
} from '../src/index.ts';
import { NODE_PROVIDER, expectCode } from './support/helpers.ts';
import { TEST_KEM } from './support/test-kem.ts';
import { type Device, World } from './support/world.ts';

let prev: CryptoProvider;
beforeAll(() => {
  prev = setCryptoProvider(NODE_PROVIDER);
});
afterAll(() => {
  setCryptoProvider(prev);
});

const T0 = 1_700_000_000_000;

function text(r: Received | undefined): string {
  if (r?.kind !== 'data') throw new Error(`expected data, got ${r?.kind ?? 'nothing'}`);
  return fromUtf8(r.body);
}

async function sendAndCheck(
  world: World,
  from: Device,
  account: string,
  msg: string,
  now = T0,
): Promise<OutgoingMessage[]> {
  const out = await from.manager.encrypt(account, utf8(msg), now);
  const got = await world.deliver(from.address, out, now);
  for (const r of got.values()) expect(text(r)).toBe(msg);
  return out;
}

const keys = (out: readonly OutgoingMessage[]) =>
  out.map((m) => `${m.address.account}:${m.address.device}`).sort();

describe('multi-device conversations', () => {
  for (const serialize of [false, true]) {
    it(`three devices per person reach each other and their own devices (serialize=${serialize})`, async () => {
      const w = new World();
      const a = [1, 2, 3].map((d) => w.addDevice('alice', d, { serialize }));
      const b = [1, 2, 3].map((d) => w.addDevice('bob', d, { serialize }));
      const first = await sendAndCheck(w, a[0]!, 'bob', 'hi bob');
      expect(keys(first)).toEqual(['alice:2', 'alice:3', 'bob:1', 'bob:2', 'bob:3']);
      expect(first.every((m) => m.kind === 'prekey')).toBe(true);
      const reply = await sendAndCheck(w, b[1]!, 'alice', 'hi alice');
      expect(keys(reply)).toEqual(['alice:1', 'alice:2', 'alice:3', 'bob:1', 'bob:3']);
      // alice1 ↔ bob2 is now acknowledged on both sides.
      const again = await sendAndCheck(w, a[0]!, 'bob', 'second');
      expect(again.find((m) => m.address.account === 'bob' && m.address.device === 2)?.kind).toBe(
        'message',
      );
      for (let round = 0; round < 3; round++) {
        for (const d of [...a, ...b]) {
          await sendAndCheck(
            w,
            d,
            d.address.account === 'alice' ? 'bob' : 'alice',
            `r${round} from ${d.address.account}${d.address.device}`,
          );
        }
      }
      // After everyone has spoken, everything is a plain ratchet message.
      const last = await sendAndCheck(w, a[2]!, 'bob', 'steady');
      expect(last.every((m) => m.kind === 'message')).toBe(true);
    });
  }

  it('a device added mid-conversation gets a new session; a removed one is left out and refused', async () => {
    const w = new World();
    const a1 = w.addDevice('alice', 1);
    const b1 = w.addDevice('bob', 1);
    const b2 = w.addDevice('bob', 2);
    await sendAndCheck(w, a1, 'bob', 'one');
    await sendAndCheck(w, b2, 'alice', 'two');
    // Bob links a third device.
    const b3 = w.addDevice('bob', 3);
    const out = await sendAndCheck(w, a1, 'bob', 'three');
    expect(keys(out)).toEqual(['bob:1', 'bob:2', 'bob:3']);
    expect(out.find((m) => m.address.device === 3)?.kind).toBe('prekey');
    expect(w.bundleFetches.get('3:bob')).toBe(1);
    await sendAndCheck(w, b3, 'alice', 'from the new device');
    // Bob removes device 2 (lost phone): Alice stops encrypting to it …
    w.removeDevice(b2.address);
    const out2 = await sendAndCheck(w, a1, 'bob', 'four', T0 + 10);
    expect(keys(out2)).toEqual(['bob:1', 'bob:3']);
    // … and refuses what it still sends, as does Bob's own device 1.
    const stale = await b2.manager.encrypt('alice', utf8('still here'), T0 + 20);
    const toAlice = stale.find((m) => m.address.account === 'alice')!;
    await expectCode(
      () => a1.manager.receive(toAlice.body, T0 + 20, { sender: b2.address }),
      'ERR_DEVICE_STALE',
    );
    await b1.manager.refreshDevices('bob', T0 + 20);
    expect((await b1.sessions.loadDevice(b2.address))?.staleSince).toBe(T0 + 20);
    // bob/1 never answered bob/2, so this is still a prekey message: the directory refuses it.
    const toB1 = stale.find((m) => m.address.account === 'bob' && m.address.device === 1)!;
    expect(toB1.kind).toBe('prekey');
    await expectCode(
      () => b1.manager.receive(toB1.body, T0 + 20, { sender: b2.address }),
      'ERR_DEVICE_UNKNOWN',
    );
    // A device put back in the directory is no longer stale.
    w.directory.get('bob')!.push({
      device: 2,
      identityKey: b2.local.identity.publicKey,
      registrationId: b2.local.registrationId,
    });
    await sendAndCheck(w, a1, 'bob', 'welcome back', T0 + 30);
  });

  it('a prekey message from a device unknown to the directory is refused', async () => {
    const w = new World();
    const a1 = w.addDevice('alice', 1);
    w.addDevice('bob', 1);
    const out = await a1.manager.encrypt('bob', utf8('x'), T0);
    w.removeDevice(a1.address);
    await expectCode(() => w.deliver(a1.address, out, T0), 'ERR_DEVICE_UNKNOWN');
  });

  it('simultaneous initiation converges on one session (inactive sessions are tried and promoted)', async () => {
    const w = new World();
    const a = w.addDevice('alice', 1);
    const b = w.addDevice('bob', 1);
    const fromA = await a.manager.encrypt('bob', utf8('a first'), T0);
    const fromB = await b.manager.encrypt('alice', utf8('b first'), T0);
    expect(text((await w.deliver(a.address, fromA, T0)).get('1:bob'))).toBe('a first');
    expect(text((await w.deliver(b.address, fromB, T0)).get('1:alice'))).toBe('b first');
    for (let i = 0; i < 3; i++) {
      await sendAndCheck(w, a, 'bob', `a${i}`);
      await sendAndCheck(w, b, 'alice', `b${i}`);
    }
    const ra = await a.sessions.loadDevice(b.address);
    const rb = await b.sessions.loadDevice(a.address);
    expect(Buffer.from(ra!.active!.baseKey).equals(Buffer.from(rb!.active!.baseKey))).toBe(true);
    expect(ra!.archived.length).toBe(1);
  });

  it('a replayed initial message is a duplicate, and a lost one-time prekey cannot be reused', async () => {
    const w = new World();
    const a = w.addDevice('alice', 1);
    const b = w.addDevice('bob', 1);
    const out = await a.manager.encrypt('bob', utf8('once'), T0);
    await w.deliver(a.address, out, T0);
    await expectCode(() => w.deliver(a.address, out, T0), 'ERR_DUPLICATE_MESSAGE');
    // If Bob loses his sessions, the same message cannot open a new one: its one-time prekey is gone.
    b.sessions.clear();
    await expectCode(() => w.deliver(a.address, out, T0), 'ERR_PREKEY_NOT_FOUND');
  });

  it('a relay bundle that contradicts the directory is an InconsistencyError with the bundle as evidence', async () => {
    const w = new World();
    const a = w.addDevice('alice', 1);
    const b = w.addDevice('bob', 1);
    const mallory = w.addDevice('mallory', 1);
    const real = w.fetchBundle.bind(w);
    w.fetchBundle = async (address) => {
      const bundle = decodePreKeyBundle(await real(mallory.address));
      return encodePreKeyBundle({ ...bundle, address });
    };
    const err = await expectCode(
      () => a.manager.encrypt('bob', utf8('x'), T0),
      'ERR_BUNDLE_IDENTITY_MISMATCH',
    );
    if (!(err instanceof InconsistencyError)) throw new Error('expected an InconsistencyError');
    expect(err.evidence.artifacts).toHaveLength(1);
    expect(decodePreKeyBundle(err.evidence.artifacts[0]!).identityKey).toEqual(
      mallory.local.identity.publicKey,
    );
    // A bundle with a forged prekey signature is refused too.
    w.fetchBundle = async (address) => {
      const bundle = decodePreKeyBundle(await real(address));
      const sig = bundle.signedPreKey.signature.slice();
      sig[5]! ^= 1;
      return encodePreKeyBundle({
        ...bundle,
        signedPreKey: { ...bundle.signedPreKey, signature: sig },
      });
    };
    await expectCode(() => a.manager.encrypt('bob', utf8('x'), T0), 'ERR_SIGNATURE_INVALID');
    expect(await a.sessions.loadDevice(b.address)).toBeUndefined();
  });

  it('an identity key different from the directory entry is refused', async () => {
    const w = new World();
    const a = w.addDevice('alice', 1);
    w.addDevice('bob', 1);
    const out = await a.manager.encrypt('bob', utf8('x'), T0);
    // The directory now lists another key for alice/1.
    w.directory.set('alice', [
      {
        ...w.directory.get('alice')![0]!,
        identityKey: w.addDevice('eve', 1).local.identity.publicKey,
      },
    ]);
    await expectCode(() => w.deliver(a.address, out, T0), 'ERR_UNTRUSTED_IDENTITY');
  });

  it('an identity change in the directory drops old sessions and reports it', async () => {
    const w = new World();
    const a = w.addDevice('alice', 1);
    w.addDevice('bob', 1);
    await sendAndCheck(w, a, 'bob', 'before');
    // Bob reinstalls device 1: new identity key, same device id.
    const b2 = w.addDevice('bob', 1);
    const out = await sendAndCheck(w, a, 'bob', 'after');
    expect(out[0]!.kind).toBe('prekey');
    expect(a.identityChanges).toEqual([b2.address]);
  });

  it('a new identity key arriving in a prekey message (vouched for by the directory) is reported', async () => {
    const w = new World();
    w.addDevice('alice', 1);
    const b = w.addDevice('bob', 1);
    await sendAndCheck(w, w.device({ account: 'alice', device: 1 }), 'bob', 'before');
    // Alice reinstalls: new identity on the same device id, and writes first.
    const a2 = w.addDevice('alice', 1);
    await sendAndCheck(w, a2, 'bob', 'after reinstall');
    expect(b.identityChanges).toEqual([a2.address]);
    const rec = await b.sessions.loadDevice(a2.address);
    expect(rec!.archived).toHaveLength(0);
  });

  it('KEM prekeys: one-time ones are deleted after use, last-resort ones kept; a foreign KEM is refused', async () => {
    const w = new World();
    const a = w.addDevice('alice', 1, { kem: TEST_KEM });
    const b = w.addDevice('bob', 1, { kem: TEST_KEM });
    await sendAndCheck(w, a, 'bob', 'pq');
    expect(b.preKeys.kem.size).toBe(1); // the World registers a last-resort KEM prekey
    const lastResort = [...b.preKeys.kem.values()][0]!;
    b.preKeys.kem.set(lastResort.id, { ...lastResort, lastResort: false });
    const c = w.addDevice('carol', 1, { kem: TEST_KEM });
    await sendAndCheck(w, c, 'bob', 'pq2');
    expect(b.preKeys.kem.size).toBe(0);
    // A device whose bundle offers a KEM it cannot run refuses the session.
    const d = w.addDevice('dave', 1);
    d.preKeys.kem.set(99, createKemPreKey(d.local.identity, TEST_KEM, 99, true));
    const e = w.addDevice('erin', 1, { kem: TEST_KEM });
    const [m] = await e.manager.encrypt('dave', utf8('x'), T0);
    expect(m!.kind).toBe('prekey');
    await expectCode(
      () => d.manager.receive(m!.body, T0, { sender: e.address }),
      'ERR_KEM_UNSUPPORTED',
    );
  });

  it('an initiated session never answered is replaced after maxUnacknowledgedAgeMs', async () => {
    const w = new World();
    const a = w.addDevice('alice', 1, { limits: { maxUnacknowledgedAgeMs: 1000 } });
    w.addDevice('bob', 1);
    await a.manager.encrypt('bob', utf8('1'), T0);
    await a.manager.encrypt('bob', utf8('2'), T0 + 500);
    expect(w.bundleFetches.get('1:bob')).toBe(1);
    await a.manager.encrypt('bob', utf8('3'), T0 + 1500);
    expect(w.bundleFetches.get('1:bob')).toBe(2);
  });

  it('a failed decryption changes no session (tampered message), the original then decrypts', async () => {
    const w = new World();
    const a = w.addDevice('alice', 1);
    const b = w.addDevice('bob', 1);
    await sendAndCheck(w, a, 'bob', 'x');
    await sendAndCheck(w, b, 'alice', 'y');
    const [m] = await a.manager.encrypt('bob', utf8('z'), T0);
    const before = b.sessions.snapshot(a.address);
    for (const pos of [2, 10, 30, 45, m!.body.length - 1]) {
      const bad = m!.body.slice();
      bad[pos]! ^= 0x40;
      await expect(b.manager.receive(bad, T0, { sender: a.address })).rejects.toBeInstanceOf(
        MessagingError,
      );
      // Sessions are untouched (only the reset bookkeeping may be written).
      const after = await b.sessions.loadDevice(a.address);
      const orig = decodeDeviceRecord(before!);
      const same = encodeDeviceRecord({ ...after!, resetRequestedAt: orig.resetRequestedAt });
      expect(Buffer.from(same).equals(Buffer.from(before!))).toBe(true);
    }
    expect(text(await b.manager.receive(m!.body, T0, { sender: a.address }))).toBe('z');
  });
});

describe('automatic session reset', () => {
  it('a device that lost its state asks for a reset; the peer starts a fresh session', async () => {
    const w = new World();
    const a = w.addDevice('alice', 1);
    const b = w.addDevice('bob', 1);
    await sendAndCheck(w, a, 'bob', 'hello');
    await sendAndCheck(w, b, 'alice', 'hi');
    b.sessions.clear(); // Bob restores an old backup, or reinstalls the app data
    const [m] = await a.manager.encrypt('bob', utf8('lost'), T0);
    await expectCode(() => b.manager.receive(m!.body, T0, { sender: a.address }), 'ERR_NO_SESSION');
    expect(b.outbox).toHaveLength(1);
    const reset = b.outbox[0]!;
    expect(reset.to).toEqual(a.address);
    const r = await a.manager.receive(reset.body, T0, { sender: b.address });
    expect(r).toMatchObject({ kind: 'reset', accepted: true });
    const fetches = w.bundleFetches.get('1:bob') ?? 0;
    const out = await sendAndCheck(w, a, 'bob', 'fresh session', T0 + 1);
    expect(out[0]!.kind).toBe('prekey');
    expect(w.bundleFetches.get('1:bob')).toBe(fetches + 1);
    await sendAndCheck(w, b, 'alice', 'we are back', T0 + 2);
    // The same request replayed is refused.
    await expectCode(
      () => a.manager.receive(reset.body, T0 + 3, { sender: b.address }),
      'ERR_RESET_STALE',
    );
  });

  it('reset requests are rate-limited on both sides (no reset loops)', async () => {
    const w = new World();
    const a = w.addDevice('alice', 1, { limits: { resetIntervalMs: 60_000 } });
    const b = w.addDevice('bob', 1, { limits: { resetIntervalMs: 60_000 } });
    await sendAndCheck(w, a, 'bob', 'hello');
    await sendAndCheck(w, b, 'alice', 'hi');
    b.sessions.clear();
    for (let i = 0; i < 3; i++) {
      const [m] = await a.manager.encrypt('bob', utf8(`x${i}`), T0 + i);
      await expectCode(
        () => b.manager.receive(m!.body, T0 + i, { sender: a.address }),
        'ERR_NO_SESSION',
      );
    }
    expect(b.outbox).toHaveLength(1);
    await expectCode(
      () => b.manager.createResetRequest(a.address, undefined, T0 + 10),
      'ERR_RESET_RATE_LIMITED',
    );
    const later = await b.manager.createResetRequest(a.address, undefined, T0 + 70_000);
    // Alice honours one reset per interval.
    expect(await a.manager.processResetRequest(b.address, b.outbox[0]!.body, T0 + 70_000)).toBe(
      true,
    );
    await a.manager.encrypt('bob', utf8('new'), T0 + 70_001);
    await expectCode(
      () => a.manager.processResetRequest(b.address, later, T0 + 70_002),
      'ERR_RESET_RATE_LIMITED',
    );
  });

  it('a reset request is bound to both devices and signed by the requester', async () => {
    const w = new World();
    const a = w.addDevice('alice', 1);
    const b = w.addDevice('bob', 1);
    const c = w.addDevice('carol', 1);
    await sendAndCheck(w, a, 'bob', 'hello');
    const req = await b.manager.createResetRequest(a.address, undefined, T0);
    // Delivered as if from carol: refused.
    await expectCode(() => a.manager.receive(req, T0, { sender: c.address }), 'ERR_RESET_INVALID');
    // Redirected to carol: refused.
    await expectCode(() => c.manager.receive(req, T0, { sender: b.address }), 'ERR_RESET_INVALID');
    // A flipped signature bit: refused.
    const bad = req.slice();
    bad[bad.length - 3]! ^= 1;
    await expectCode(() => a.manager.receive(bad, T0, { sender: b.address }), 'ERR_RESET_INVALID');
    expect(await a.manager.processResetRequest(b.address, req, T0)).toBe(true);
  });

  it('a reset about an older ratchet key does not reset the current session', async () => {
    const w = new World();
    const a = w.addDevice('alice', 1);
    const b = w.addDevice('bob', 1);
    const [old] = await a.manager.encrypt('bob', utf8('old'), T0);
    await w.deliver(a.address, [old!], T0);
    await sendAndCheck(w, b, 'alice', 'reply'); // Alice ratchets: new sending key
    const req = await b.manager.createResetRequest(a.address, old!.body, T0);
    expect(await a.manager.processResetRequest(b.address, req, T0)).toBe(false);
    await sendAndCheck(w, a, 'bob', 'still the same session');
  });

  it('no downgrade: after a header-encrypted session, a weaker new session is refused', async () => {
    const w = new World();
    const a = w.addDevice('alice', 1, { features: { headerEncryption: true } });
    const b = w.addDevice('bob', 1);
    await sendAndCheck(w, a, 'bob', 'protected');
    const rb = await b.sessions.loadDevice(a.address);
    expect(rb!.floor.headerEncryption).toBe(true);
    // Bob's own new sessions with Alice keep header encryption although his default is off.
    await b.manager.processResetRequest(
      a.address,
      await a.manager.createResetRequest(b.address, undefined, T0),
      T0,
    );
    // Someone holding Alice's keys (or a downgraded client) offers a session without it.
    const bundle = decodePreKeyBundle(await w.fetchBundle(b.address));
    const weak = initiateSession({
      identity: a.local.identity,
      localRegistrationId: a.local.registrationId,
      bundle,
      features: { headerEncryption: false },
      now: T0,
    });
    const msg = encryptSession(weak, encodeContentData('downgrade'));
    await expectCode(
      () => b.manager.receive(msg.message, T0, { sender: a.address }),
      'ERR_SESSION_DOWNGRADE',
    );
    // Stripping the feature bit from a real initial message breaks the X3DH binding instead.
    const c = w.addDevice('carol', 1, { features: { headerEncryption: true } });
    const [m] = await c.manager.encrypt('bob', utf8('x'), T0);
    const stripped = m!.body.slice();
    stripped[2] = 0;
    await expect(b.manager.receive(stripped, T0, { sender: c.address })).rejects.toBeInstanceOf(
      MessagingError,
    );
  });

  it('no downgrade: after a KEM session, a bundle without the KEM is refused', async () => {
    const w = new World();
    const a = w.addDevice('alice', 1, { kem: TEST_KEM });
    const b = w.addDevice('bob', 1, { kem: TEST_KEM });
    await sendAndCheck(w, a, 'bob', 'pq');
    await sendAndCheck(w, b, 'alice', 'pq reply');
    expect((await a.sessions.loadDevice(b.address))!.active!.kemId).toBe(TEST_KEM.id);
    // Reset, then the relay withholds the KEM prekey.
    await a.manager.processResetRequest(
      b.address,
      await b.manager.createResetRequest(a.address, undefined, T0),
      T0,
    );
    b.preKeys.kem.clear();
    await expectCode(() => a.manager.encrypt('bob', utf8('x'), T0 + 1), 'ERR_SESSION_DOWNGRADE');
  });
});

function encodeContentData(s: string): Uint8Array {
  // The manager's content framing (kind data, padded).
  const body = utf8(s);
  const len = 2 + 1 + 4 + body.length;
  const padded = Math.ceil(len / 64) * 64;
  const out = new Uint8Array(padded);
  out.set([1, 0x0a, 1]);
  new DataView(out.buffer).setUint32(3, body.length);
  out.set(body, 7);
  return out;
}
