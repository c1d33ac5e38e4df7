/**
 * Witness benchmark (issue 4 §4): `add-checkpoint` throughput with durable PostgreSQL state
 * (synchronous commit, one compare-and-swap UPDATE per cosignature), and its p50/p99
 * latency, beside raw baselines measured in the same run: native Ed25519 sign and verify (the
 * two signature operations each request needs), a raw durable single-row UPDATE at the same
 * concurrency, and the witness logic over an in-memory store.
 *
 * Workload: 64 logs, each advanced one leaf at a time by its own client (a new checkpoint,
 * a log signature and an RFC 6962 consistency proof per request), all 64 concurrently, after
 * a warm-up on other logs. Over HTTP the load generator runs in a worker thread, so the
 * witness's event loop is not also the client's.
 * @module
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { checkpoint, merkle, note, bytes } from '@keytrail/core';
import { installNodeCrypto, openPg, type Db } from '@keytrail/server-kit';
import { createTestDatabase, type TestDatabase } from '@keytrail/server-kit/testing';
import {
  buildApp,
  formatAddCheckpointRequest,
  MemoryWitnessStore,
  PgWitnessStore,
  Witness,
  witnessKeyFromSeed,
  type WitnessStore,
} from '../src/index.ts';
import { fmt, opsPerSecond, percentile, report, type Bench } from '../../scripts/bench-util.ts';

const LOGS = 64;
const STEPS = 60;

interface Workload {
  readonly logs: { origin: string; vkey: string }[];
  /** bodies[log][step]: old step → step + 1. */
  readonly bodies: Buffer[][];
}

function nodeSignFn(): note.Ed25519SignFn {
  let key: ReturnType<typeof createPrivateKey> | undefined;
  return (msg, seed) => {
    key ??= createPrivateKey({
      key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]),
      format: 'der',
      type: 'pkcs8',
    });
    return new Uint8Array(sign(null, msg, key));
  };
}

function workload(tag: string): Workload {
  const logs: Workload['logs'] = [];
  const bodies: Buffer[][] = [];
  for (let l = 0; l < LOGS; l++) {
    const origin = `bench.example/${tag}/${String(l)}`;
    const signer = note.ed25519Signer(origin, new Uint8Array(randomBytes(32)), nodeSignFn());
    logs.push({ origin, vkey: note.formatVerifierKey(origin, signer.publicKey) });
    const tree = new merkle.MemoryTree();
    for (let i = 0; i <= STEPS; i++)
      tree.append(merkle.leafHash(bytes.utf8(`${tag} ${String(l)} ${String(i)}`)));
    const list: Buffer[] = [];
    for (let s = 0; s < STEPS; s++) {
      const size = s + 1;
      const text = checkpoint.format({ origin, size, root: tree.root(size), extensions: [] });
      const proof = s === 0 ? [] : tree.consistencyProof(s, size);
      list.push(Buffer.from(formatAddCheckpointRequest(s, proof, note.sign(text, [signer]))));
    }
    bodies.push(list);
  }
  return { logs, bodies };
}

