/**
 * End-to-end transparency over real PostgreSQL and real sockets (ARCHITECTURE.md §Protocol 8
 * client verification, §Protocol 9 audit; C2SP tlog-checkpoint / tlog-cosignature): three real
 * witnesses and a real directory (quorum 2) on loopback; device lists published with an admin
 * grant and a device signature; a `DirectoryClient` pinning the witnesses verifies lookups; the
 * `keytrail-audit` CLI (`runCli`, in-process) syncs over HTTP, incrementally, with one witness
 * down; and a forked directory log (a second directory on its own database with the same signing
 * key, cosigned by clones of two witness keys) is caught by the auditor and by the client.
 * @module
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytes, note } from '@keytrail/core';
import { installNodeCrypto } from '@keytrail/server-kit';
import { createTestDatabase, type TestDatabase } from '@keytrail/server-kit/testing';
import {
  ClientError,
  DirectoryClient,
  deviceListUpdateMessage,
  encodeDeviceList,
  type AccountRef,
  type Device,
} from '@keytrail/client';
import { HttpDirectorySource, StateStore, runCli, sync, type CliIo } from '@keytrail/auditor';
import {
  buildApp as buildWitnessApp,
  PgWitnessStore,
  witnessKeyFromSeed,
  type WitnessKey,
} from '@keytrail/witness';
// @keytrail/directory has no package entry point (no src/index.ts), so its modules are imported by path.
import {
  Directory,
  KtStore,
  buildApp as buildDirectoryApp,
  WitnessCollector,
  parseWitnessPolicy,
  PgWitnessingStore,
  attachLatePublisher,
} from '@keytrail/directory';

installNodeCrypto();

const ADMIN = 'e2e-admin-token-0123456789abcdef';
const MAX_AGE_MS = 300_000;
const DIRECTORY_MIGRATIONS = ['directory', 'identity', 'witnessing'];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function eventually(check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not reached in time');
    await sleep(25);
  }
}

function portOf(app: FastifyInstance): number {
  const addr = app.server.address();
  if (!addr || typeof addr !== 'object') throw new Error('not listening');
  return addr.port;
}

/** A real witness (`@keytrail/witness` buildApp) on its own database, listening on loopback. */
class Witness {
  readonly name: string;
  readonly key: WitnessKey;
  readonly tdb: TestDatabase;
  app: FastifyInstance | undefined;
  url = '';
  private constructor(name: string, key: WitnessKey, tdb: TestDatabase) {
    this.name = name;
    this.key = key;
    this.tdb = tdb;
  }

  static async start(
    name: string,
    key: WitnessKey,
    log: { origin: string; vkey: string },
  ): Promise<Witness> {
    const tdb = await createTestDatabase(`e2e_witness_${name}`, ['witness']);
    await new PgWitnessStore(tdb.db).addLog({ origin: log.origin, vkeys: [log.vkey] });
    const w = new Witness(name, key, tdb);
    w.app = await buildWitnessApp({
      store: new PgWitnessStore(tdb.db),
      db: tdb.db,
      key,
      rateLimit: false,
    });
    await w.app.listen({ host: '127.0.0.1', port: 0 });
    w.url = `http://127.0.0.1:${String(portOf(w.app))}`;
    return w;
  }

  get policyLine(): string {
    return `witness ${this.name} ${this.key.vkey} ${this.url}`;
  }

  async stop(): Promise<void> {
    const app = this.app;
    this.app = undefined;
    await app?.close();
  }

  async drop(): Promise<void> {
    await this.stop();
    await this.tdb.drop();
  }
}

/** A real directory with a witness collector (quorum 2 of its witnesses), listening on loopback. */
class LiveDirectory {
  readonly tdb: TestDatabase;
  readonly dir: Directory;
  readonly collector: WitnessCollector;
  readonly app: FastifyInstance;
  url = '';
  private constructor(
    tdb: TestDatabase,
    dir: Directory,
    collector: WitnessCollector,
    app: FastifyInstance,
  ) {
    this.tdb = tdb;
    this.dir = dir;
    this.collector = collector;
    this.app = app;
  }

