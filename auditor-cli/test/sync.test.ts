/**
 * The sync engine against the fixture directory over real HTTP: an honest log verifies,
 * incrementally, and every kind of misbehaviour is found, named, saved as evidence that
 * `verifyEvidence` confirms from the file alone, and leaves the state at the last good epoch.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { bytes, note, prefixTree } from '@keytrail/core';
import { harness, type Harness } from './fixture/harness.ts';
import { StateStore } from '../src/state-store.ts';
import { AuditError } from '../src/errors.ts';
import { parseEvidence, verifyEvidence } from '../src/evidence.ts';
import type { Insert } from './fixture/log.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function state(dir: string) {
  return StateStore.readState(dir);
}

async function auditError(p: Promise<unknown>): Promise<AuditError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof AuditError) return e;
    throw e;
  }
  throw new Error('expected an AuditError');
}

function flip(b: Uint8Array): Uint8Array {
  const c = b.slice();
  c[5] = (c[5] ?? 0) ^ 1;
  return c;
}

describe('sync of an honest log', () => {
  it('replays every epoch and reaches the committed roots', async () => {
    h = await harness(8, 7);
    const r = await h.sync();
    expect(r.size).toBe(9);
    expect(r.newCheckpoint).toBe(true);
    expect(r.epochsReplayed).toBe(9);
    expect(r.insertsReplayed).toBe(56);
    expect(r.totalInserts).toBe(56);
    const last = h.log.epochs[8]?.record.prefixRoot as Uint8Array;
    expect(r.prefixRoot).toBe(bytes.toBase64(last));
    expect(r.cosigners.map((c) => c.name)).toEqual(['witness-1.test', 'witness-2.test']);
    const s = await state(h.dir);
    expect(s.records).toBe(9);
    expect(s.replayed).toBe(9);
    expect(s.checkpointsCount).toBe(1);
  });

  it('is incremental: a second run fetches nothing new, a grown log only the new epochs', async () => {
    h = await harness(4, 3);
    await h.sync();
    const again = await h.sync();
    expect(again.newCheckpoint).toBe(false);
    expect(again.epochsReplayed).toBe(0);
    h.log.grow(3, 4);
    h.server.requests.length = 0;
    const r = await h.sync();
    expect(r.newCheckpoint).toBe(true);
    expect(r.epochsReplayed).toBe(3);
    expect(r.insertsReplayed).toBe(12);
    expect(r.totalInserts).toBe(24);
    expect(h.server.requests).toContain('/v1/log/consistency?from=5&to=8');
    expect(h.server.requests).toContain('/v1/log/leaves?start=5&end=8');
    expect(
      h.server.requests.filter((p) => p.startsWith('/v1/epochs/')).map((p) => p.split('/')[3]),
    ).toEqual(['5', '6', '7']);
    expect((await state(h.dir)).checkpointsCount).toBe(2);
  });

  it('pages through large epochs and skips the request for empty ones', async () => {
    h = await harness(0, 0);
    h.log.seal(h.log.randomInserts(25));
    h.log.seal([]);
    h.log.seal(h.log.randomInserts(7));
    const r = await h.sync({ insertsPerRequest: 10 });
    expect(r.insertsReplayed).toBe(32);
    const pages = h.server.requests.filter((p) => p.startsWith('/v1/epochs/'));
    expect(pages.filter((p) => p.startsWith('/v1/epochs/1/'))).toHaveLength(3);
    expect(pages.filter((p) => p.startsWith('/v1/epochs/2/'))).toHaveLength(0);
    expect(pages.filter((p) => p.startsWith('/v1/epochs/0/'))).toHaveLength(0);
  });

  it('keeps the replayed tree equal to the directory tree across many epochs', async () => {
    h = await harness(40, 9);
    const r = await h.sync({ commitIntervalMs: 0 });
    const core = prefixTree.PrefixTree.build(
      [...h.log.entries.values()]
        .sort((a, b) => Buffer.compare(a.label, b.label))
        .map((e) => ({ key: e.label, commitment: e.commitment })),
    );
    expect(r.prefixRoot).toBe(bytes.toBase64(core.root()));
  });
});

describe('sync with hashing workers', () => {
  it('reaches the same roots, on a first sync, a resumed one and a finding', async () => {
    h = await harness(12, 40);
    const o = { threads: 2, parallelMinInserts: 1 };
    const r = await h.sync(o);
    expect(r.prefixRoot).toBe(bytes.toBase64(h.log.epochs[12]?.record.prefixRoot as Uint8Array));
    h.log.grow(5, 30);
    const r2 = await h.sync(o); // the rebuilt tree gets the pool from the start this time
    expect(r2.epochsReplayed).toBe(5);
    expect(r2.prefixRoot).toBe(bytes.toBase64(h.log.epochs[17]?.record.prefixRoot as Uint8Array));
    const victim = h.log.epochs[3]?.inserts[7] as Insert;
    h.log.seal(
      [...h.log.randomInserts(30), { label: victim.label, commitment: h.log.prng.bytes32() }],
      {
        allowOverwrite: true,
      },
    );
    const f = await h.finding(o);
    expect(f.check).toBe('leaf-rewritten');
    expect((await h.recheck(f)).confirmed).toBe(true);
  });
});

describe('adversarial harness: each misbehaviour is found, named and provable', () => {
  it('a modified insert', async () => {
    h = await harness(6, 5);
    h.server.hooks.inserts = (e, list) =>
      e === 3 ? list.map((x, i) => (i === 2 ? { ...x, commitment: flip(x.commitment) } : x)) : list;
    const f = await h.finding();
    expect(f.check).toBe('inserts-digest-mismatch');
    expect(f.epoch).toBe(3);
    const v = await h.recheck(f);
    expect(v.confirmed).toBe(true);
    expect(v.attributable).toBe(false);
    const s = await state(h.dir);
    expect(s.replayed).toBe(3);
    expect(s.records).toBe(7);
  });

  it('a dropped insert', async () => {
    h = await harness(6, 5);
    h.server.hooks.inserts = (e, list) => (e === 4 ? list.slice(1) : list);
    const f = await h.finding();
    expect(f.check).toBe('insert-count-mismatch');
    expect(f.epoch).toBe(4);
    expect(f.message).toContain('commits to 5 inserts, the directory served 4');
    expect((await h.recheck(f)).confirmed).toBe(true);
  });

  it('an extra insert served beyond the committed count', async () => {
    h = await harness(3, 4);
    const extra = h.log.randomInserts(1)[0] as Insert;
    h.server.hooks.inserts = (e, list) => (e === 2 ? [...list, extra] : list);
    const f = await h.finding();
    expect(f.check).toBe('insert-count-mismatch');
    expect((await h.recheck(f)).confirmed).toBe(true);
  });

  it('a label inserted twice in one epoch', async () => {
    h = await harness(3, 4);
    const batch = h.log.randomInserts(4);
    const dup = { label: (batch[1] as Insert).label, commitment: h.log.prng.bytes32() };
    h.log.seal([...batch, dup]);
    h.log.grow(2, 3);
    const f = await h.finding();
    expect(f.check).toBe('duplicate-label');
    expect(f.epoch).toBe(4);
    const v = await h.recheck(f);
    expect(v.confirmed).toBe(true);
    expect(v.attributable).toBe(true);
  });

  it('a label inserted again in a later epoch with the same commitment', async () => {
    h = await harness(3, 4);
    const old = h.log.epochs[2]?.inserts[1] as Insert;
    h.log.seal([...h.log.randomInserts(3), old]);
    const f = await h.finding();
    expect(f.check).toBe('duplicate-label');
    expect(f.epoch).toBe(4);
    const v = await h.recheck(f);
    expect(v.confirmed).toBe(true);
    expect(v.steps.join('\n')).toContain('was already inserted before epoch 4');
  });

  it('an existing leaf rewritten in a later batch (the akd #495 bypass)', async () => {
    h = await harness(5, 6);
    const victim = h.log.epochs[2]?.inserts[3] as Insert;
    // The directory rewrites the leaf and computes an honest-looking root from the result.
    h.log.seal(
      [...h.log.randomInserts(4), { label: victim.label, commitment: h.log.prng.bytes32() }],
      {
        allowOverwrite: true,
      },
    );
    h.log.grow(2, 2);
    const f = await h.finding();
    expect(f.check).toBe('leaf-rewritten');
    expect(f.epoch).toBe(6);
    expect(f.message).toContain(bytes.toHex(victim.label));
    const v = await h.recheck(f);
    expect(v.confirmed).toBe(true);
    expect(v.attributable).toBe(true);
    expect(v.steps.join('\n')).toContain('already maps to another commitment');
    // The evidence is small: the pruned prior tree, not the whole tree.
    const ev = parseEvidence(await readFile(f.evidenceFile, 'utf8'));
    expect(ev.priorTree).toBeDefined();
    expect(ev.records?.map((r) => r.index)).toEqual([5, 6]);
    expect((await state(h.dir)).replayed).toBe(6);
  });

  it('epochs reordered in the signed log', async () => {
    h = await harness(4, 2);
    h.log.seal(h.log.randomInserts(2), { record: { epoch: 6 } });
    h.log.seal(h.log.randomInserts(2), { record: { epoch: 5 } });
    const f = await h.finding();
    expect(f.check).toBe('epoch-order');
    expect(f.epoch).toBe(5);
    const v = await h.recheck(f);
    expect(v.confirmed).toBe(true);
    expect(v.attributable).toBe(true);
    // Nothing of the bad checkpoint was accepted.
    expect((await state(h.dir)).records).toBe(0);
  });

  it('epochs reordered only in what is served', async () => {
    h = await harness(6, 2);
    h.server.hooks.leaves = (_s, _e, leaves) => {
      const out = [...leaves];
      [out[2], out[3]] = [out[3] as Uint8Array, out[2] as Uint8Array];
      return out;
    };
    const f = await h.finding();
    expect(f.check).toBe('log-leaves-mismatch');
    const v = await h.recheck(f);
    expect(v.confirmed).toBe(true);
    expect(v.attributable).toBe(false);
  });

  it('a wrong prefix root', async () => {
    h = await harness(3, 4);
    h.log.seal(h.log.randomInserts(4), { record: { prefixRoot: h.log.prng.bytes32() } });
    const f = await h.finding();
    expect(f.check).toBe('prefix-root-mismatch');
    expect(f.epoch).toBe(4);
    const v = await h.recheck(f);
    expect(v.confirmed).toBe(true);
    expect(v.attributable).toBe(true);
  });

  it('a wrong prefix root in epoch 0 (replayed from the empty tree)', async () => {
    h = await harness(2, 2, { epoch0: { record: { prefixRoot: new Uint8Array(32).fill(1) } } });
    const f = await h.finding();
    expect(f.check).toBe('prefix-root-mismatch');
    expect(f.epoch).toBe(0);
    const v = await h.recheck(f);
    expect(v.confirmed).toBe(true);
    expect(v.steps.join('\n')).toContain('epoch 0 starts from the empty tree');
  });

  it('two signed checkpoints of the same size with different roots (a fork)', async () => {
    h = await harness(5, 3);
    await h.sync();
    const forked = h.log.checkpoint(6, { root: h.log.prng.bytes32() });
    h.server.hooks.checkpoint = () => forked;
    const f = await h.finding();
    expect(f.check).toBe('checkpoint-fork');
    expect(f.epoch).toBeNull();
    const ev = parseEvidence(await readFile(f.evidenceFile, 'utf8'));
    expect(ev.notes).toHaveLength(2);
    const v = verifyEvidence(ev);
    expect(v.confirmed).toBe(true);
    expect(v.attributable).toBe(true);
    // Re-checkable by anyone with the directory key pinned…
    expect(verifyEvidence(ev, { logKey: h.log.trust().logKey }).confirmed).toBe(true);
    // …and worthless under another key.
    const other = note.formatVerifierKey(h.log.origin, new Uint8Array(32).fill(3));
    expect(verifyEvidence(ev, { logKey: other }).confirmed).toBe(false);
  });

  it('a signed checkpoint of a smaller size that is not a prefix (a fork across sizes)', async () => {
    for (const small of [3, 4]) {
      // 4 is a power of two: the proof omits the old root, the evidence carries it.
      h = await harness(8, 2);
      await h.sync();
      const forked = h.log.checkpoint(small, { root: h.log.prng.bytes32() });
      h.server.hooks.checkpoint = () => forked;
      const f = await h.finding();
      expect(f.check).toBe('checkpoint-fork');
      const v = await h.recheck(f);
      expect(v.confirmed).toBe(true);
      expect(v.steps.join('\n')).toContain(`fixes the size-${small} root`);
      await h.close();
      h = undefined;
    }
  });

  it('a rolled-back checkpoint', async () => {
    h = await harness(6, 2);
    await h.sync();
    h.server.servedSize = 4;
    const f = await h.finding();
    expect(f.check).toBe('checkpoint-rollback');
    const v = await h.recheck(f);
    expect(v.confirmed).toBe(true);
    expect((await state(h.dir)).records).toBe(7);
  });

  it('missing witness cosignatures', async () => {
    h = await harness(3, 2);
    h.server.hooks.checkpoint = () => h?.log.checkpoint(4, { witnesses: [1] }) as string;
    const f = await h.finding();
    expect(f.check).toBe('witness-quorum');
    expect((await h.recheck(f)).confirmed).toBe(true);
    expect((await state(h.dir)).records).toBe(0);
  });

  it('an invalid witness cosignature', async () => {
    h = await harness(3, 2);
    const good = h.log.checkpoint(4);
    const lines = good.split('\n');
    const last = lines[lines.length - 2] as string;
    const sig = last.split(' ');
    const raw = bytes.fromBase64(sig[2] as string);
    raw[40] = (raw[40] ?? 0) ^ 0x10;
    lines[lines.length - 2] = `${sig[0]} ${sig[1]} ${bytes.toBase64(raw)}`;
    h.server.hooks.checkpoint = () => lines.join('\n');
    const f = await h.finding();
    expect(f.check).toBe('witness-cosignature-invalid');
    expect(f.message).toContain('ERR_NOTE_INVALID_SIGNATURE');
    expect((await h.recheck(f)).confirmed).toBe(true);
  });

  it('a checkpoint not signed by the directory key', async () => {
    h = await harness(3, 2);
    const good = h.log.checkpoint(4);
    h.server.hooks.checkpoint = () => good.replace(/\n— keytrail\.test\/directory [^\n]*\n/, '\n');
    const f = await h.finding();
    expect(f.check).toBe('checkpoint-signature');
    expect((await h.recheck(f)).confirmed).toBe(true);
  });

  it('stale witness cosignatures', async () => {
    h = await harness(3, 2);
    const f = await h.finding({ now: () => (h?.log.now ?? 0) + 86_400 * 2 });
    expect(f.check).toBe('checkpoint-stale');
    expect((await h.recheck(f)).confirmed).toBe(true);
  });

  it('a timestamp going backwards', async () => {
    h = await harness(4, 2);
    const prev = h.log.epochs[4]?.record.timestampMs as number;
    h.log.seal(h.log.randomInserts(2), { record: { timestampMs: prev - 5 } });
    const f = await h.finding();
    expect(f.check).toBe('timestamp-backwards');
    expect(f.epoch).toBe(5);
    const v = await h.recheck(f);
    expect(v.confirmed).toBe(true);
    expect(v.attributable).toBe(true);
  });

  it("a witness's cosignature timestamp going backwards", async () => {
    h = await harness(3, 2);
    await h.sync();
    h.log.grow(1, 2);
    h.log.now -= 100;
    const f = await h.finding();
    expect(f.check).toBe('cosignature-timestamp-backwards');
    expect((await h.recheck(f)).confirmed).toBe(true);
  });

  it('an invalid consistency proof', async () => {
    h = await harness(3, 2);
    await h.sync();
    h.log.grow(2, 2);
    h.server.hooks.consistency = (_f, _t, proof) => proof.map((p, i) => (i === 0 ? flip(p) : p));
    const f = await h.finding();
    expect(f.check).toBe('log-consistency');
    expect((await h.recheck(f)).confirmed).toBe(true);
  });

  it('a record that does not decode, in the signed log', async () => {
    h = await harness(3, 2);
    h.log.appendRawLeaf(Uint8Array.of(2, 0, 0));
    const f = await h.finding();
    expect(f.check).toBe('epoch-record-malformed');
    expect(f.epoch).toBe(4);
    expect((await h.recheck(f)).confirmed).toBe(true);
  });

  it('inserts served out of order', async () => {
    h = await harness(2, 2);
    const batch = h.log.randomInserts(5);
    const sorted = [...batch].sort((a, b) => Buffer.compare(a.label, b.label));
    const served = [sorted[1], sorted[0], ...sorted.slice(2)] as Insert[];
    h.log.seal(batch);
    h.server.hooks.inserts = (e, list) => (e === 3 ? served : list);
    const f = await h.finding();
    expect(f.check).toBe('inserts-unsorted');
    expect(f.epoch).toBe(3);
    const v = await h.recheck(f);
    expect(v.confirmed).toBe(true);
    expect(v.attributable).toBe(false);
  });

  it('a record whose digest commits to an unsorted order', async () => {
    h = await harness(2, 2);
    const batch = h.log.randomInserts(5);
    const sorted = [...batch].sort((a, b) => Buffer.compare(a.label, b.label));
    const served = [sorted[1], sorted[0], ...sorted.slice(2)] as Insert[];
    const digest = createHash('sha256');
    for (const i of served) digest.update(i.label).update(i.commitment);
    h.log.seal(batch, { record: { insertsDigest: new Uint8Array(digest.digest()) } });
    h.server.hooks.inserts = (e, list) => (e === 3 ? served : list);
    const f = await h.finding();
    expect(f.check).toBe('inserts-digest-mismatch');
    expect((await h.recheck(f)).confirmed).toBe(true);
  });
});

describe('evidence files', () => {
  it('are refuted when tampered with', async () => {
    h = await harness(3, 4);
    h.log.seal(h.log.randomInserts(4), { record: { prefixRoot: h.log.prng.bytes32() } });
    const f = await h.finding();
    const ev = JSON.parse(await readFile(f.evidenceFile, 'utf8')) as Record<string, unknown>;
    // Claim a different check than the evidence shows.
    await writeFile(f.evidenceFile, JSON.stringify({ ...ev, check: 'leaf-rewritten' }));
    const v = await h.recheck(f);
    expect(v.confirmed).toBe(false);
    // Change the inserts: they no longer match the signed digest.
    const packed = bytes.fromBase64(ev.inserts as string);
    packed[40] = (packed[40] ?? 0) ^ 1;
    await writeFile(f.evidenceFile, JSON.stringify({ ...ev, inserts: bytes.toBase64(packed) }));
    expect((await h.recheck(f)).confirmed).toBe(false);
  });
});

describe('downloads and interruptions', () => {
  it('a truncated download is an error that leaves the state untouched, and a retry succeeds', async () => {
    h = await harness(4, 3);
    let cut = true;
    h.server.hooks.raw = (_req, res, url) => {
      if (!cut || url.pathname !== '/v1/log/leaves') return false;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '5000' });
      res.write('{"leaves":["AQAAAAAAAA', () => setTimeout(() => res.destroy(), 20));
      return true;
    };
    const e = await auditError(h.sync());
    expect(e.code).toBe('ERR_AUDIT_DOWNLOAD_TRUNCATED');
    expect((await state(h.dir)).records).toBe(0);
    cut = false;
    const r = await h.sync();
    expect(r.totalEpochs).toBe(5);
  });

  it('a malformed download is named', async () => {
    h = await harness(2, 3);
    const cases: [string, string][] = [
      ['/v1/log/leaves', '{"leaves": 7}'],
      ['/v1/log/leaves', '{"leaves": ["AQ=="]'],
      [
        '/v1/epochs/1/inserts',
        '{"inserts": [{"label": "AAAA", "commitment": "AAAA"}], "next": null}',
      ],
      // base64 with non-zero trailing bits: not the canonical encoding
      [
        '/v1/epochs/1/inserts',
        `{"inserts": [{"label": "${'A'.repeat(42)}B=", "commitment": "${'A'.repeat(43)}="}], "next": null}`,
      ],
    ];
    for (const [path, body] of cases) {
      h.server.hooks.raw = (_req, res, url) => {
        if (url.pathname !== path) return false;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(body);
        return true;
      };
      const e = await auditError(h.sync());
      expect(e.code).toBe('ERR_AUDIT_DOWNLOAD_MALFORMED');
    }
  });

  it('an interrupted sync resumes where it stopped and ends in the same state', async () => {
    h = await harness(30, 4);
    const controller = new AbortController();
    const base = h.source();
    let seen = 0;
    const source = {
      ...base,
      name: base.name,
      checkpoint: () => base.checkpoint(),
      consistency: (a: number, b: number) => base.consistency(a, b),
      leaves: (a: number, b: number) => base.leaves(a, b),
      inserts: (e: number, after: Uint8Array | null, limit: number) => {
        if (++seen === 12) controller.abort();
        return base.inserts(e, after, limit);
      },
    };
    const e = await auditError(
      h.sync({ source, signal: controller.signal, commitIntervalMs: 10_000 }),
    );
    expect(e.code).toBe('ERR_AUDIT_INTERRUPTED');
    const mid = await state(h.dir);
    expect(mid.replayed).toBeGreaterThan(0);
    expect(mid.replayed).toBeLessThan(31);
    expect(mid.leaves).toBe(mid.replayed === 0 ? 0 : (mid.replayed - 1) * 4);
    const r = await h.sync();
    expect(r.totalEpochs).toBe(31);
    expect(r.epochsReplayed).toBe(31 - mid.replayed);
    expect(r.prefixRoot).toBe(bytes.toBase64(h.log.epochs[30]?.record.prefixRoot as Uint8Array));
  });

  it('a network failure mid-replay keeps the progress committed so far', async () => {
    h = await harness(10, 3);
    let fail = true;
    h.server.hooks.raw = (_req, res, url) => {
      if (!fail || url.pathname !== '/v1/epochs/7/inserts') return false;
      res.destroy();
      return true;
    };
    const e = await auditError(h.sync({ commitIntervalMs: 0 }));
    expect(['ERR_AUDIT_NETWORK', 'ERR_AUDIT_DOWNLOAD_TRUNCATED']).toContain(e.code);
    expect((await state(h.dir)).replayed).toBe(7);
    fail = false;
    const r = await h.sync();
    expect(r.epochsReplayed).toBe(4);
  });

  it('refuses a state directory whose stored inserts do not rebuild the committed root', async () => {
    h = await harness(3, 3);
    await h.sync();
    const path = `${h.dir}/leaves.bin`;
    const data = await readFile(path);
    data[70] = (data[70] ?? 0) ^ 1;
    await writeFile(path, data);
    const e = await auditError(h.sync());
    expect(e.code).toBe('ERR_AUDIT_STATE_CORRUPT');
  });

  it('refuses a second concurrent sync on the same state directory', async () => {
    h = await harness(2, 2);
    const store = await StateStore.open(h.dir);
    try {
      const e = await auditError(StateStore.open(h.dir));
      expect(e.code).toBe('ERR_AUDIT_STATE_LOCKED');
    } finally {
      await store.close();
    }
  });
});
