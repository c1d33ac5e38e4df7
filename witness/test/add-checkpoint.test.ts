/**
 * Every status code of C2SP tlog-witness v1.0.0 `add-checkpoint`, including the fork attempts,
 * against a witness on real PostgreSQL.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytes, checkpoint, cosignature, note } from '@keytrail/core';
import { formatAddCheckpointRequest } from '../src/index.ts';
import {
  TestLog,
  TEST_KEY,
  post,
  verifyCosignature,
  witnessFixture,
  type WitnessFixture,
} from './helpers.ts';

const log = new TestLog('example.com/log-a');
// The same log key signing a different history: a fork.
const fork = new TestLog('example.com/log-a', 7, 'forked');
const other = new TestLog('example.com/log-b', 9);

let clock = 1_700_000_000_000;
let w: WitnessFixture;

beforeAll(async () => {
  log.append(16);
  fork.append(16);
  other.append(4);
  w = await witnessFixture('witness_status', [log, other], { now: () => clock });
});
afterAll(async () => {
  await w.close();
});

async function state(origin = log.origin): Promise<{ size: number; root: string }> {
  const s = await w.store.getState(origin);
  return { size: s!.size, root: bytes.toBase64(s!.root) };
}

function originHash(origin: string): string {
  return createHash('sha256').update(origin).digest('hex');
}

describe('add-checkpoint status codes', () => {
  it('404 before the first cosignature on the monitoring endpoint', async () => {
    const r = await w.app.inject({ method: 'GET', url: `/${originHash(log.origin)}/checkpoint` });
    expect(r.statusCode).toBe(404);
    expect(r.json()).toMatchObject({ code: 'ERR_WITNESS_NOT_COSIGNED' });
  });

  it('200: trust on first use from old 0, cosignature verifies with the timestamp', async () => {
    const r = await post(w.app, log.body(0, 4));
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(r.body).toMatch(/^— witness\.test\/w1 [A-Za-z0-9+/]+=*\n$/);
    expect(bytes.fromBase64(r.body.split(' ')[2]!.trim()).length).toBe(76);
    expect(verifyCosignature(r.body, log.text(4), TEST_KEY)).toBe(Math.floor(clock / 1000));
    expect(await state()).toEqual({ size: 4, root: bytes.toBase64(log.tree.root(4)) });
  });

  it('200: a consistent larger checkpoint with a valid proof', async () => {
    clock += 1000;
    const r = await post(w.app, log.body(4, 7));
    expect(r.statusCode).toBe(200);
    expect(verifyCosignature(r.body, log.text(7), TEST_KEY)).toBe(Math.floor(clock / 1000));
    expect((await state()).size).toBe(7);
  });

  it('200: the same checkpoint again is re-signed with a fresh timestamp', async () => {
    clock += 5000;
    const r = await post(w.app, log.body(7, 7));
    expect(r.statusCode).toBe(200);
    expect(verifyCosignature(r.body, log.text(7), TEST_KEY)).toBe(Math.floor(clock / 1000));
    const m = await w.app.inject({ method: 'GET', url: `/${originHash(log.origin)}/checkpoint` });
    expect(m.statusCode).toBe(200);
    expect(m.headers['content-type']).toBe('text/plain; charset=utf-8');
    const verified = cosignature.verifyCheckpoint(m.body, {
      log: [note.parseVerifierKey(log.vkey)],
      witnesses: [cosignature.parseVerifierKey(TEST_KEY.vkey)],
      quorum: 1,
      maxAgeSeconds: 60,
      now: Math.floor(clock / 1000),
    });
    expect(verified.checkpoint.size).toBe(7);
    expect(verified.cosigners[0]!.timestamp).toBe(Math.floor(clock / 1000));
  });

  it('409 text/x.tlog.size with the stored size when old is stale or ahead', async () => {
    for (const old of [0, 4, 6, 8]) {
      const r = await post(w.app, log.body(old, 10));
      expect(r.statusCode, `old ${old}`).toBe(409);
      expect(r.headers['content-type']).toBe('text/x.tlog.size');
      expect(r.body).toBe('7\n');
    }
    expect((await state()).size).toBe(7);
  });

  it('400 when old is larger than the checkpoint size', async () => {
    const body = formatAddCheckpointRequest(9, [], log.note(8));
    const r = await post(w.app, body);
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ code: 'ERR_WITNESS_OLD_SIZE_TOO_LARGE' });
  });

  it('404 for an unknown origin (litewitness says 403; the specification says 404)', async () => {
    const stranger = new TestLog('example.com/unknown', 3);
    stranger.append(2);
    const r = await post(w.app, stranger.body(0));
    expect(r.statusCode).toBe(404);
    expect(r.json()).toMatchObject({ code: 'ERR_WITNESS_UNKNOWN_LOG' });
  });

  it('403 when no trusted key signed, or a trusted key line fails', async () => {
    // Signed by another key under the same name: unknown key ID, so no trusted signature.
    const impostor = new TestLog(log.origin, 99);
    impostor.append(10);
    let r = await post(w.app, impostor.body(7, 10));
    expect(r.statusCode).toBe(403);
    expect(r.json()).toMatchObject({ code: 'ERR_WITNESS_BAD_SIGNATURE' });
    // The trusted key's line with a flipped signature bit.
    const good = log.note(10);
    const parsed = note.parse(good);
    const sig = parsed.signatures[0]!;
    const bad = note.format({
      text: parsed.text,
      signatures: [{ ...sig, signature: sig.signature.map((b, i) => (i === 0 ? b ^ 1 : b)) }],
    });
    r = await post(w.app, formatAddCheckpointRequest(7, log.proof(7, 10), bad));
    expect(r.statusCode).toBe(403);
    // A valid signature next to lines from unknown keys (ignored) still verifies.
    const extra = `${log.note(7)}— someone.else ${bytes.toBase64(new Uint8Array(68).fill(1))}\n`;
    r = await post(w.app, formatAddCheckpointRequest(7, [], extra));
    expect(r.statusCode).toBe(200);
    expect((await state()).size).toBe(7);
  });

  it('422 for a consistency proof that does not verify; evidence is kept', async () => {
    const proof = log.proof(7, 10);
    const tampered = proof.map((h, i) => (i === 1 ? h.map((b, j) => (j === 0 ? b ^ 0x80 : b)) : h));
    let r = await post(w.app, formatAddCheckpointRequest(7, tampered, log.note(10)));
    expect(r.statusCode).toBe(422);
    expect(r.json()).toMatchObject({ code: 'ERR_WITNESS_PROOF_INVALID' });
    r = await post(w.app, formatAddCheckpointRequest(7, [], log.note(10)));
    expect(r.statusCode).toBe(422);
    r = await post(w.app, formatAddCheckpointRequest(7, proof.slice(0, -1), log.note(10)));
    expect(r.statusCode).toBe(422);
    expect((await state()).size).toBe(7);
    const ev = await w.store.listEvidence();
    expect(ev.filter((e) => e.kind === 'consistency_proof_failed')).toHaveLength(1);
  });

  it('422 for a non-empty proof with old 0 or with old = size', async () => {
    let r = await post(w.app, formatAddCheckpointRequest(0, log.proof(4, 7), log.note(7)));
    expect(r.statusCode).toBe(422);
    expect(r.json()).toMatchObject({ code: 'ERR_WITNESS_PROOF_NOT_EMPTY' });
    r = await post(w.app, formatAddCheckpointRequest(7, log.proof(4, 7), log.note(7)));
    expect(r.statusCode).toBe(422);
  });

  it('fork: same size, another root → 409 without the size body, evidence kept', async () => {
    const r = await post(w.app, formatAddCheckpointRequest(7, [], fork.note(7)));
    expect(r.statusCode).toBe(409);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.json()).toMatchObject({ code: 'ERR_WITNESS_ROOT_MISMATCH' });
    expect(await state()).toEqual({ size: 7, root: bytes.toBase64(log.tree.root(7)) });
    const ev = (await w.store.listEvidence()).filter((e) => e.kind === 'same_size_fork');
    expect(ev).toHaveLength(1);
    expect(ev[0]!.storedCheckpoint).toBe(log.note(7));
    expect(ev[0]!.receivedCheckpoint).toBe(fork.note(7));
    // The evidence is self-contained: both notes verify under the log key and disagree.
    const v = [note.parseVerifierKey(log.vkey)];
    const a = checkpoint.parse(note.open(ev[0]!.storedCheckpoint!, v).text);
    const b = checkpoint.parse(note.open(ev[0]!.receivedCheckpoint, v).text);
    expect(a.size).toBe(b.size);
    expect(bytes.equalBytes(a.root, b.root)).toBe(false);
  });

  it('fork: same size with a stale old → 409 with the size, evidence kept once', async () => {
    const r = await post(w.app, formatAddCheckpointRequest(0, [], fork.note(7)));
    expect(r.statusCode).toBe(409);
    expect(r.body).toBe('7\n');
    expect((await w.store.listEvidence()).filter((e) => e.kind === 'same_size_fork')).toHaveLength(
      1,
    );
  });

  it('fork: a smaller inconsistent tree is never cosigned', async () => {
    // With the true old size it is "old > size"; with its own size it is a stale old size.
    let r = await post(w.app, formatAddCheckpointRequest(7, [], fork.note(5)));
    expect(r.statusCode).toBe(400);
    r = await post(w.app, formatAddCheckpointRequest(5, [], fork.note(5)));
    expect(r.statusCode).toBe(409);
    expect(r.body).toBe('7\n');
    r = await post(w.app, formatAddCheckpointRequest(0, [], fork.note(3)));
    expect(r.statusCode).toBe(409);
    // A larger fork with its own (valid, but from the wrong tree) proof: 422.
    r = await post(w.app, formatAddCheckpointRequest(7, fork.proof(7, 12), fork.note(12)));
    expect(r.statusCode).toBe(422);
    expect(await state()).toEqual({ size: 7, root: bytes.toBase64(log.tree.root(7)) });
  });

  it('size 0: empty-root checkpoint re-signed at 0; any other root is 422', async () => {
    const r0 = await post(w.app, other.body(0, 0));
    expect(r0.statusCode).toBe(200);
    verifyCosignature(r0.body, other.text(0), TEST_KEY);
    const bad = note.sign(
      checkpoint.format({
        origin: other.origin,
        size: 0,
        root: other.tree.root(2),
        extensions: [],
      }),
      [other.signer],
    );
    const r = await post(w.app, formatAddCheckpointRequest(0, [], bad));
    expect(r.statusCode).toBe(422);
    expect((await state(other.origin)).size).toBe(0);
  });

  it('400 for malformed bodies, never a 5xx', async () => {
    const good = log.note(10);
    const proof = log.proof(7, 10).map((h) => bytes.toBase64(h));
    const cases: [string, string][] = [
      ['empty', ''],
      ['no blank line', `old 7\n${proof.join('\n')}\n`],
      ['leading zero', `old 07\n${proof.join('\n')}\n\n${good}`],
      ['negative', `old -7\n\n${good}`],
      ['not a number', `old seven\n\n${good}`],
      ['two spaces', `old  7\n\n${good}`],
      ['too large', `old 99999999999999999999\n\n${good}`],
      ['missing old', `${proof.join('\n')}\n\n${good}`],
      ['bad base64', `old 7\n${proof[0]!.slice(0, -2)}!=\n\n${good}`],
      ['short hash', `old 7\n${bytes.toBase64(new Uint8Array(31))}\n\n${good}`],
      ['CRLF', `old 7\r\n${proof.join('\r\n')}\r\n\r\n${good}`],
      ['64 proof lines', `old 7\n${Array(64).fill(proof[0]).join('\n')}\n\n${good}`],
      ['note without signatures', `old 7\n${proof.join('\n')}\n\n${log.text(10)}`],
      ['checkpoint size with leading zero', `old 7\n\n${good.replace('\n10\n', '\n010\n')}`],
      ['control character', `old 7\n\n${good.replace('log-a', 'log\u0001a')}`],
    ];
    for (const [desc, body] of cases) {
      const r = await post(w.app, body);
      expect(r.statusCode, desc).toBe(400);
      expect(r.json().code, desc).toMatch(/^ERR_WITNESS_MALFORMED|ERR_BAD_REQUEST$/);
    }
    expect((await state()).size).toBe(7);
  });

  it('400 for a body that is not UTF-8; any content type is accepted', async () => {
    const body = new TextEncoder().encode(log.body(7, 9));
    const bad = new Uint8Array([...body.slice(0, 8), 0xff, 0xfe, ...body.slice(8)]);
    const r = await post(w.app, bad);
    expect(r.statusCode).toBe(400);
    const ok = await post(w.app, log.body(7, 9), '/add-checkpoint', {
      'content-type': 'application/octet-stream',
    });
    expect(ok.statusCode).toBe(200);
    const none = await post(w.app, log.body(9, 10), '/add-checkpoint', {});
    expect(none.statusCode).toBe(200);
    expect((await state()).size).toBe(10);
  });

  it('413 for a body above 16 KiB', async () => {
    const huge = `old 10\n\n${'x'.repeat(16 * 1024)}`;
    const r = await post(w.app, huge);
    expect(r.statusCode).toBe(413);
    expect((await state()).size).toBe(10);
  });

  it('GET /evidence lists the evidence; GET /<hash>/checkpoint validates its parameter', async () => {
    const r = await w.app.inject({ method: 'GET', url: '/evidence' });
    expect(r.statusCode).toBe(200);
    const list = r.json().evidence as { kind: string; id: number }[];
    expect(list.map((e) => e.kind).sort()).toEqual([
      'consistency_proof_failed',
      'consistency_proof_failed',
      'same_size_fork',
    ]);
    const after = await w.app.inject({ method: 'GET', url: `/evidence?after=${list[0]!.id}` });
    expect(after.json().evidence).toHaveLength(2);
    const bad = await w.app.inject({ method: 'GET', url: `/${'AB'.repeat(32)}/checkpoint` });
    expect(bad.statusCode).toBe(400);
  });

  it('/healthz and /metrics', async () => {
    const h = await w.app.inject({ method: 'GET', url: '/healthz' });
    expect(h.json()).toEqual({ status: 'ok' });
    const m = await w.app.inject({ method: 'GET', url: '/metrics' });
    expect(m.body).toMatch(/keytrail_witness_add_checkpoint_requests_total\{status="200"\} \d+/);
    expect(m.body).toMatch(/keytrail_witness_add_checkpoint_requests_total\{status="409"\} \d+/);
    // Observations, not stored records: the second same-size fork was a duplicate.
    expect(m.body).toMatch(/keytrail_witness_evidence_total\{kind="same_size_fork"\} 2\n/);
  });
});