  static async start(tdb: TestDatabase, witnesses: readonly Witness[]): Promise<LiveDirectory> {
    const collector = await WitnessCollector.create({
      policy: parseWitnessPolicy(
        `${witnesses.map((w) => w.policyLine).join('\n')}\ngroup q 2 ${witnesses.map((w) => w.name).join(' ')}\nquorum q\n`,
      ),
      store: new PgWitnessingStore(tdb.db),
      transport: { timeoutMs: 500, attempts: 2, backoffMs: 10 },
      retryMinMs: 50,
      retryMaxMs: 200,
      deadlineMs: 2000,
    });
    const dir = await Directory.open({
      db: tdb.db,
      adminToken: ADMIN,
      cosigner: collector,
      epochMs: 30,
      epochIdleMs: 60_000,
      vrfWorkers: 0,
    });
    attachLatePublisher(collector, dir.store, dir.state);
    dir.start();
    const app = await buildDirectoryApp({ directory: dir });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const d = new LiveDirectory(tdb, dir, collector, app);
    d.url = `http://127.0.0.1:${String(portOf(app))}`;
    await dir.waitForEpoch(0);
    return d;
  }

  async checkpoint(): Promise<string> {
    const res = await fetch(`${this.url}/v1/checkpoint`);
    expect(res.status).toBe(200);
    return res.text();
  }

  /** Waits until the published checkpoint covers `epoch` and carries ≥ 2 cosignatures. */
  async waitCosigned(epoch: number): Promise<string> {
    await this.dir.waitForEpoch(epoch);
    let text = '';
    await eventually(async () => {
      text = await this.checkpoint();
      const n = note.parse(text);
      const size = Number(n.text.split('\n')[1]);
      const cosigners = n.signatures.filter((s) => s.name !== this.dir.identity.origin).length;
      return size > epoch && cosigners >= 2;
    });
    return text;
  }

  async close(): Promise<void> {
    await this.app.close();
    await this.dir.close();
    await this.collector.close();
  }
}

interface TestDevice {
  readonly id: string;
  readonly secret: Uint8Array;
  readonly publicKey: Uint8Array;
}

function newDevice(id: string): TestDevice {
  const secret = ed25519.utils.randomSecretKey();
  return { id, secret, publicKey: ed25519.getPublicKey(secret) };
}

function entry(d: TestDevice, addedBy: Device['addedBy']): Device {
  return { id: d.id, identityKey: d.publicKey, addedAt: Date.now(), addedBy };
}

function deviceJson(d: Device): Record<string, unknown> {
  return {
    id: d.id,
    identityKey: bytes.toBase64(d.identityKey),
    addedAt: d.addedAt,
    addedBy: d.addedBy,
  };
}

async function post(
  url: string,
  body: unknown,
  auth = true,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(auth ? { authorization: `Bearer ${ADMIN}` } : {}),
    },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function createTenant(d: LiveDirectory, tenant: string): Promise<void> {
  const r = await post(`${d.url}/v1/tenants`, { id: tenant, name: tenant });
  expect(r.status).toBe(201);
}

async function createAccount(d: LiveDirectory, ref: AccountRef): Promise<void> {
  const r = await post(`${d.url}/v1/tenants/${ref.tenant}/accounts`, {
    id: ref.account,
    displayName: `${ref.account}@example.com`,
  });
  expect(r.status).toBe(201);
}

/** Admin grant: returns the epoch the new version lands in. */
async function publishAdmin(d: LiveDirectory, ref: AccountRef, devices: Device[]): Promise<number> {
  const r = await post(`${d.url}/v1/tenants/${ref.tenant}/accounts/${ref.account}/devices`, {
    devices: devices.map(deviceJson),
  });
  expect(r.status, JSON.stringify(r.json)).toBe(202);
  return r.json['epoch'] as number;
}

