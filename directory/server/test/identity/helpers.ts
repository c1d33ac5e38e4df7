/**
 * Test support for the identity routes: a fresh database per file, a real database-backed
 * DeviceDirectory, a Fastify app with the identity plugin, a controllable clock, and a way to
 * reach the second-factor stage of a sign-in without an IdP (the IdP steps have their own
 * tests against real IdPs).
 * @module
 */
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { createTestDatabase, type TestDatabase } from '@keytrail/server-kit/testing';
import type { Queryable } from '@keytrail/server-kit';
import { generate } from 'otplib';
import {
  identityConfig,
  registerIdentity,
  type DeviceDirectory,
  type DeviceReceipt,
  type IdentityConfig,
  type IdentityHandle,
} from '../../src/identity/index.ts';
import { sha256 } from '../../src/identity/secrets.ts';
import { createFlow, advanceFlow } from '../../src/identity/flows.ts';
import { resolveSignIn } from '../../src/identity/accounts.ts';
import { linkIdp } from '../../src/identity/idps.ts';
import { open } from '../../src/identity/secrets.ts';

/** The device lists the test directory holds, one row per version. */
export const DEVICE_TABLE_SQL = `CREATE TABLE IF NOT EXISTS test_device_lists (
  tenant_id text NOT NULL, account_id text NOT NULL, version integer NOT NULL,
  username text NOT NULL, devices jsonb NOT NULL, authorization_kind text NOT NULL,
  PRIMARY KEY (tenant_id, account_id, version))`;

/**
 * A small real DeviceDirectory over the test database: each call appends a version of the
 * account's device list, as the key directory does, and refuses invalid lists.
 */
export class DbDeviceDirectory implements DeviceDirectory {
  readonly #db: Queryable;
  constructor(db: Queryable) {
    this.#db = db;
  }
  async #append(
    a: { tenantId: string; accountId: string; username: string },
    devices: { deviceId: string; identityKey: string }[],
    kind: string,
  ): Promise<DeviceReceipt> {
    const r = await this.#db.query<{ version: number }>(
      `INSERT INTO test_device_lists (tenant_id, account_id, version, username, devices, authorization_kind)
       SELECT $1, $2, COALESCE(MAX(version), 0) + 1, $3, $4, $5 FROM test_device_lists
       WHERE tenant_id = $1 AND account_id = $2 RETURNING version`,
      [a.tenantId, a.accountId, a.username, JSON.stringify(devices), kind],
    );
    const version = r.rows[0]?.version ?? 0;
    return { version, reference: `test:${a.accountId}:${version}` };
  }
  publishDevices: DeviceDirectory['publishDevices'] = async (account, devices, authorization) => {
    const ids = new Set(devices.map((d) => d.deviceId));
    if (ids.size !== devices.length || devices.some((d) => d.identityKey.length !== 32)) {
      throw new Error('invalid device list');
    }
    return this.#append(
      account,
      devices.map((d) => ({
        deviceId: d.deviceId,
        identityKey: Buffer.from(d.identityKey).toString('base64url'),
      })),
      authorization.kind,
    );
  };
  removeAllDevices: DeviceDirectory['removeAllDevices'] = async (account, authorization) =>
    this.#append(account, [], authorization.kind);

  /** The latest list of an account, or undefined. */
  async latest(
    tenantId: string,
    accountId: string,
  ): Promise<{ version: number; devices: unknown[]; kind: string } | undefined> {
    const r = await this.#db.query<{
      version: number;
      devices: unknown[];
      authorization_kind: string;
    }>(
      `SELECT version, devices, authorization_kind FROM test_device_lists WHERE tenant_id = $1 AND account_id = $2
       ORDER BY version DESC LIMIT 1`,
      [tenantId, accountId],
    );
    const row = r.rows[0];
    return row
      ? { version: row.version, devices: row.devices, kind: row.authorization_kind }
      : undefined;
  }
}

