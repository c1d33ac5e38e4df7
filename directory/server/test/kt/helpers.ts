/**
 * Test helpers: a directory over a fresh PostgreSQL database, a `fetch` over `app.inject`,
 * device keys and signed updates.
 * @module
 */
import type { FastifyInstance } from 'fastify';
import { ed25519 } from '@noble/curves/ed25519.js';
import { createTestDatabase, type TestDatabase } from '@keytrail/server-kit/testing';
import { installNodeCrypto } from '@keytrail/server-kit';
import { bytes } from '@keytrail/core';
import {
  DirectoryClient,
  deviceListUpdateMessage,
  ownerReadMessage,
  type AccountRef,
  type Device,
  type FetchLike,
} from '@keytrail/client';
import { Directory, type DirectoryOptions } from '../../src/kt/directory.ts';
import { buildApp } from '../../src/app.ts';

export const ADMIN = 'test-admin-token-0123456789';

export interface Harness {
  readonly tdb: TestDatabase;
  readonly dir: Directory;
  readonly app: FastifyInstance;
  close(): Promise<void>;
}

/** A directory with fast epochs over a fresh database. */
export async function startDirectory(
  label: string,
  opts: Partial<DirectoryOptions> = {},
): Promise<Harness> {
  installNodeCrypto();
  const tdb = await createTestDatabase(label, ['directory']);
  const dir = await Directory.open({
    db: tdb.db,
    adminToken: ADMIN,
    epochMs: 30,
    epochIdleMs: 60_000,
    vrfWorkers: 0,
    ...opts,
  });
  dir.start();
  const app = await buildApp({ directory: dir });
  await dir.waitForEpoch(0);
  return {
    tdb,
    dir,
    app,
    async close() {
      await app.close();
      await dir.close();
      await tdb.drop();
    },
  };
}

/** `fetch` over `app.inject`, optionally rewriting response bodies (a lying server). */
export function injectFetch(
  app: FastifyInstance,
  tamper?: (path: string, body: string) => string,
): FetchLike {
  return async (url, init) => {
    const u = new URL(url);
    const res = await app.inject({
      method: (init?.method ?? 'GET') as 'GET',
      url: u.pathname + u.search,
      ...(init?.headers ? { headers: init.headers } : {}),
    });
    const body = tamper ? tamper(u.pathname, res.body) : res.body;
    return { status: res.statusCode, text: () => Promise.resolve(body) };
  };
}

/** A client trusting the harness's directory. */
export function clientFor(
  h: Harness,
  fetch?: FetchLike,
  now: () => number = Date.now,
): DirectoryClient {
  return new DirectoryClient({
    baseUrl: 'http://directory.test',
    trust: {
      logKey: h.dir.identity.logKey,
      vrfPublicKey: h.dir.identity.vrfPublicKey,
      maxCheckpointAgeMs: 120_000,
    },
    fetch: fetch ?? injectFetch(h.app),
    now,
  });
}

/** A device key pair. */
export interface TestDevice {
  readonly id: string;
  readonly secret: Uint8Array;
  readonly publicKey: Uint8Array;
}

export function newDevice(id: string): TestDevice {
  const secret = ed25519.utils.randomSecretKey();
  return { id, secret, publicKey: ed25519.getPublicKey(secret) };
}

export function deviceEntry(
  d: TestDevice,
  addedBy: Device['addedBy'],
  addedAt = Date.now(),
): Device {
  return { id: d.id, identityKey: d.publicKey, addedAt, addedBy };
}

export function deviceJson(d: Device): Record<string, unknown> {
  return {
    id: d.id,
    identityKey: bytes.toBase64(d.identityKey),
    ...(d.x25519Key ? { x25519Key: bytes.toBase64(d.x25519Key) } : {}),
    addedAt: d.addedAt,
    addedBy: d.addedBy,
  };
}

export async function createAccount(app: FastifyInstance, ref: AccountRef): Promise<void> {
  const auth = { authorization: `Bearer ${ADMIN}` };
  await app.inject({
    method: 'POST',
    url: '/v1/tenants',
    headers: auth,
    payload: { id: ref.tenant, name: ref.tenant },
  });
  const r = await app.inject({
    method: 'POST',
    url: `/v1/tenants/${ref.tenant}/accounts`,
    headers: auth,
    payload: { id: ref.account, displayName: `${ref.account}@example.com` },
  });
  if (r.statusCode !== 201) throw new Error(`create account: ${r.statusCode} ${r.body}`);
}

export interface ReceiptJson {
  tenant: string;
  account: string;
  version: number;
  epoch: number;
}

/** Publishes a list with the admin token. */
export async function publishAdmin(
  app: FastifyInstance,
  ref: AccountRef,
  devices: Device[],
): Promise<ReceiptJson> {
  const r = await app.inject({
    method: 'POST',
    url: `/v1/tenants/${ref.tenant}/accounts/${ref.account}/devices`,
    headers: { authorization: `Bearer ${ADMIN}` },
    payload: { devices: devices.map(deviceJson) },
  });
  if (r.statusCode !== 202) throw new Error(`publish: ${r.statusCode} ${r.body}`);
  return r.json();
}

/** Publishes a list signed by an existing device. */
export async function publishSigned(
  app: FastifyInstance,
  ref: AccountRef,
  version: number,
  devices: Device[],
  signer: TestDevice,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const sig = ed25519.sign(deviceListUpdateMessage(ref, version, devices), signer.secret);
  const r = await app.inject({
    method: 'POST',
    url: `/v1/tenants/${ref.tenant}/accounts/${ref.account}/devices`,
    payload: {
      version,
      devices: devices.map(deviceJson),
      signature: { deviceId: signer.id, signature: bytes.toBase64(sig) },
    },
  });
  return { status: r.statusCode, body: r.json() };
}

/** The owner's `Authorization` header, signed by one of its devices. */
export function ownerAuth(
  ref: AccountRef,
  d: TestDevice,
  now = Date.now(),
): Record<string, string> {
  const sig = ed25519.sign(ownerReadMessage(ref, now), d.secret);
  return { authorization: `KT-Device ${d.id} ${now} ${bytes.toBase64(sig)}` };
}
