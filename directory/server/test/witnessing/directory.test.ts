/**
 * The real directory (sequencer, epochs, `/v1/checkpoint`) wired to the witness collector as
 * `witnessing/wiring.ts` describes, with three real witnesses and quorum 2, checked by the
 * directory client (`@keytrail/client`) pinning the witnesses, the quorum and a maximum age.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { note } from '@keytrail/core';
import { DirectoryClient, ClientError } from '@keytrail/client';
import { createTestDatabase, type TestDatabase } from '@keytrail/server-kit/testing';
import { migrate } from '@keytrail/server-kit';
import type { FastifyInstance } from 'fastify';
import { Directory } from '../../src/kt/directory.ts';
import { buildApp } from '../../src/app.ts';
import { WitnessCollector } from '../../src/witnessing/collector.ts';
import { parseWitnessPolicy } from '../../src/witnessing/policy.ts';
import { PgWitnessingStore } from '../../src/witnessing/store.ts';
import { attachLatePublisher, witnessConfig } from '../../src/witnessing/wiring.ts';
import { injectFetch } from '../kt/helpers.ts';
import { LiveWitness, eventually } from './helpers.ts';

const MAX_AGE_MS = 300_000;
let tdb: TestDatabase;
let dir: Directory;
let app: FastifyInstance;
let collector: WitnessCollector;
let witnesses: LiveWitness[];
let clock = Date.now();

function cosigners(text: string, origin: string): number {
  return note.parse(text).signatures.filter((s) => s.name !== origin).length;
}

async function published(): Promise<string> {
  return (await app.inject({ method: 'GET', url: '/v1/checkpoint' })).body;
}

function client(): DirectoryClient {
  return new DirectoryClient({
    baseUrl: 'http://directory.test',
    trust: {
      logKey: dir.identity.logKey,
      vrfPublicKey: dir.identity.vrfPublicKey,
      witnesses: witnesses.map((w) => w.key.vkey),
      quorum: 2,
      maxCheckpointAgeMs: MAX_AGE_MS,
    },
    fetch: injectFetch(app),
    now: () => clock,
  });
}

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return err instanceof ClientError ? err.code : String(err);
  }
  return undefined;
}

beforeAll(async () => {
  tdb = await createTestDatabase('witnessing_directory', ['directory']);
  await migrate(tdb.db, 'witnessing');
  // First start fixes the directory's origin and log key; the witnesses are told about them.
  const first = await Directory.open({ db: tdb.db, sequencer: false, vrfWorkers: 0 });
  const logLine = { origin: first.identity.origin, vkey: first.identity.logKey };
  await first.close();
  witnesses = await Promise.all(
    ['d1', 'd2', 'd3'].map((n, i) => LiveWitness.create(n, 0x80 + i, [logLine])),
  );
  collector = await WitnessCollector.create({
    policy: parseWitnessPolicy(
      `${witnesses.map((w) => w.policyLine).join('\n')}\ngroup q 2 d1 d2 d3\nquorum q\n`,
    ),
    store: new PgWitnessingStore(tdb.db),
    transport: { timeoutMs: 500, attempts: 2, backoffMs: 10 },
    retryMinMs: 50,
    retryMaxMs: 200,
    deadlineMs: 2000,
  });
  dir = await Directory.open({
    db: tdb.db,
    cosigner: collector,
    epochMs: 30,
    epochIdleMs: 150,
    vrfWorkers: 0,
  });
  attachLatePublisher(collector, dir.store, dir.state);
  dir.start();
  app = await buildApp({ directory: dir });
  await dir.waitForEpoch(1);
});
afterAll(async () => {
  await app.close();
  await dir.close();
  await collector.close();
  await Promise.all(witnesses.map((w) => w.drop()));
  await tdb.drop();
});

describe('directory with three witnesses, quorum 2', () => {
  it('publishes cosigned checkpoints that the client accepts', async () => {
    await eventually(async () => cosigners(await published(), dir.identity.origin) >= 2);
    const c = client();
    clock = Date.now();
    const state = await c.acceptCheckpoint(await published());
    expect(state.size).toBeGreaterThanOrEqual(2);
    expect(witnessConfig(collector.policy)).toMatchObject({ quorum: 2 });
  });

  it('one witness down: still published with a quorum', async () => {
    await witnesses[0]!.stop();
    const before = dir.state.epoch;
    await dir.waitForEpoch(before + 2);
    const text = await published();
    expect(cosigners(text, dir.identity.origin)).toBeGreaterThanOrEqual(2);
    clock = Date.now();
    await client().acceptCheckpoint(text);
  });

  it('all down: new checkpoints lack the quorum, and the last good one ages out', async () => {
    const good = await published();
    await witnesses[1]!.stop();
    await witnesses[2]!.stop();
    const before = dir.state.epoch;
    await dir.waitForEpoch(before + 2);
    const bare = await published();
    expect(cosigners(bare, dir.identity.origin)).toBe(0);
    clock = Date.now();
    expect(await code(client().acceptCheckpoint(bare))).toBe('ERR_CHECKPOINT_QUORUM');
    clock = Date.now() + MAX_AGE_MS + 5000;
    expect(await code(client().acceptCheckpoint(good))).toBe('ERR_CHECKPOINT_STALE');
  });

  it('witnesses that come back catch up; the client accepts again, consistently', async () => {
    clock = Date.now();
    const c = client();
    for (const w of witnesses) await w.start();
    await eventually(async () => cosigners(await published(), dir.identity.origin) >= 2);
    const first = await c.acceptCheckpoint(await published());
    const before = dir.state.epoch;
    await dir.waitForEpoch(before + 2);
    await eventually(async () => cosigners(await published(), dir.identity.origin) === 3);
    const second = await c.acceptCheckpoint(await published());
    expect(second.size).toBeGreaterThan(first.size);
    const sizes = await Promise.all(witnesses.map((w) => w.size(dir.identity.origin)));
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(first.size);
  });
});
