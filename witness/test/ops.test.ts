/**
 * Operational behaviour: per-client rate limit (429), bounded in-flight work (503), the path
 * prefix, and logs added by the admin command while the witness runs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@keytrail/server-kit/testing';
import { TestLog, post, witnessFixture } from './helpers.ts';

const log = new TestLog('example.com/ops', 31);
let tdb: TestDatabase;

beforeAll(async () => {
  log.append(10);
  tdb = await createTestDatabase('witness_ops', ['witness']);
});
afterAll(async () => {
  await tdb.drop();
});

describe('operations', () => {
  it('429 with Retry-After once a client exceeds its rate; other clients are not affected', async () => {
    const fx = await witnessFixture(
      'ops',
      [log],
      { rateLimit: { max: 3, timeWindowMs: 60_000 } },
      tdb,
    );
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await post(fx.app, log.body(0, 1))).statusCode);
      expect(statuses.slice(0, 3)).not.toContain(429);
      expect(statuses.slice(3)).toEqual([429, 429]);
      const r = await post(fx.app, log.body(0, 1));
      expect(r.headers['retry-after']).toBeDefined();
      expect(r.json()).toMatchObject({ code: 'ERR_RATE_LIMITED' });
      const other = await fx.app.inject({
        method: 'POST',
        url: '/add-checkpoint',
        remoteAddress: '192.0.2.7',
        payload: log.body(0, 1),
      });
      expect(other.statusCode).not.toBe(429);
      // Health and metrics are not rate-limited.
      for (let i = 0; i < 5; i++) {
        expect((await fx.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      }
    } finally {
      await fx.close();
    }
  });

  it('503 with Retry-After beyond the in-flight bound, without touching the state', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let stalled!: () => void;
    const arrived = new Promise<void>((r) => (stalled = r));
    const fx = await witnessFixture(
      'ops',
      [],
      {
        maxInFlight: 1,
        testingOnlyStallRequest: async () => {
          stalled();
          await gate;
        },
      },
      tdb,
    );
    try {
      const before = (await fx.store.getState(log.origin))!.size;
      const first = post(fx.app, log.body(before, 5));
      await arrived;
      const second = await post(fx.app, log.body(before, 6));
      expect(second.statusCode).toBe(503);
      expect(second.headers['retry-after']).toBe('1');
      release();
      expect((await first).statusCode).toBe(200);
      expect((await fx.store.getState(log.origin))!.size).toBe(5);
    } finally {
      await fx.close();
    }
  });

  it('serves the witness API under a prefix', async () => {
    const fx = await witnessFixture('ops', [], { prefix: '/witness' }, tdb);
    try {
      expect((await post(fx.app, log.body(5, 6))).statusCode).toBe(404);
      expect((await post(fx.app, log.body(5, 6), '/witness/add-checkpoint')).statusCode).toBe(200);
      const ev = await fx.app.inject({ method: 'GET', url: '/witness/evidence' });
      expect(ev.statusCode).toBe(200);
    } finally {
      await fx.close();
    }
  });

  it('a log added while running is followed within a second', async () => {
    let clock = 1_800_000_000_000;
    const late = new TestLog('example.com/late', 32);
    late.append(3);
    const fx = await witnessFixture('ops', [], { now: () => clock }, tdb);
    try {
      expect((await post(fx.app, late.body(0))).statusCode).toBe(404);
      await fx.store.addLog({ origin: late.origin, vkeys: [late.vkey] });
      // Unknown origins re-read the list at most once a second.
      expect((await post(fx.app, late.body(0))).statusCode).toBe(404);
      clock += 1500;
      expect((await post(fx.app, late.body(0))).statusCode).toBe(200);
    } finally {
      await fx.close();
    }
  });
});
