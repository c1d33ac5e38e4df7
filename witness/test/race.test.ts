/**
 * Concurrency: the check-then-store of `add-checkpoint` is atomic (C2SP tlog-witness v1.0.0,
 * the rollback race at the end of the section). A test-only hook stalls requests after their
 * checks and before the compare-and-swap (torchwood `testingOnlyStallRequest`), so that many
 * requests that each passed every check race on the database. Two witness apps with separate
 * connection pools share one database, as two processes would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytes, checkpoint, note } from '@keytrail/core';
import { openPg, type Db } from '@keytrail/server-kit';
import { createTestDatabase, type TestDatabase } from '@keytrail/server-kit/testing';
import type { FastifyInstance } from 'fastify';
import {
  buildApp,
  formatAddCheckpointRequest,
  PgWitnessStore,
  type WitnessAppDeps,
} from '../src/index.ts';
import { TestLog, TEST_KEY, post, verifyCosignature } from './helpers.ts';

const SHARED = 8;
const SIZE = 64;
// Two histories under one log key that agree on the first 8 leaves and then diverge: from any
// stored size ≤ 8, both have valid consistency proofs. Only the compare-and-swap stands between
// the witness and cosigning a split view.
const main = new TestLog('example.com/race', 11, 'leaf');
const fork = new TestLog('example.com/race', 11, 'leaf');

let tdb: TestDatabase;
let db2: Db;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  main.append(SIZE);
  // Same first 8 leaves, then different ones.
  fork.append(SHARED);
  for (let i = SHARED; i < SIZE; i++) fork.tree.append(new Uint8Array(32).fill(i));
  tdb = await createTestDatabase('witness_race', ['witness']);
  db2 = openPg(tdb.url, { max: 10 });
  await new PgWitnessStore(tdb.db).addLog({ origin: main.origin, vkeys: [main.vkey] });
});
afterAll(async () => {
  await db2.close();
  await tdb.drop();
});

async function apps(stall: WitnessAppDeps['testingOnlyStallRequest']): Promise<FastifyInstance[]> {
  const base = { key: TEST_KEY, rateLimit: false as const, testingOnlyStallRequest: stall };
  return [
    await buildApp({ ...base, store: new PgWitnessStore(tdb.db), db: tdb.db }),
    await buildApp({ ...base, store: new PgWitnessStore(db2), db: db2 }),
  ];
}

interface Cosigned {
  size: number;
  root: Uint8Array;
}

/** Every pair of cosigned checkpoints must be consistent: one tree's prefix is the other. */
function assertOneHistory(cosigned: readonly Cosigned[]): void {
  const histories = [main, fork].filter((h) =>
    cosigned.every((c) => bytes.equalBytes(h.tree.root(c.size), c.root)),
  );
  expect(histories.length, 'all cosigned checkpoints lie on one history').toBeGreaterThan(0);
}

function cosignedFrom(body: string, r: { statusCode: number; body: string }): Cosigned | undefined {
  if (r.statusCode !== 200) return undefined;
  const text = note.parse(body.slice(body.indexOf('\n\n') + 2)).text;
  verifyCosignature(r.body, text, TEST_KEY);
  const cp = checkpoint.parse(text);
  return { size: cp.size, root: cp.root };
}

async function storedSize(): Promise<number> {
  return (await new PgWitnessStore(tdb.db).getState(main.origin))!.size;
}

/** Polls the stored size while `work` runs; returns every value seen. */
async function watch(work: Promise<unknown>): Promise<number[]> {
  const seen: number[] = [];
  const state = { done: false };
  void work.finally(() => {
    state.done = true;
  });
  while (!state.done) {
    seen.push(await storedSize());
    await sleep(2);
  }
  await work;
  seen.push(await storedSize());
  return seen;
}