/** Device-signed update: returns the epoch the new version lands in. */
async function publishSigned(
  d: LiveDirectory,
  ref: AccountRef,
  version: number,
  devices: Device[],
  signer: TestDevice,
): Promise<number> {
  const sig = ed25519.sign(deviceListUpdateMessage(ref, version, devices), signer.secret);
  const r = await post(
    `${d.url}/v1/tenants/${ref.tenant}/accounts/${ref.account}/devices`,
    {
      version,
      devices: devices.map(deviceJson),
      signature: { deviceId: signer.id, signature: bytes.toBase64(sig) },
    },
    false,
  );
  expect(r.status, JSON.stringify(r.json)).toBe(202);
  return r.json['epoch'] as number;
}

/** Runs `keytrail-audit` in-process, capturing its output. */
async function audit(
  args: string[],
  cwd: string,
): Promise<{ code: number; out: Record<string, unknown>; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (t: string) => ((stdout += t), true) },
    stderr: { write: (t: string) => ((stderr += t), true) },
    env: {},
    cwd,
  };
  const code = await runCli([...args, '--json'], io);
  return { code, out: JSON.parse(stdout) as Record<string, unknown>, stderr };
}

let tdb: TestDatabase;
let directory: LiveDirectory;
let witnesses: Witness[] = [];
let forkDb: TestDatabase | undefined;
let fork: LiveDirectory | undefined;
let clones: Witness[] = [];
let work: string;
const seeds = [0x51, 0x52, 0x53];
const keys = seeds.map((s, i) =>
  witnessKeyFromSeed(`w${String(i + 1)}.e2e.test`, new Uint8Array(32).fill(s)),
);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'keytrail-e2e-'));
  tdb = await createTestDatabase('e2e_directory', DIRECTORY_MIGRATIONS);
  // The first start fixes the directory's origin and log key; the witnesses are told about them.
  const first = await Directory.open({ db: tdb.db, sequencer: false, vrfWorkers: 0 });
  const log = { origin: first.identity.origin, vkey: first.identity.logKey };
  await first.close();
  witnesses = await Promise.all(keys.map((k, i) => Witness.start(`w${String(i + 1)}`, k, log)));
  directory = await LiveDirectory.start(tdb, witnesses);
}, 30_000);

afterAll(async () => {
  await fork?.close();
  await directory.close();
  await Promise.all([...witnesses, ...clones].map((w) => w.drop()));
  await forkDb?.drop();
  await tdb.drop();
  if (work) await rm(work, { recursive: true, force: true });
}, 30_000);