/** A clock tests move by hand. */
export class TestClock {
  now: number;
  constructor(start = Date.now()) {
    this.now = start;
  }
  readonly read = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

/** Everything a test file needs. */
export interface Harness {
  readonly tdb: TestDatabase;
  readonly app: FastifyInstance;
  readonly config: IdentityConfig;
  readonly clock: TestClock;
  readonly devices: DbDeviceDirectory;
  readonly identity: IdentityHandle;
  readonly operatorToken: string;
  close(): Promise<void>;
}

/** Creates the database, tenants and app. */
export async function createHarness(
  label: string,
  options: { tenants?: string[]; config?: Partial<IdentityConfig>; publicUrl?: string } = {},
): Promise<Harness> {
  const tdb = await createTestDatabase(`identity-${label}`, ['directory', 'identity']);
  await tdb.db.query(DEVICE_TABLE_SQL);
  for (const t of options.tenants ?? ['acme', 'globex']) {
    await tdb.db.query('INSERT INTO tenants (id, name) VALUES ($1, $2)', [t, t.toUpperCase()]);
  }
  const operatorToken = randomBytes(32).toString('base64url');
  const config = identityConfig({
    publicUrl: options.publicUrl ?? 'http://127.0.0.1:8099',
    dataKey: new Uint8Array(randomBytes(32)),
    operatorTokenHash: sha256(operatorToken),
    allowInsecureIdpRequests: true,
    ...options.config,
  });
  const clock = new TestClock();
  const devices = new DbDeviceDirectory(tdb.db);
  const app = Fastify({ logger: false });
  const identity = await registerIdentity(app, { db: tdb.db, config, devices, clock: clock.read });
  await app.ready();
  return {
    tdb,
    app,
    config,
    clock,
    devices,
    identity,
    operatorToken,
    async close() {
      await app.close();
      await tdb.drop();
    },
  };
}

/** A flow at the second-factor stage for `email`, as if the IdP had just signed them in. */
export async function flowAtMfa(
  h: Harness,
  tenantId: string,
  email: string,
  groups: string[] = [],
): Promise<{ flow: string; accountId: string; idpId: string }> {
  const db = h.tdb.db;
  let idpId = (
    await db.query<{ id: string }>(
      `SELECT id FROM identity_idps WHERE tenant_id = $1 AND name = 'test-idp'`,
      [tenantId],
    )
  ).rows[0]?.id;
  if (!idpId) {
    idpId = (
      await linkIdp(
        db,
        h.config,
        tenantId,
        { kind: 'oidc', name: 'test-idp', issuer: 'https://idp.test', clientId: 'kt' },
        h.clock.now,
      )
    ).id;
  }
  const flow = await createFlow(db, {
    tenantId,
    idpId,
    state: {},
    nowMs: h.clock.now,
    ttlSec: 600,
  });
  const account = await resolveSignIn(
    db,
    { tenantId, idpId, subject: `sub-${email}`, email, groups },
    h.clock.now,
  );
  await advanceFlow(db, { id: flow.id, from: 'idp', to: 'mfa', accountId: account.id });
  return { flow: flow.secret, accountId: account.id, idpId };
}

/** The account's TOTP seed, read back (tests play the authenticator app). */
export async function totpSeed(h: Harness, accountId: string, pending = false): Promise<string> {
  const r = await h.tdb.db.query<{ s: Uint8Array | null }>(
    `SELECT ${pending ? 'totp_pending_enc' : 'totp_secret_enc'} AS s FROM identity_accounts WHERE id = $1`,
    [accountId],
  );
  const sealed = r.rows[0]?.s;
  if (!sealed) throw new Error('no seed');
  const plain = open(h.config.dataKey, sealed, `totp:${accountId}`);
  if (!plain) throw new Error('seed does not open');
  return new TextDecoder().decode(plain);
}

/** The current code for a seed at the harness clock, `steps` periods later. */
export function totpCode(h: Harness, seed: string, steps = 0): Promise<string> {
  return generate({ secret: seed, epoch: Math.floor(h.clock.now / 1000) + steps * 30 });
}

/** Parses a JSON response body. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test bodies are inspected loosely
export function json(res: { body: string }): any {
  return JSON.parse(res.body);
}

/**
 * Completes a sign-in from the MFA stage: enrols TOTP if needed and verifies a code.
 * Returns the token response.
 */
export async function completeWithTotp(
  h: Harness,
  tenantId: string,
  flow: string,
  accountId: string,
  deviceLabel = 'laptop',
): Promise<{
  accessToken: string;
  refreshToken: string;
  sessionId: string;
  account: { id: string };
}> {
  const enrolled = await h.tdb.db.query<{ e: boolean }>(
    'SELECT totp_enabled_at IS NOT NULL AS e FROM identity_accounts WHERE id = $1',
    [accountId],
  );
  let seed: string;
  if (enrolled.rows[0]?.e) {
    seed = await totpSeed(h, accountId);
    // A fresh time step, so earlier sign-ins' codes never collide with this one.
    h.clock.advance(30_000);
  } else {
    const e = await h.app.inject({
      method: 'POST',
      url: `/identity/t/${tenantId}/signin/totp/enroll`,
      payload: { flow },
    });
    if (e.statusCode !== 200) throw new Error(`enroll: ${e.statusCode} ${e.body}`);
    seed = await totpSeed(h, accountId, true);
  }
  const res = await h.app.inject({
    method: 'POST',
    url: `/identity/t/${tenantId}/signin/totp`,
    payload: { flow, code: await totpCode(h, seed), deviceLabel },
  });
  if (res.statusCode !== 200) throw new Error(`totp: ${res.statusCode} ${res.body}`);
  return json(res);
}

/** Signs `email` in to `tenantId` all the way to tokens. */
export async function signIn(h: Harness, tenantId: string, email: string, groups: string[] = []) {
  const { flow, accountId } = await flowAtMfa(h, tenantId, email, groups);
  return { accountId, ...(await completeWithTotp(h, tenantId, flow, accountId)) };
}