/** Runs every log's requests in order, all logs at once; returns rate and latencies. */
async function drive(
  w: Workload,
  send: (body: Buffer) => Promise<number>,
): Promise<{ rate: number; p50: number; p99: number; errors: number }> {
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  await Promise.all(
    w.bodies.map(async (list) => {
      for (const body of list) {
        const t = performance.now();
        const status = await send(body);
        latencies.push(performance.now() - t);
        if (status !== 200) errors++;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  return {
    rate: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    errors,
  };
}

async function follow(store: WitnessStore, w: Workload): Promise<void> {
  for (const l of w.logs) await store.addLog({ origin: l.origin, vkeys: [l.vkey] });
}

// The HTTP load generator runs in a worker thread: its event loop and CPU are not the
// witness's, as a remote client's would not be. Plain JavaScript, evaluated in the worker.
const HTTP_LOAD = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const { port, bodies } = workerData;
const agent = new http.Agent({ keepAlive: true, maxSockets: bodies.length });
const send = (body) => new Promise((resolve, reject) => {
  const req = http.request({ host: '127.0.0.1', port, path: '/add-checkpoint', method: 'POST', agent,
    headers: { 'content-length': body.length } }, (res) => {
    res.resume();
    res.on('end', () => resolve(res.statusCode));
  });
  req.on('error', reject);
  req.end(body);
});
(async () => {
  const latencies = [];
  let errors = 0;
  const start = performance.now();
  await Promise.all(bodies.map(async (list) => {
    for (const body of list) {
      const t = performance.now();
      const status = await send(Buffer.from(body));
      latencies.push(performance.now() - t);
      if (status !== 200) errors++;
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  parentPort.postMessage({ seconds, latencies, errors });
})();
`;

async function driveHttp(
  port: number,
  w: Workload,
): Promise<{ rate: number; p50: number; p99: number; errors: number }> {
  const worker = new Worker(HTTP_LOAD, {
    eval: true,
    workerData: { port, bodies: w.bodies.map((list) => list.map((b) => new Uint8Array(b))) },
  });
  const out = await new Promise<{ seconds: number; latencies: number[]; errors: number }>(
    (resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    },
  );
  await worker.terminate();
  return {
    rate: out.latencies.length / out.seconds,
    p50: percentile(out.latencies, 50),
    p99: percentile(out.latencies, 99),
    errors: out.errors,
  };
}

const bench: Bench = async () => {
  installNodeCrypto();
  const key = witnessKeyFromSeed('bench.example/witness', new Uint8Array(randomBytes(32)));

  // Baselines: the two signature operations of every request, native.
  const msg = new Uint8Array(randomBytes(200));
  const priv = createPrivateKey({
    key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), randomBytes(32)]),
    format: 'der',
    type: 'pkcs8',
  });
  const pub = createPublicKey(priv);
  const sig = sign(null, msg, priv);
  const signRate = opsPerSecond(() => sign(null, msg, priv));
  const verifyRate = opsPerSecond(() => verify(null, msg, pub, sig));
  report('baseline: native Ed25519 sign', `${fmt(signRate)} /s`);
  report('baseline: native Ed25519 verify', `${fmt(verifyRate)} /s`);
  const cpuBound = 1 / (1 / signRate + 1 / verifyRate);
  report('  ⇒ sign + verify, one core', `${fmt(cpuBound)} /s`);

  const tdb: TestDatabase = await createTestDatabase('bench_witness', ['witness']);
  // The pool a deployment would use (main.ts opens 16; more sessions, more group commit).
  const db: Db = openPg(tdb.url, { max: 32, applicationName: 'bench-witness' });
  try {
    // Baseline: a raw durable single-row UPDATE per request at the same concurrency.
    await db.query('CREATE TABLE bench_rows (id int PRIMARY KEY, n bigint NOT NULL)');
    await db.query('INSERT INTO bench_rows SELECT g, 0 FROM generate_series(0, $1::int - 1) g', [
      LOGS,
    ]);
    const raw = await drive(
      {
        logs: [],
        bodies: Array.from({ length: LOGS }, () =>
          Array.from({ length: STEPS }, () => Buffer.alloc(0)),
        ),
      },
      (() => {
        let i = 0;
        return async () => {
          const id = i++ % LOGS;
          const r = await db.query('UPDATE bench_rows SET n = n + 1 WHERE id = $1 AND n >= 0', [
            id,
          ]);
          return r.rowCount === 1 ? 200 : 500;
        };
      })(),
    );
    report(`baseline: durable UPDATE, ${String(LOGS)} concurrent (pool 32)`, `${fmt(raw.rate)} /s`);

    // The witness logic alone (parse, verify, proof, sign) over memory.
    const mem = new MemoryWitnessStore();
    const witness = new Witness({ store: mem, key });
    const memWarm = workload('mem-warm');
    await follow(mem, memWarm);
    await drive(memWarm, async (body) => {
      await witness.addCheckpoint(body);
      return 200;
    });
    const wm = workload('mem');
    await follow(mem, wm);
    const logic = await drive(wm, async (body) => {
      await witness.addCheckpoint(body);
      return 200;
    });
    report(
      'witness logic, in-memory store (no HTTP)',
      `${fmt(logic.rate)} /s`,
      `${fmt((logic.rate / cpuBound) * 100)}% of sign+verify`,
    );

    // Durable PostgreSQL state, through Fastify (inject: no sockets).
    const store = new PgWitnessStore(db);
    const app = await buildApp({ store, db, key, rateLimit: false, maxInFlight: 100_000 });
    const inject = async (body: Buffer): Promise<number> =>
      (await app.inject({ method: 'POST', url: '/add-checkpoint', payload: body })).statusCode;
    // Warm-up (JIT, connection pool, caches) on other logs; steady state is what is measured.
    const warm = workload('warm');
    await follow(store, warm);
    await drive(warm, inject);
    const wi = workload('inject');
    await follow(store, wi);
    const inj = await drive(wi, async (body) => {
      const r = await app.inject({ method: 'POST', url: '/add-checkpoint', payload: body });
      return r.statusCode;
    });
    report(
      'add-checkpoint, durable PostgreSQL, Fastify inject',
      `${fmt(inj.rate)} /s`,
      `${fmt(inj.rate / raw.rate, 2)}× raw UPDATE; p50 ${fmt(inj.p50, 1)} ms, p99 ${fmt(inj.p99, 1)} ms${inj.errors ? `; ${String(inj.errors)} errors` : ''}`,
    );

    // The same over HTTP on loopback with keep-alive (client in this process too).
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    const port = addr && typeof addr === 'object' ? addr.port : 0;
    const wh = workload('http');
    await follow(store, wh);
    const viaHttp = await driveHttp(port, wh);
    report(
      'add-checkpoint, durable PostgreSQL, HTTP keep-alive',
      `${fmt(viaHttp.rate)} /s`,
      `target ≥ 1,000 /s; ${fmt(viaHttp.rate / raw.rate, 2)}× raw UPDATE; p50 ${fmt(viaHttp.p50, 1)} ms, p99 ${fmt(viaHttp.p99, 1)} ms${viaHttp.errors ? `; ${String(viaHttp.errors)} errors` : ''}`,
    );
    await app.close();
  } finally {
    await db.close();
    await tdb.drop();
  }
};

export default bench;