describe('concurrent add-checkpoint', () => {
  it('the specification race: a stalled N request never rolls back a stored N+K', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const [a] = await apps(async ({ size }) => {
      if (size === 3) await gate;
    });
    try {
      expect((await post(a!, main.body(0, 2))).statusCode).toBe(200);
      const slow = post(a!, main.body(2, 3));
      await sleep(20);
      const fast = await post(a!, main.body(2, 5));
      expect(fast.statusCode).toBe(200);
      release();
      const late = await slow;
      expect(late.statusCode).toBe(409);
      expect(late.headers['content-type']).toBe('text/x.tlog.size');
      expect(late.body).toBe('5\n');
      expect(await storedSize()).toBe(5);
    } finally {
      await a!.close();
    }
  });

  it('200 concurrent conflicting requests, released together: one winner, one history', async () => {
    // All requests that pass their checks wait at the gate, then hit the database at once.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let stalled = 0;
    const [a, b] = await apps(async () => {
      stalled++;
      await gate;
    });
    try {
      const start = await storedSize();
      expect(start).toBe(5);
      const bodies: string[] = [];
      for (let i = 0; i < 200; i++) {
        const h = i % 2 === 0 ? main : fork;
        const size = start + 1 + ((i * 7) % (SIZE - start));
        // Mostly the right old size; some stale ones and some ahead.
        const old = i % 10 === 3 ? 0 : i % 10 === 7 ? start + 1 : start;
        bodies.push(formatAddCheckpointRequest(old, h.proof(old, size), h.note(size)));
      }
      const requests = Promise.all(bodies.map((body, i) => post(i % 2 ? b! : a!, body)));
      const sizes = watch(
        (async () => {
          while (stalled < 160) await sleep(5);
          release();
          return requests;
        })(),
      );
      const seen = await sizes;
      const responses = await requests;
      const statuses = responses.map((r) => r.statusCode);
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      expect(new Set(statuses)).toEqual(new Set([200, 409]));
      const cosigned = responses
        .map((r, i) => cosignedFrom(bodies[i]!, r))
        .filter((c): c is Cosigned => c !== undefined);
      assertOneHistory(cosigned);
      for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]!);
      const winner = cosigned[0]!;
      const state = await new PgWitnessStore(tdb.db).getState(main.origin);
      expect(state!.size).toBe(winner.size);
      expect(bytes.equalBytes(state!.root, winner.root)).toBe(true);
      // Losers of the race learn the winner's size; requests refused before the gate (stale or
      // ahead old sizes) saw the starting size.
      for (const [i, r] of responses.entries()) {
        if (r.statusCode !== 409) continue;
        const passedChecks = i % 10 !== 3 && i % 10 !== 7;
        expect(r.body).toBe(`${String(passedChecks ? winner.size : start)}\n`);
      }
    } finally {
      await a!.close();
      await b!.close();
    }
  });

  it('200 requests racing with random stalls: never backwards, never two histories', async () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const [a, b] = await apps(async () => {
      await sleep(rand(15));
    });
    try {
      const start = await storedSize();
      const winnerHistory = bytes.equalBytes(
        (await new PgWitnessStore(tdb.db).getState(main.origin))!.root,
        main.tree.root(start),
      )
        ? main
        : fork;
      const loser = winnerHistory === main ? fork : main;
      const cosigned: Cosigned[] = [];
      let known = start;
      const run = async (i: number): Promise<void> => {
        // Clients learn the witness's size from 409s and retry from it, as the directory does.
        for (let attempt = 0; attempt < 5; attempt++) {
          const h = rand(4) === 0 ? loser : winnerHistory;
          const old = known;
          if (old >= SIZE) return;
          const size = old + rand(SIZE - old) + (rand(3) === 0 ? 0 : 1);
          const target = Math.min(size, SIZE);
          const body = formatAddCheckpointRequest(old, h.proof(old, target), h.note(target));
          const r = await post(i % 2 ? b! : a!, body);
          const c = cosignedFrom(body, r);
          if (c) cosigned.push(c);
          if (r.statusCode === 409 && r.headers['content-type'] === 'text/x.tlog.size') {
            known = Math.max(known, Number(r.body.trim()));
          } else if (r.statusCode === 200) {
            known = Math.max(known, target);
          } else {
            expect([409, 422]).toContain(r.statusCode);
          }
        }
      };
      const seen = await watch(Promise.all(Array.from({ length: 200 }, (_, i) => run(i))));
      for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]!);
      expect(cosigned.length).toBeGreaterThan(1);
      assertOneHistory(cosigned);
      const max = Math.max(...cosigned.map((c) => c.size));
      expect(await storedSize()).toBe(max);
    } finally {
      await a!.close();
      await b!.close();
    }
  });
});
