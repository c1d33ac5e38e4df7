/**
 * Double Ratchet properties (fast-check) and bounds: out-of-order delivery within the skip
 * bound, loss, duplication (replays rejected), tampering with any byte (rejected, state
 * unchanged), skip and storage bounds, expiry; with and without header encryption.
 * @module
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  DEFAULT_RATCHET_LIMITS,
  MessagingError,
  encryptSession,
  setCryptoProvider,
  type CryptoProvider,
} from '../src/index.ts';
import { NODE_PROVIDER, expectCodeSync } from './support/helpers.ts';
import { makePair, receive, send, snapshot } from './support/pair.ts';

let prev: CryptoProvider;
beforeAll(() => {
  prev = setCryptoProvider(NODE_PROVIDER);
});
afterAll(() => {
  setCryptoProvider(prev);
});

const MODES = [
  { name: 'plain headers', features: { headerEncryption: false } },
  { name: 'header encryption', features: { headerEncryption: true } },
];

describe.each(MODES)('Double Ratchet ($name)', ({ features }) => {
  it('delivers out of order within the skip bound, across a DH ratchet step', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 12 }),
        fc.infiniteStream(fc.nat()),
        (n1, n2, rnd) => {
          const p = makePair(features);
          const batch1 = Array.from({ length: n1 }, (_, i) => ({
            t: `a${i}`,
            b: send(p, true, `a${i}`),
          }));
          // Bob answers; Alice's next batch is on a new sending chain.
          expect(receive(p, true, send(p, false, 'turn'))).toBe('turn');
          const batch2 = Array.from({ length: n2 }, (_, i) => ({
            t: `b${i}`,
            b: send(p, true, `b${i}`),
          }));
          const all = [...batch1, ...batch2];
          // Fisher-Yates with the generated stream.
          const it = rnd[Symbol.iterator]();
          for (let i = all.length - 1; i > 0; i--) {
            const j = (it.next().value as number) % (i + 1);
            [all[i], all[j]] = [all[j]!, all[i]!];
          }
          for (const m of all) expect(receive(p, false, m.b)).toBe(m.t);
          // The conversation continues.
          expect(receive(p, true, send(p, false, 'after'))).toBe('after');
        },
      ),
      { numRuns: 40 },
    );
  });

  it('survives loss: delivered messages decrypt, the conversation continues', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 25 }), (keep) => {
        const p = makePair(features);
        keep.forEach((k, i) => {
          const fromAlice = i % 5 !== 4;
          const m = send(p, fromAlice, `m${i}`);
          if (k) expect(receive(p, !fromAlice, m)).toBe(`m${i}`);
        });
        expect(receive(p, false, send(p, true, 'end'))).toBe('end');
        expect(receive(p, true, send(p, false, 'end2'))).toBe('end2');
      }),
      { numRuns: 40 },
    );
  });

  it('rejects every replay with ERR_DUPLICATE_MESSAGE and leaves the state unchanged', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 9 }), { minLength: 1, maxLength: 30 }),
        fc.boolean(),
        (order, bobReplies) => {
          const p = makePair(features);
          const msgs = Array.from({ length: 5 }, (_, i) => send(p, true, `x${i}`));
          if (bobReplies) {
            receive(p, true, send(p, false, 'r'));
            for (let i = 5; i < 10; i++) msgs.push(send(p, true, `x${i}`));
          }
          const seen = new Set<number>();
          for (const raw of order) {
            const i = raw % msgs.length;
            if (seen.has(i)) {
              const before = snapshot(p.bob);
              expectCodeSync(() => receive(p, false, msgs[i]!), 'ERR_DUPLICATE_MESSAGE');
              expect(snapshot(p.bob)).toBe(before);
            } else {
              expect(receive(p, false, msgs[i]!)).toBe(`x${i}`);
              seen.add(i);
            }
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('rejects tampering with any byte (typed error), state unchanged, original still decrypts', () => {
    fc.assert(
      fc.property(
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.integer({ min: 0, max: 3 }),
        fc.boolean(),
        (pos, xor, skipBefore, afterTurn) => {
          const p = makePair(features);
          if (afterTurn) receive(p, true, send(p, false, 'turn'));
          for (let i = 0; i < skipBefore; i++) send(p, true, `lost${i}`);
          const m = send(p, true, 'target');
          const bad = m.slice();
          bad[pos % bad.length]! ^= xor;
          const before = snapshot(p.bob);
          let err: unknown;
          try {
            receive(p, false, bad);
          } catch (e) {
            err = e;
          }
          expect(err).toBeInstanceOf(MessagingError);
          expect(snapshot(p.bob)).toBe(before);
          expect(receive(p, false, m)).toBe('target');
        },
      ),
      { numRuns: 150 },
    );
  });

  it('bounds the skip per chain step (ERR_TOO_MANY_SKIPPED) without changing state', () => {
    const limits = { ...DEFAULT_RATCHET_LIMITS, maxSkip: 10 };
    const p = makePair(features);
    const msgs = Array.from({ length: 12 }, (_, i) => send(p, true, `s${i}`));
    const before = snapshot(p.bob);
    expectCodeSync(() => receive(p, false, msgs[11]!, 0, limits), 'ERR_TOO_MANY_SKIPPED');
    expect(snapshot(p.bob)).toBe(before);
    expect(receive(p, false, msgs[10]!, 0, limits)).toBe('s10');
    expect(receive(p, false, msgs[3]!, 0, limits)).toBe('s3');
  });

  it('bounds the previous-chain skip too (PN far ahead)', () => {
    const limits = { ...DEFAULT_RATCHET_LIMITS, maxSkip: 5 };
    const p = makePair(features);
    for (let i = 0; i < 7; i++) send(p, true, `lost${i}`);
    receive(p, true, send(p, false, 'turn'));
    const m = send(p, true, 'new chain');
    expectCodeSync(() => receive(p, false, m, 0, limits), 'ERR_TOO_MANY_SKIPPED');
  });

  it('evicts the oldest stored skipped keys beyond maxSkippedKeys', () => {
    const limits = { ...DEFAULT_RATCHET_LIMITS, maxSkippedKeys: 3 };
    const p = makePair(features);
    const msgs = Array.from({ length: 7 }, (_, i) => send(p, true, `e${i}`));
    expect(receive(p, false, msgs[6]!, 0, limits)).toBe('e6');
    expect(p.bob.ratchet.skipped.size).toBe(3);
    expectCodeSync(() => receive(p, false, msgs[0]!, 0, limits), 'ERR_DUPLICATE_MESSAGE');
    expect(receive(p, false, msgs[5]!, 0, limits)).toBe('e5');
  });

  it('expires skipped keys after skippedKeyMaxAgeMs', () => {
    const limits = { ...DEFAULT_RATCHET_LIMITS, skippedKeyMaxAgeMs: 1000 };
    const p = makePair(features);
    const msgs = Array.from({ length: 3 }, (_, i) => send(p, true, `t${i}`));
    expect(receive(p, false, msgs[2]!, 5000, limits)).toBe('t2');
    expect(receive(p, false, msgs[0]!, 5500, limits)).toBe('t0');
    expectCodeSync(() => receive(p, false, msgs[1]!, 6001, limits), 'ERR_DUPLICATE_MESSAGE');
    // The failure changed nothing; the next successful decryption purges the expired key.
    expect(p.bob.ratchet.skipped.size).toBe(1);
    expect(receive(p, false, send(p, true, 't3'), 6001, limits)).toBe('t3');
    expect(p.bob.ratchet.skipped.size).toBe(0);
  });

  it('recognises a replay into a chain several steps old', () => {
    const p = makePair(features);
    const old = send(p, true, 'old');
    expect(receive(p, false, old)).toBe('old');
    for (let i = 0; i < 3; i++) {
      receive(p, true, send(p, false, `b${i}`));
      receive(p, false, send(p, true, `a${i}`));
    }
    expectCodeSync(() => receive(p, false, old), 'ERR_DUPLICATE_MESSAGE');
  });
});

describe('Double Ratchet specifics', () => {
  it('the responder cannot send before the first message arrives', () => {
    const p = makePair();
    // A fresh responder session (no receiving chain yet) is simulated by clearing Bob's chains.
    const bob = { ...p.bob, ratchet: { ...p.bob.ratchet, sendingChainKey: undefined } };
    expectCodeSync(() => encryptSession(bob, new Uint8Array(1)), 'ERR_NO_SENDING_CHAIN');
  });

  it('header encryption hides the ratchet key and counters', () => {
    const p = makePair({ headerEncryption: true });
    const m = send(p, true, 'x');
    const key = Buffer.from(p.alice.ratchet.sendingKeyPair.publicKey).toString('hex');
    expect(Buffer.from(m).toString('hex')).not.toContain(key);
    expect(m[1]).toBe(0x04);
    const plain = makePair();
    const m2 = send(plain, true, 'x');
    expect(Buffer.from(m2).toString('hex')).toContain(
      Buffer.from(plain.alice.ratchet.sendingKeyPair.publicKey).toString('hex'),
    );
  });

  it('a message of one header mode is rejected by a session of the other', () => {
    const he = makePair({ headerEncryption: true });
    const plain = makePair();
    expectCodeSync(() => receive(plain, false, send(he, true, 'x')), 'ERR_DECRYPTION_FAILED');
  });

  it('associated data binds both identities: the message fails under another identity pair', () => {
    const p = makePair();
    const m = send(p, true, 'bound');
    const swapped = {
      ...p.bob,
      ratchet: { ...p.bob.ratchet, remoteIdentityKey: p.bob.ratchet.localIdentityKey },
    };
    p.bob = swapped;
    expectCodeSync(() => receive(p, false, m), 'ERR_DECRYPTION_FAILED');
  });
});
