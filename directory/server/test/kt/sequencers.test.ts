/**
 * Exactly one sequencer: two processes (two connection pools) on one database; one holds the
 * lock, the other waits and takes over when the first stops. A forced split brain (both
 * skipping the lock, one stalled inside its epoch transaction) still writes no epoch twice:
 * the compare-and-swap of `published_epoch` decides, and the loser reloads.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { openPg, installNodeCrypto, type Db } from '@keytrail/server-kit';
import { createTestDatabase, type TestDatabase } from '@keytrail/server-kit/testing';
import { Directory } from '../../src/kt/directory.ts';
import { buildApp } from '../../src/app.ts';
import type { Logger } from '../../src/kt/sequencer.ts';
import {
  ADMIN,
  createAccount,
  publishAdmin,
  newDevice,
  deviceEntry,
  clientFor,
} from './helpers.ts';
import type { FastifyInstance } from 'fastify';

let tdb: TestDatabase;
const extra: Db[] = [];
beforeAll(async () => {
  installNodeCrypto();
  tdb = await createTestDatabase('kt_seq', ['directory']);
});
afterAll(async () => {
  for (const db of extra) await db.close();
  await tdb.drop();
});

async function node(
  opts: Partial<Parameters<typeof Directory.open>[0]> = {},
): Promise<{ dir: Directory; app: FastifyInstance }> {
  const db = openPg(tdb.url, { max: 5 });
  extra.push(db);
  const dir = await Directory.open({ db, adminToken: ADMIN, epochMs: 20, vrfWorkers: 0, ...opts });
  return { dir, app: await buildApp({ directory: dir }) };
}

async function epochsAreClean(): Promise<number> {
  const r = await tdb.db.query<{ epoch: number }>('SELECT epoch FROM kt_epochs ORDER BY epoch');
  r.rows.forEach((row, i) => {
    expect(row.epoch).toBe(i);
  });
  const c = await tdb.db.query<{ size: number }>('SELECT size FROM kt_checkpoints ORDER BY size');
  expect(c.rows.map((x) => x.size)).toEqual(r.rows.map((x) => x.epoch + 1));
  return r.rows.length;
}

describe('two sequencers', () => {
  it('one wins, the other takes over when it stops; no epoch is written twice', async () => {
    const a = await node();
    const b = await node();
    a.dir.start();
    await a.dir.waitForEpoch(0);
    b.dir.start();
    await new Promise((r) => setTimeout(r, 300));
    expect(a.dir.sequencer?.isLeader).toBe(true);
    expect(b.dir.sequencer?.isLeader).toBe(false);

    const ref = { tenant: 'acme', account: 'carol' };
    await createAccount(a.app, ref);
    let last = 0;
    for (let i = 0; i < 6; i++) {
      const via = i % 2 === 0 ? a.app : b.app;
      last = (await publishAdmin(via, ref, [deviceEntry(newDevice(`d${i}`), 'admin')])).epoch;
    }
    await a.dir.waitForEpoch(last);
    await b.dir.waitForEpoch(last);
    expect((await clientFor({ app: b.app, dir: b.dir } as never).lookup(ref)).version).toBe(5);

    await a.dir.close();
    await a.app.close();
    const deadline = Date.now() + 5000;
    while (!b.dir.sequencer?.isLeader && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(b.dir.sequencer?.isLeader).toBe(true);
    const after = (await publishAdmin(b.app, ref, [deviceEntry(newDevice('late'), 'admin')])).epoch;
    await b.dir.waitForEpoch(after);
    expect((await clientFor({ app: b.app, dir: b.dir } as never).lookup(ref)).version).toBe(6);
    await epochsAreClean();
    await b.dir.close();
    await b.app.close();
  });

  it('a read replica (no sequencer) follows the released epochs and serves verified lookups', async () => {
    const writer = await node();
    const reader = await node({ sequencer: false });
    writer.dir.start();
    reader.dir.start();
    const ref = { tenant: 'acme', account: 'ivy' };
    await createAccount(writer.app, ref);
    const r = await publishAdmin(writer.app, ref, [deviceEntry(newDevice('i'), 'admin')]);
    await writer.dir.waitForEpoch(r.epoch);
    const deadline = Date.now() + 5000;
    while ((reader.dir.state.snapshot?.epoch ?? -1) < r.epoch && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 50));
    }
    expect(
      (await clientFor({ app: reader.app, dir: reader.dir } as never).lookup(ref)).version,
    ).toBe(0);
    for (const x of [writer, reader]) {
      await x.dir.close();
      await x.app.close();
    }
  });

  it('a forced split brain loses the compare-and-swap and publishes nothing twice', async () => {
    const lost: string[] = [];
    const logger: Logger = {
      info: () => undefined,
      warn: (o) => {
        const name = (o as { err?: Error }).err?.name;
        if (name) lost.push(name);
      },
      error: () => undefined,
    };
    // Each split-brain sequencer stalls inside its first epoch transaction (after its
    // compare-and-swap), so the other one is sure to try the same epoch meanwhile.
    let stalls = 0;
    const stall = {
      skipLock: true,
      beforeWrite: async (): Promise<void> => {
        if (stalls < 4) {
          stalls++;
          await new Promise((r) => setTimeout(r, 300));
        }
      },
    };
    const a = await node({ logger, testing: stall });
    const b = await node({ logger, testing: stall });
    a.dir.start();
    b.dir.start();
    const ref = { tenant: 'acme', account: 'dave' };
    await createAccount(a.app, ref);
    let last = 0;
    for (let i = 0; i < 10; i++) {
      last = (
        await publishAdmin(i % 2 ? a.app : b.app, ref, [deviceEntry(newDevice(`d${i}`), 'admin')])
      ).epoch;
      await new Promise((r) => setTimeout(r, 30));
    }
    await a.dir.waitForEpoch(last, 20_000);
    await b.dir.waitForEpoch(last, 20_000);
    expect(stalls).toBeGreaterThan(0);
    expect(lost).toContain('LostLeadershipError');
    await a.dir.close();
    await b.dir.close();
    const n = await epochsAreClean();
    expect(n).toBeGreaterThan(1);
    // Every published version appears exactly once, in one epoch.
    const v = await tdb.db.query<{ version: number; epoch: number }>(
      "SELECT version, epoch FROM kt_versions WHERE account_id = 'dave' AND label IS NOT NULL ORDER BY version",
    );
    expect(v.rows.map((x) => x.version)).toEqual([...Array(10).keys()]);
    // Both views verify against the same log.
    for (const x of [a, b]) {
      expect((await clientFor({ app: x.app, dir: x.dir } as never).lookup(ref)).version).toBe(9);
      await x.app.close();
    }
  });
});
