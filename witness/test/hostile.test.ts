/**
 * Malformed and hostile `add-checkpoint` bodies: huge, truncated, bit-flipped, bad base64, bad
 * UTF-8, duplicated signature lines. Each gets a 4xx, the process keeps serving, and the stored
 * state does not change.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { bytes, note } from '@keytrail/core';
import { formatAddCheckpointRequest } from '../src/index.ts';
import { TestLog, post, witnessFixture, type WitnessFixture } from './helpers.ts';

const log = new TestLog('example.com/hostile', 21);
// A second log for the random mutations, which may legitimately advance it.
const fcLog = new TestLog('example.com/hostile-fc', 22);
let w: WitnessFixture;
const CLIENT_ERRORS = [400, 403, 404, 409, 413, 422];

beforeAll(async () => {
  log.append(12);
  fcLog.append(12);
  w = await witnessFixture('witness_hostile', [log, fcLog]);
  expect((await post(w.app, log.body(0, 6))).statusCode).toBe(200);
  expect((await post(w.app, fcLog.body(0, 6))).statusCode).toBe(200);
});
afterAll(async () => {
  await w.close();
});

async function stateKey(): Promise<string> {
  const s = await w.store.getState(log.origin);
  return `${String(s!.size)} ${bytes.toBase64(s!.root)} ${String(s!.checkpoint)}`;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('hostile bodies', () => {
  it('every truncation of a valid body is refused', async () => {
    const before = await stateKey();
    const body = enc(log.body(6, 12));
    for (let n = 0; n < body.length; n++) {
      const r = await post(w.app, body.subarray(0, n));
      expect(CLIENT_ERRORS, `prefix of ${String(n)} bytes`).toContain(r.statusCode);
    }
    expect(await stateKey()).toBe(before);
  });

  it('random bit flips, insertions and deletions are refused (fast-check)', async () => {
    // A request that would succeed unmodified: only a mutation that keeps it valid could pass.
    const body = enc(fcLog.body(6, 12));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ kind: fc.constant('flip'), at: fc.nat(body.length - 1), bit: fc.nat(7) }),
          fc.record({ kind: fc.constant('insert'), at: fc.nat(body.length), byte: fc.nat(255) }),
          fc.record({
            kind: fc.constant('delete'),
            at: fc.nat(body.length - 1),
            len: fc.integer({ min: 1, max: 8 }),
          }),
        ),
        async (m) => {
          const b = Array.from(body);
          if (m.kind === 'flip') b[m.at] = (b[m.at]! ^ (1 << m.bit)) & 0xff;
          else if (m.kind === 'insert') b.splice(m.at, 0, m.byte);
          else b.splice(m.at, m.len);
          const mutated = Uint8Array.from(b);
          const r = await post(w.app, mutated);
          // Flipping the unused low bits of a base64 symbol before padding is not a change
          // (Go's decoder ignores them, and so do we): the request is the same and succeeds.
          if (r.statusCode === 200) {
            expect(r.body).toMatch(/^— /);
            return;
          }
          expect(CLIENT_ERRORS).toContain(r.statusCode);
        },
      ),
      { numRuns: 300 },
    );
    const after = await w.store.getState(fcLog.origin);
    // Either untouched, or advanced to exactly the legitimate checkpoint.
    expect([6, 12]).toContain(after!.size);
    expect(bytes.equalBytes(after!.root, fcLog.tree.root(after!.size))).toBe(true);
  });

  it('bad UTF-8, NUL bytes and bad base64 are 400', async () => {
    const before = await stateKey();
    const good = enc(log.body(6, 9));
    const split = good.indexOf(0x0a) + 1;
    const cases: [string, Uint8Array][] = [
      [
        'lone continuation byte',
        Uint8Array.from([...good.subarray(0, split), 0x80, ...good.subarray(split)]),
      ],
      [
        'overlong NUL',
        Uint8Array.from([...good.subarray(0, split), 0xc0, 0x80, ...good.subarray(split)]),
      ],
      [
        'surrogate half (CESU-8)',
        Uint8Array.from([...good.subarray(0, 5), 0xed, 0xa0, 0x80, ...good.subarray(5)]),
      ],
      ['truncated multibyte', Uint8Array.from([...good.subarray(0, good.length - 1), 0xe2])],
      ['NUL in note', enc(log.body(6, 9).replace('example.com', 'example\u0000com'))],
      ['bad base64 in signature', enc(log.body(6, 9).replace(/(— \S+ )\S+/, '$1@@@@'))],
      ['base64 in signature too short', enc(log.body(6, 9).replace(/(— \S+ )\S+/, '$1AAAA'))],
      ['proof line with whitespace', enc(log.body(6, 9).replace('\n', '\n '))],
    ];
    for (const [desc, body] of cases) {
      const r = await post(w.app, body);
      expect(r.statusCode, desc).toBe(400);
    }
    expect(await stateKey()).toBe(before);
  });

  it('huge bodies are 413 without being read; at the limit they are parsed', async () => {
    const before = await stateKey();
    for (const size of [16 * 1024 + 1, 1 << 20]) {
      const r = await post(w.app, new Uint8Array(size).fill(0x41));
      expect(r.statusCode).toBe(413);
    }
    const r = await post(w.app, new Uint8Array(16 * 1024).fill(0x41));
    expect(r.statusCode).toBe(400);
    expect(await stateKey()).toBe(before);
  });

  it('duplicated signature lines', async () => {
    const before = await stateKey();
    const signed = log.note(9);
    const line = signed.slice(signed.lastIndexOf('\n\n') + 2);
    const proof = log.proof(6, 9);
    // More lines than signed-note accepts (100): malformed.
    let r = await post(
      w.app,
      formatAddCheckpointRequest(6, proof, `${log.text(9)}\n${line.repeat(101)}`),
    );
    expect(r.statusCode).toBe(400);
    // A bad line from the trusted key before the good one: the first is verified and fails.
    const parsed = note.parse(signed);
    const sig = parsed.signatures[0]!;
    const badSig = { ...sig, signature: sig.signature.map((x, i) => (i === 5 ? x ^ 4 : x)) };
    const badFirst = note.format({ text: parsed.text, signatures: [badSig, sig] });
    r = await post(w.app, formatAddCheckpointRequest(6, proof, badFirst));
    expect(r.statusCode).toBe(403);
    // The same body with a stale old size: duplicates change nothing, still 409.
    r = await post(
      w.app,
      formatAddCheckpointRequest(3, log.proof(3, 9), `${log.text(9)}\n${line.repeat(50)}`),
    );
    expect(r.statusCode).toBe(409);
    expect(await stateKey()).toBe(before);
    // Exact repeats of a valid line are dropped, as Go's note.Open does: the checkpoint is
    // genuinely signed, so it is cosigned (once), and stored with a single log signature.
    r = await post(
      w.app,
      formatAddCheckpointRequest(6, proof, `${log.text(9)}\n${line.repeat(3)}`),
    );
    expect(r.statusCode).toBe(200);
    expect(r.body.split('\n').filter(Boolean)).toHaveLength(1);
    expect((await w.store.getState(log.origin))!.checkpoint).toBe(signed);
  });

  it('still serves after all of that', async () => {
    const r = await post(w.app, log.body(9, 12));
    expect(r.statusCode).toBe(200);
    expect((await w.store.getState(log.origin))!.size).toBe(12);
  });
});