describe('directory + three witnesses (quorum 2) + client + auditor over HTTP', () => {
  const alice = { tenant: 'acme', account: 'alice' };
  const bob = { tenant: 'acme', account: 'bob' };
  const phone = newDevice('phone');
  const laptop = newDevice('laptop');
  const bobPhone = newDevice('bob-phone');
  const laptopEntry = entry(laptop, 'device');
  const bobPhoneEntry = entry(bobPhone, 'admin');
  let versions = 0;
  let stateDir: string;
  let lastSize = 0;

  function client(): DirectoryClient {
    return new DirectoryClient({
      baseUrl: directory.url,
      trust: {
        logKey: directory.dir.identity.logKey,
        vrfPublicKey: directory.dir.identity.vrfPublicKey,
        witnesses: keys.map((k) => k.vkey),
        quorum: 2,
        maxCheckpointAgeMs: MAX_AGE_MS,
      },
      fetch: (url, init) => fetch(url, init),
      now: Date.now,
    });
  }

  it('publishes, gets cosigned, and the client verifies lookups against the witness quorum', async () => {
    await createTenant(directory, 'acme');
    await createAccount(directory, alice);
    await createAccount(directory, bob);
    const a0 = [entry(phone, 'admin')];
    await publishAdmin(directory, alice, a0);
    await publishAdmin(directory, bob, [bobPhoneEntry]);
    const a1 = [...a0, laptopEntry];
    const e = await publishSigned(directory, alice, 1, a1, phone);
    versions = 3;
    await directory.waitCosigned(e);

    const c = client();
    const got = await c.lookup(alice);
    expect(got.version).toBe(1);
    expect(bytes.toHex(got.value)).toBe(bytes.toHex(encodeDeviceList(a1)));
    expect(got.devices.map((d) => d.id).sort()).toEqual(['laptop', 'phone']);
    const gotBob = await c.lookup(bob);
    expect(gotBob.version).toBe(0);
    await expect(c.lookup({ tenant: 'acme', account: 'nobody' })).rejects.toMatchObject({
      code: 'ERR_ACCOUNT_NOT_FOUND',
    });

    // A client pinning a witness quorum the checkpoint cannot meet refuses it.
    const strict = new DirectoryClient({
      baseUrl: directory.url,
      trust: {
        logKey: directory.dir.identity.logKey,
        vrfPublicKey: directory.dir.identity.vrfPublicKey,
        witnesses: [keys[0]!.vkey],
        quorum: 1,
        maxCheckpointAgeMs: MAX_AGE_MS,
      },
      fetch: (url, init) => fetch(url, init),
      now: Date.now,
    });
    await strict.lookup(alice); // w1 is up and cosigns
    const stranger = witnessKeyFromSeed('w9.e2e.test', new Uint8Array(32).fill(0x99));
    const refusing = new DirectoryClient({
      baseUrl: directory.url,
      trust: {
        logKey: directory.dir.identity.logKey,
        vrfPublicKey: directory.dir.identity.vrfPublicKey,
        witnesses: [stranger.vkey],
        quorum: 1,
        maxCheckpointAgeMs: MAX_AGE_MS,
      },
      fetch: (url, init) => fetch(url, init),
      now: Date.now,
    });
    await expect(refusing.lookup(alice)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT_QUORUM' });
  });

  it('the auditor (init + sync over HTTP) finds everything consistent', async () => {
    stateDir = join(work, 'audit-state');
    const trustPath = join(work, 'trust.json');
    await writeFile(
      trustPath,
      JSON.stringify({
        origin: directory.dir.identity.origin,
        logKey: directory.dir.identity.logKey,
        vrfPublicKey: bytes.toBase64(directory.dir.identity.vrfPublicKey),
        witnesses: keys.map((k) => k.vkey),
        quorum: 2,
        maxAgeSeconds: 300,
      }),
    );
    const init = await audit(
      ['init', '--url', directory.url, '--trust', 'trust.json', '--state', stateDir],
      work,
    );
    expect(init.code, init.stderr).toBe(0);
    expect(init.out['ok']).toBe(true);

    const cp = note.parse(await directory.checkpoint());
    const served = Number(cp.text.split('\n')[1]);
    const s = await audit(['sync', '--state', stateDir, '--quiet', '--threads', '0'], work);
    expect(s.code, JSON.stringify(s.out)).toBe(0);
    expect(s.out['ok']).toBe(true);
    expect(s.out['newCheckpoint']).toBe(true);
    expect(s.out['size']).toBeGreaterThanOrEqual(served);
    // Every epoch of the accepted log replayed, every published version one insert.
    expect(s.out['totalEpochs']).toBe(s.out['size']);
    expect(s.out['epochsReplayed']).toBe(s.out['size']);
    expect(s.out['totalInserts']).toBe(versions);
    expect(s.out['insertsReplayed']).toBe(versions);
    expect((s.out['cosigners'] as unknown[]).length).toBeGreaterThanOrEqual(2);
    lastSize = s.out['size'] as number;

    const status = await audit(['status', '--state', stateDir], work);
    expect(status.code).toBe(0);
    expect(status.out['findings']).toEqual([]);
  });

  it('one witness down: still published with quorum 2; the incremental sync passes', async () => {
    await witnesses[0]!.stop();
    const a2 = [laptopEntry];
    await publishSigned(directory, alice, 2, a2, phone);
    const e = await publishSigned(
      directory,
      bob,
      1,
      [bobPhoneEntry, entry(newDevice('bob-tab'), 'device')],
      bobPhone,
    );
    versions += 2;
    const text = await directory.waitCosigned(e);
    const names = note.parse(text).signatures.map((s) => s.name);
    expect(names).not.toContain(keys[0]!.name);
    expect(names).toEqual(expect.arrayContaining([keys[1]!.name, keys[2]!.name]));

    const got = await client().lookup(alice);
    expect(got.version).toBe(2);
    expect(got.devices.map((d) => d.id)).toEqual(['laptop']);

    const s = await audit(['sync', '--state', stateDir, '--quiet', '--threads', '0'], work);
    expect(s.code, JSON.stringify(s.out)).toBe(0);
    expect(s.out['newCheckpoint']).toBe(true);
    expect(s.out['size']).toBeGreaterThan(lastSize);
    expect(s.out['epochsReplayed']).toBe((s.out['size'] as number) - lastSize);
    expect(s.out['insertsReplayed']).toBe(2);
    expect(s.out['totalInserts']).toBe(versions);
    const cosigners = (s.out['cosigners'] as { name: string }[]).map((c) => c.name);
    expect(cosigners).not.toContain(keys[0]!.name);
    lastSize = s.out['size'] as number;
  });

  it('a forked log signed with the same key and cosigned by cloned witness keys is detected', async () => {
    // The directory's own key material, reused by a second directory on another database.
    const settings = await new KtStore(tdb.db).settings();
    if (!settings) throw new Error('no settings');
    forkDb = await createTestDatabase('e2e_fork', DIRECTORY_MIGRATIONS);
    await new KtStore(forkDb.db).initSettings(
      settings.origin,
      settings.logSecret,
      settings.vrfSecret,
    );
    const log = { origin: settings.origin, vkey: directory.dir.identity.logKey };
    // Two witness keys leaked (a colluding quorum): fresh witnesses with the same keys.
    clones = await Promise.all([
      Witness.start('w2', keys[1]!, log),
      Witness.start('w3', keys[2]!, log),
    ]);
    fork = await LiveDirectory.start(forkDb, clones);
    expect(fork.dir.identity.logKey).toBe(directory.dir.identity.logKey);
    await createTenant(fork, 'acme');
    await createAccount(fork, alice);
    const evil = newDevice('evil');
    const e = await publishAdmin(fork, alice, [entry(evil, 'admin')]);
    const forkNote = await fork.waitCosigned(e);
    // Both signatures verify on their own: the fork is only visible against history.
    note.open(forkNote, [note.parseVerifierKey(directory.dir.identity.logKey)]);

    // The auditor, pointed at the forked view (a split view served to it), finds the fork.
    const s = await audit(['sync', '--state', stateDir, '--quiet', '--threads', '0'], work);
    expect(s.code).toBe(0); // the honest view still passes
    const store = await StateStore.open(stateDir);
    try {
      await expect(
        sync({
          store,
          source: new HttpDirectorySource(fork.url),
          now: () => Math.floor(Date.now() / 1000),
          threads: 0,
        }),
      ).rejects.toMatchObject({ finding: { check: 'checkpoint-fork' } });
    } finally {
      await store.close();
    }
    const status = await audit(['status', '--state', stateDir], work);
    expect(status.code).toBe(1);
    expect(String((status.out['findings'] as string[])[0])).toContain('checkpoint-fork');

    // The client that accepted the honest checkpoint refuses the forked one.
    const c = client();
    await c.lookup(alice);
    const err = await c.acceptCheckpoint(forkNote).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(err).toBeInstanceOf(ClientError);
    expect(['ERR_LOG_ROLLBACK', 'ERR_LOG_INCONSISTENT']).toContain((err as ClientError).code);
  });
});
