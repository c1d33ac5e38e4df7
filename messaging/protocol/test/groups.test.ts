/**
 * Sender Keys groups: distribution over pairwise sessions, membership changes (rotation on
 * removal, distribution only to newcomers), signatures on every message, replays and reordering.
 * @module
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  type CryptoProvider,
  type GroupSendResult,
  type Received,
  MessagingError,
  createSenderCertificate,
  decodeGroupMessage,
  encodeSenderKeyDistribution,
  fromUtf8,
  groupDecrypt,
  groupEncrypt,
  processSenderKeyDistribution,
  rotateSenderKey,
  senderKeyDistribution,
  decodeSenderKeyDistribution,
  setCryptoProvider,
  utf8,
} from '../src/index.ts';
import { NODE_PROVIDER, expectCode, expectCodeSync } from './support/helpers.ts';
import { type Device, World } from './support/world.ts';

let prev: CryptoProvider;
beforeAll(() => {
  prev = setCryptoProvider(NODE_PROVIDER);
});
afterAll(() => {
  setCryptoProvider(prev);
});

const T0 = 1_700_000_000_000;
const GROUP = utf8('group-1');

async function deliverGroup(
  w: World,
  from: Device,
  res: GroupSendResult,
): Promise<Map<string, Received>> {
  const dist = await w.deliver(from.address, res.distributions, T0);
  for (const r of dist.values()) expect(r.kind).toBe('sender-key-distribution');
  return w.deliver(from.address, res.messages, T0);
}

function groupText(r: Received | undefined): string {
  if (r?.kind !== 'group') throw new Error(`expected a group message, got ${r?.kind ?? 'nothing'}`);
  return fromUtf8(r.body);
}

function world() {
  const w = new World();
  const a1 = w.addDevice('alice', 1);
  const a2 = w.addDevice('alice', 2);
  const b1 = w.addDevice('bob', 1);
  const b2 = w.addDevice('bob', 2);
  const c1 = w.addDevice('carol', 1);
  return { w, a1, a2, b1, b2, c1 };
}

describe('Sender Keys groups', () => {
  it('distributes once, then every member device decrypts every message', async () => {
    const { w, a1 } = world();
    const r1 = await a1.manager.groupEncrypt(GROUP, ['bob', 'carol'], utf8('hello group'), T0);
    expect(r1.distributions).toHaveLength(4);
    expect(r1.messages).toHaveLength(4);
    for (const r of (await deliverGroup(w, a1, r1)).values())
      expect(groupText(r)).toBe('hello group');
    const r2 = await a1.manager.groupEncrypt(GROUP, ['bob', 'carol'], utf8('second'), T0);
    expect(r2.distributions).toHaveLength(0);
    for (const r of (await deliverGroup(w, a1, r2)).values()) expect(groupText(r)).toBe('second');
  });

  it('removing a member rotates the key: the removed member cannot read later messages', async () => {
    const { w, a1, c1 } = world();
    await deliverGroup(
      w,
      a1,
      await a1.manager.groupEncrypt(GROUP, ['bob', 'carol'], utf8('all'), T0),
    );
    const after = await a1.manager.groupEncrypt(GROUP, ['bob'], utf8('without carol'), T0);
    // A new chain goes to every remaining device, none to carol.
    expect(after.distributions.map((m) => m.address.account).sort()).toEqual([
      'alice',
      'bob',
      'bob',
    ]);
    expect(after.messages.some((m) => m.address.account === 'carol')).toBe(false);
    for (const r of (await deliverGroup(w, a1, after)).values())
      expect(groupText(r)).toBe('without carol');
    // Carol obtains the message bytes anyway (a colluding relay): she has no key for the new chain.
    await expectCode(
      () => c1.manager.receive(after.messages[0]!.body, T0, { sender: a1.address }),
      'ERR_NO_SENDER_KEY',
    );
  });

  it('adding a member distributes only to the newcomer; a removed device triggers rotation', async () => {
    const { w, a1, b2 } = world();
    await deliverGroup(w, a1, await a1.manager.groupEncrypt(GROUP, ['bob'], utf8('one'), T0));
    const d1 = w.addDevice('dave', 1);
    const withDave = await a1.manager.groupEncrypt(GROUP, ['bob', 'dave'], utf8('two'), T0);
    expect(withDave.distributions.map((m) => m.address)).toEqual([d1.address]);
    for (const r of (await deliverGroup(w, a1, withDave)).values())
      expect(groupText(r)).toBe('two');
    // Bob's device 2 leaves the directory: its key holder status is revoked by rotation.
    w.removeDevice(b2.address);
    const rotated = await a1.manager.groupEncrypt(GROUP, ['bob', 'dave'], utf8('three'), T0);
    expect(rotated.distributions.length).toBe(3); // alice/2, bob/1, dave/1
    for (const r of (await deliverGroup(w, a1, rotated)).values())
      expect(groupText(r)).toBe('three');
  });

  it('several senders, membership changes on the way, all members agree', async () => {
    const { w, a1, b1, c1 } = world();
    const members = { alice: ['bob', 'carol'], bob: ['alice', 'carol'], carol: ['alice', 'bob'] };
    for (let round = 0; round < 3; round++) {
      for (const d of [a1, b1, c1]) {
        const acc = d.address.account as keyof typeof members;
        const res = await d.manager.groupEncrypt(GROUP, members[acc], utf8(`${acc} ${round}`), T0);
        for (const r of (await deliverGroup(w, d, res)).values())
          expect(groupText(r)).toBe(`${acc} ${round}`);
      }
    }
    // Carol leaves; alice and bob rotate.
    members.alice = ['bob'];
    members.bob = ['alice'];
    for (const d of [a1, b1]) {
      const acc = d.address.account as 'alice' | 'bob';
      const res = await d.manager.groupEncrypt(GROUP, members[acc], utf8(`${acc} after`), T0);
      expect(res.distributions.length).toBeGreaterThan(0);
      for (const r of (await deliverGroup(w, d, res)).values())
        expect(groupText(r)).toBe(`${acc} after`);
      await expect(
        c1.manager.receive(res.messages[0]!.body, T0, { sender: d.address }),
      ).rejects.toBeInstanceOf(MessagingError);
    }
  });

  it('group messages can be sealed', async () => {
    const { w, a1 } = world();
    const cert = createSenderCertificate(a1.local.identity, a1.address, T0 + 1e9);
    const res = await a1.manager.groupEncrypt(GROUP, ['bob'], utf8('sealed group'), T0, {
      sealed: cert,
    });
    expect(res.messages.every((m) => m.kind === 'sealed')).toBe(true);
    expect(res.distributions.every((m) => m.kind === 'sealed')).toBe(true);
    for (const m of res.distributions) {
      expect(await w.device(m.address).manager.receive(m.body, T0)).toMatchObject({
        kind: 'sender-key-distribution',
        sealed: true,
      });
    }
    for (const m of res.messages) {
      const got = await w.device(m.address).manager.receive(m.body, T0);
      expect(got).toMatchObject({ kind: 'group', sealed: true, sender: a1.address });
    }
  });
});

describe('Sender Keys primitives', () => {
  const setup = () => {
    const own = rotateSenderKey(GROUP);
    const dist = decodeSenderKeyDistribution(
      encodeSenderKeyDistribution(senderKeyDistribution(own)),
    );
    return { own, receiver: processSenderKeyDistribution(undefined, dist), dist };
  };

  it('every message is signed: a flipped bit anywhere is refused before decryption', () => {
    const { own, receiver } = setup();
    const { message } = groupEncrypt(own, utf8('signed'));
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (pos, x) => {
        const bad = message.slice();
        bad[pos % bad.length]! ^= x;
        expect(() => groupDecrypt(receiver, decodeGroupMessage(bad), T0)).toThrow(MessagingError);
      }),
      { numRuns: 150 },
    );
    const sigBit = message.slice();
    sigBit[sigBit.length - 1]! ^= 1;
    expectCodeSync(
      () => groupDecrypt(receiver, decodeGroupMessage(sigBit), T0),
      'ERR_GROUP_SIGNATURE_INVALID',
    );
    const ctBit = message.slice();
    ctBit[30]! ^= 1; // inside the ciphertext (after the 22-byte prefix and length)
    expectCodeSync(
      () => groupDecrypt(receiver, decodeGroupMessage(ctBit), T0),
      'ERR_GROUP_SIGNATURE_INVALID',
    );
  });

  it('another member cannot forge messages on the chain (no signing key)', () => {
    const { own, receiver } = setup();
    const mallory = rotateSenderKey(GROUP);
    // Mallory knows the chain key (she is a member) but not the signing key.
    const forgedRecord = {
      ...mallory,
      states: [{ ...own.states[0]!, signingSeed: mallory.states[0]!.signingSeed }],
    };
    const { message } = groupEncrypt(forgedRecord, utf8('forged'));
    expectCodeSync(
      () => groupDecrypt(receiver, decodeGroupMessage(message), T0),
      'ERR_GROUP_SIGNATURE_INVALID',
    );
  });

  it('out-of-order within the bound, replays refused, replayed distributions do not rewind', () => {
    let { own, receiver } = setup();
    const msgs: Uint8Array[] = [];
    for (let i = 0; i < 6; i++) {
      const r = groupEncrypt(own, utf8(`g${i}`));
      own = r.record;
      msgs.push(r.message);
    }
    for (const i of [3, 0, 5, 1, 2, 4]) {
      const r = groupDecrypt(receiver, decodeGroupMessage(msgs[i]!), T0);
      expect(fromUtf8(r.plaintext)).toBe(`g${i}`);
      receiver = r.record;
    }
    for (const m of msgs)
      expectCodeSync(
        () => groupDecrypt(receiver, decodeGroupMessage(m), T0),
        'ERR_DUPLICATE_MESSAGE',
      );
    // Re-processing the original distribution (iteration 0) must not re-open old keys.
    const again = processSenderKeyDistribution(
      receiver,
      decodeSenderKeyDistribution(
        encodeSenderKeyDistribution({ ...senderKeyDistribution(own), iteration: 0 }),
      ),
    );
    expectCodeSync(
      () => groupDecrypt(again, decodeGroupMessage(msgs[0]!), T0),
      'ERR_DUPLICATE_MESSAGE',
    );
  });

  it('bounds forward jumps', () => {
    let { own } = setup();
    const { receiver } = {
      receiver: processSenderKeyDistribution(undefined, senderKeyDistribution(own)),
    };
    let last: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < 12; i++) {
      const r = groupEncrypt(own, utf8('x'));
      own = r.record;
      last = r.message;
    }
    expectCodeSync(
      () =>
        groupDecrypt(receiver, decodeGroupMessage(last), T0, {
          maxSkip: 10,
          maxSkippedKeys: 10,
          skippedKeyMaxAgeMs: 1e9,
          maxPreviousChains: 5,
        }),
      'ERR_TOO_MANY_SKIPPED',
    );
  });

  it('expires and evicts skipped group keys', () => {
    let { own, receiver } = setup();
    const msgs: Uint8Array[] = [];
    for (let i = 0; i < 8; i++) {
      const r = groupEncrypt(own, utf8(`k${i}`));
      own = r.record;
      msgs.push(r.message);
    }
    const limits = {
      maxSkip: 100,
      maxSkippedKeys: 4,
      skippedKeyMaxAgeMs: 1000,
      maxPreviousChains: 5,
    };
    // Jumping to iteration 7 stores 7 skipped keys, of which the 4 newest are kept.
    receiver = groupDecrypt(receiver, decodeGroupMessage(msgs[7]!), T0, limits).record;
    expect(receiver.states[0]!.skipped.size).toBe(4);
    expectCodeSync(
      () => groupDecrypt(receiver, decodeGroupMessage(msgs[0]!), T0, limits),
      'ERR_DUPLICATE_MESSAGE',
    );
    receiver = groupDecrypt(receiver, decodeGroupMessage(msgs[5]!), T0, limits).record;
    // Later than the expiry, the remaining skipped keys are gone.
    expectCodeSync(
      () => groupDecrypt(receiver, decodeGroupMessage(msgs[4]!), T0 + 2000, limits),
      'ERR_DUPLICATE_MESSAGE',
    );
    const next = groupEncrypt(own, utf8('fresh'));
    const r = groupDecrypt(receiver, decodeGroupMessage(next.message), T0 + 2000, limits);
    expect(fromUtf8(r.plaintext)).toBe('fresh');
    expect(r.record.states[0]!.skipped.size).toBe(0);
  });

  it('a message for another group or an unknown chain has no sender key', () => {
    const { own, receiver } = setup();
    const other = rotateSenderKey(utf8('other group'));
    expectCodeSync(
      () => groupDecrypt(receiver, decodeGroupMessage(groupEncrypt(other, utf8('x')).message), T0),
      'ERR_NO_SENDER_KEY',
    );
    expectCodeSync(
      () => groupDecrypt(undefined, decodeGroupMessage(groupEncrypt(own, utf8('x')).message), T0),
      'ERR_NO_SENDER_KEY',
    );
    expectCodeSync(() => groupEncrypt(receiver, utf8('x')), 'ERR_NO_SENDER_KEY');
  });
});
