/**
 * The directory's witness collector against three real witnesses (`@keytrail/witness` on
 * loopback, each with its own PostgreSQL database) and quorum 2 of 3: all up, one down, all
 * down (clients with a maximum age reject the old checkpoint), and witnesses coming back and
 * catching up. Cosignatures are checked the way clients check them, with
 * `cosignature.verifyCheckpoint`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosignature, note, KtError } from '@keytrail/core';
import { createTestDatabase, type TestDatabase } from '@keytrail/server-kit/testing';
import { Registry } from 'prom-client';
import { WitnessCollector } from '../../src/witnessing/collector.ts';
import { parseWitnessPolicy } from '../../src/witnessing/policy.ts';
import { PgWitnessingStore } from '../../src/witnessing/store.ts';
import { DirLog, LiveWitness, eventually } from './helpers.ts';

const log = new DirLog();
let witnesses: LiveWitness[];
let tdb: TestDatabase;
let collector: WitnessCollector;
const late: { size: number; note: string }[] = [];
const MAX_AGE = 600;

function policyText(ws: readonly LiveWitness[], k = 2): string {
  return `log ${log.vkey}\n${ws.map((w) => w.policyLine).join('\n')}\ngroup all ${String(k)} ${ws.map((w) => w.name).join(' ')}\nquorum all\n`;
}

function verify(
  noteText: string,
  now = Math.floor(Date.now() / 1000),
): ReturnType<typeof cosignature.verifyCheckpoint> {
  return cosignature.verifyCheckpoint(noteText, {
    log: [note.parseVerifierKey(log.vkey)],
    witnesses: witnesses.map((w) => cosignature.parseVerifierKey(w.key.vkey)),
    quorum: 2,
    maxAgeSeconds: MAX_AGE,
    now,
  });
}

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof KtError ? err.code : String(err);
  }
  return undefined;
}

function cosigners(noteText: string): string[] {
  return note
    .parse(noteText)
    .signatures.map((s) => s.name)
    .filter((n) => n !== log.origin)
    .sort();
}

beforeAll(async () => {
  witnesses = await Promise.all(
    ['w1', 'w2', 'w3'].map((name, i) => LiveWitness.create(name, 0x50 + i, [log])),
  );
  tdb = await createTestDatabase('witnessing_collector', ['directory', 'witnessing']);
  collector = await WitnessCollector.create({
    policy: parseWitnessPolicy(policyText(witnesses)),
    store: new PgWitnessingStore(tdb.db),
    registry: new Registry(),
    transport: { timeoutMs: 500, attempts: 2, backoffMs: 10 },
    retryMinMs: 50,
    retryMaxMs: 200,
    deadlineMs: 3000,
  });
  collector.setLatePublisher(async (size, noteText) => {
    late.push({ size, note: noteText });
    await Promise.resolve();
  });
});
afterAll(async () => {
  await collector.close();
  await Promise.all(witnesses.map((w) => w.drop()));
  await tdb.drop();
});

describe('witness collector, three witnesses, quorum 2', () => {
  let lastGood = '';

  it('all up: publishes with a quorum; the third cosignature follows as a late update', async () => {
    log.append(1);
    const published = await collector.cosign(log.request());
    const v = verify(published);
    expect(v.checkpoint.size).toBe(1);
    expect(v.cosigners.length).toBeGreaterThanOrEqual(2);
    await eventually(
      () =>
        late.some((l) => l.size === 1 && cosigners(l.note).length === 3) ||
        cosigners(published).length === 3,
    );
    for (const w of witnesses) expect(await w.size(log.origin)).toBe(1);
    const stored = await new PgWitnessingStore(tdb.db).cosignatures(1);
    expect(stored).toHaveLength(3);
    lastGood = published;
  });

  it('the next checkpoint goes with a consistency proof from each witness size', async () => {
    log.append(4);
    const published = await collector.cosign(log.request());
    expect(verify(published).checkpoint.size).toBe(5);
    await eventually(async () =>
      (await Promise.all(witnesses.map((w) => w.size(log.origin)))).every((s) => s === 5),
    );
    lastGood = published;
  });

  it('one witness down: still publishes with the other two', async () => {
    await witnesses[2]!.stop();
    log.append(2);
    const started = Date.now();
    const published = await collector.cosign(log.request());
    expect(Date.now() - started).toBeLessThan(2000);
    expect(cosigners(published)).toEqual(['w1.witness.test', 'w2.witness.test']);
    expect(verify(published).checkpoint.size).toBe(7);
    lastGood = published;
    // The collector returns on quorum; w3's refused connection may be recorded a moment later.
    await eventually(
      () => collector.status().find((s) => s.name === 'w3')?.lastFailure === 'network',
    );
    expect(collector.status().find((s) => s.name === 'w3')?.size).toBe(5);
  });

  it('all down: the checkpoint goes out without a quorum, and the old one ages out', async () => {
    await witnesses[0]!.stop();
    await witnesses[1]!.stop();
    log.append(3);
    const published = await collector.cosign(log.request());
    expect(cosigners(published)).toEqual([]);
    // Clients refuse the new checkpoint (no quorum)…
    expect(errorCode(() => verify(published))).toBe('ERR_COSIGNATURE_QUORUM');
    // …and the last cosigned one is fine now, but not once it is older than the maximum age.
    expect(verify(lastGood).checkpoint.size).toBe(7);
    const later = Math.floor(Date.now() / 1000) + MAX_AGE + 1;
    expect(errorCode(() => verify(lastGood, later))).toBe('ERR_COSIGNATURE_STALE');
    const metrics = await collector.registry.metrics();
    expect(metrics).toMatch(/keytrail_witnessing_rounds_total\{result="partial"\} 1/);
    expect(metrics).toMatch(
      /keytrail_witnessing_failures_total\{witness="w1",reason="network"\} \d+/,
    );
    expect(metrics).toMatch(/keytrail_witnessing_lag\{witness="w3"\} 5/);
  });

  it('witnesses that come back catch up on the newest checkpoint without a new one', async () => {
    late.length = 0;
    await witnesses[0]!.start();
    await witnesses[1]!.start();
    // Background retries send checkpoint 10 with proofs from the sizes the witnesses hold (7).
    await eventually(() => late.some((l) => l.size === 10 && cosigners(l.note).length >= 2));
    const caughtUp = late.find((l) => l.size === 10 && cosigners(l.note).length >= 2)!;
    expect(verify(caughtUp.note).checkpoint.size).toBe(10);
    expect(await witnesses[0]!.size(log.origin)).toBe(10);
  });

  it('the witness down longest catches up from its own size (5 → 12)', async () => {
    await witnesses[2]!.start();
    log.append(2);
    const published = await collector.cosign(log.request());
    expect(verify(published).checkpoint.size).toBe(12);
    await eventually(async () =>
      /keytrail_witnessing_lag\{witness="w3"\} 0/.test(await collector.registry.metrics()),
    );
    expect(collector.status()[2]!.size).toBe(12);
    expect(await witnesses[2]!.size(log.origin)).toBe(12);
  });

  it('a collector without stored sizes learns them from 409 text/x.tlog.size', async () => {
    const fresh = await WitnessCollector.create({
      policy: parseWitnessPolicy(policyText(witnesses)),
      transport: { timeoutMs: 500, attempts: 2 },
      deadlineMs: 3000,
    });
    try {
      log.append(1);
      const published = await fresh.cosign(log.request());
      expect(verify(published).checkpoint.size).toBe(13);
      // Started at old 0, was told 12, resent with the 12 → 13 proof.
      await eventually(() => fresh.status().every((s) => s.size === 13));
    } finally {
      await fresh.close();
    }
  });

  it('a restarted collector starts from the stored sizes (the fresh one stored nothing)', async () => {
    const again = await WitnessCollector.create({
      policy: parseWitnessPolicy(policyText(witnesses)),
      store: new PgWitnessingStore(tdb.db),
    });
    try {
      expect(again.status().map((s) => s.size)).toEqual([12, 12, 12]);
      log.append(1);
      expect(verify(await again.cosign(log.request())).checkpoint.size).toBe(14);
    } finally {
      await again.close();
    }
  });
});
