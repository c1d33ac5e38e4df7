/**
 * Bad input on every endpoint: a 4xx with a `{code, message}` body, and nothing written.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { bytes } from '@keytrail/core';
import { ed25519 } from '@noble/curves/ed25519.js';
import { deviceListUpdateMessage } from '@keytrail/client';
import {
  startDirectory,
  createAccount,
  publishAdmin,
  newDevice,
  deviceEntry,
  deviceJson,
  ADMIN,
  type Harness,
} from './helpers.ts';

let h: Harness;
const ref = { tenant: 'acme', account: 'erin' };
const phone = newDevice('phone');
const phoneEntry = deviceEntry(phone, 'admin');
beforeAll(async () => {
  h = await startDirectory('kt_bad');
  await createAccount(h.app, ref);
  await h.dir.waitForEpoch((await publishAdmin(h.app, ref, [phoneEntry])).epoch);
});
afterAll(async () => {
  await h.close();
});

async function counts(): Promise<string> {
  const r = await h.tdb.db.query<{ t: number; a: number; v: number; e: number }>(
    `SELECT (SELECT count(*) FROM tenants)::bigint AS t, (SELECT count(*) FROM accounts)::bigint AS a,
            (SELECT count(*) FROM kt_versions)::bigint AS v, (SELECT count(*) FROM kt_epochs)::bigint AS e`,
  );
  return JSON.stringify(r.rows[0]);
}

type Case = [
  name: string,
  method: 'GET' | 'POST',
  url: string,
  status: number,
  body?: unknown,
  headers?: Record<string, string>,
];
const admin = { authorization: `Bearer ${ADMIN}` };
const dev = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  ...deviceJson(deviceEntry(newDevice('x'), 'admin')),
  ...over,
});
const devicesUrl = '/v1/tenants/acme/accounts/erin/devices';

const cases: Case[] = [
  ['consistency without params', 'GET', '/v1/log/consistency', 400],
  ['consistency from 0', 'GET', '/v1/log/consistency?from=0&to=1', 400],
  ['consistency reversed', 'GET', '/v1/log/consistency?from=2&to=1', 400],
  ['consistency beyond the log', 'GET', '/v1/log/consistency?from=1&to=999999', 400],
  ['consistency not a number', 'GET', '/v1/log/consistency?from=a&to=1', 400],
  ['leaves empty range', 'GET', '/v1/log/leaves?start=1&end=1', 400],
  ['leaves beyond the log', 'GET', '/v1/log/leaves?start=0&end=999999', 400],
  ['leaves negative', 'GET', '/v1/log/leaves?start=-1&end=1', 400],
  ['inserts of a future epoch', 'GET', '/v1/epochs/99999/inserts', 404],
  ['inserts bad epoch', 'GET', '/v1/epochs/x/inserts', 400],
  ['inserts bad after', 'GET', '/v1/epochs/0/inserts?after=zz', 400],
  ['inserts limit too big', 'GET', '/v1/epochs/0/inserts?limit=10001', 400],
  ['inserts limit zero', 'GET', '/v1/epochs/0/inserts?limit=0', 400],
  ['lookup bad tenant', 'GET', '/v1/tenants/ACME/accounts/erin', 400],
  ['lookup bad account', 'GET', '/v1/tenants/acme/accounts/%20erin', 400],
  ['lookup long account', 'GET', `/v1/tenants/acme/accounts/${'a'.repeat(200)}`, 414],
  ['history without auth', 'GET', '/v1/tenants/acme/accounts/erin/history', 401],
  [
    'history garbage auth',
    'GET',
    '/v1/tenants/acme/accounts/erin/history',
    401,
    undefined,
    { authorization: 'KT-Device x' },
  ],
  [
    'history wrong admin token',
    'GET',
    '/v1/tenants/acme/accounts/erin/history',
    401,
    undefined,
    { authorization: 'Bearer nope-nope-nope-nope' },
  ],
  [
    'history stale signature',
    'GET',
    '/v1/tenants/acme/accounts/erin/history',
    401,
    undefined,
    { authorization: `KT-Device phone 1 ${'A'.repeat(86)}==` },
  ],
  [
    'history bad signature',
    'GET',
    '/v1/tenants/acme/accounts/erin/history',
    403,
    undefined,
    { authorization: `KT-Device phone ${Date.now()} ${'A'.repeat(86)}==` },
  ],
  ['update without auth', 'POST', devicesUrl, 401, { devices: [dev()] }],
  [
    'update wrong token',
    'POST',
    devicesUrl,
    401,
    { devices: [dev()] },
    { authorization: 'Bearer wrong-token-wrong-token' },
  ],
  [
    'update not JSON',
    'POST',
    devicesUrl,
    400,
    'not json',
    { ...admin, 'content-type': 'application/json' },
  ],
  ['update extra field', 'POST', devicesUrl, 400, { devices: [dev()], extra: 1 }, admin],
  ['update missing devices', 'POST', devicesUrl, 400, {}, admin],
  [
    'update bad key length',
    'POST',
    devicesUrl,
    400,
    { devices: [dev({ identityKey: 'AAAA' })] },
    admin,
  ],
  [
    'update bad key base64',
    'POST',
    devicesUrl,
    400,
    { devices: [dev({ identityKey: `${'*'.repeat(43)}=` })] },
    admin,
  ],
  [
    'update non-canonical base64',
    'POST',
    devicesUrl,
    400,
    { devices: [dev({ identityKey: `${'A'.repeat(42)}B=` })] },
    admin,
  ],
  ['update bad device id', 'POST', devicesUrl, 400, { devices: [dev({ id: 'no spaces' })] }, admin],
  ['update duplicate device ids', 'POST', devicesUrl, 400, { devices: [dev(), dev()] }, admin],
  ['update bad addedBy', 'POST', devicesUrl, 400, { devices: [dev({ addedBy: 'root' })] }, admin],
  [
    'update wrong addedBy for the grant',
    'POST',
    devicesUrl,
    400,
    { devices: [dev({ addedBy: 'device' })] },
    admin,
  ],
  ['update addedAt far away', 'POST', devicesUrl, 400, { devices: [dev({ addedAt: 1 })] }, admin],
  ['update negative version', 'POST', devicesUrl, 400, { version: -1, devices: [dev()] }, admin],
  ['update version conflict', 'POST', devicesUrl, 409, { version: 7, devices: [dev()] }, admin],
  [
    'update a kept device changed',
    'POST',
    devicesUrl,
    400,
    { devices: [{ ...deviceJson(deviceEntry(phone, 'admin')), addedAt: 5 }] },
    admin,
  ],
  [
    'update too many devices',
    'POST',
    devicesUrl,
    400,
    { devices: Array.from({ length: 65 }, (_, i) => dev({ id: `d${i}` })) },
    admin,
  ],
  [
    'update unknown account',
    'POST',
    '/v1/tenants/acme/accounts/nobody/devices',
    404,
    { devices: [dev()] },
    admin,
  ],
  [
    'update signature by an unknown device',
    'POST',
    devicesUrl,
    403,
    {
      devices: [dev({ addedBy: 'device' })],
      signature: { deviceId: 'ghost', signature: `${'A'.repeat(86)}==` },
    },
  ],
  [
    'update bad signature',
    'POST',
    devicesUrl,
    403,
    {
      devices: [dev({ addedBy: 'device' })],
      signature: { deviceId: 'phone', signature: `${'A'.repeat(86)}==` },
    },
  ],
  ['tenant without auth', 'POST', '/v1/tenants', 401, { id: 'new', name: 'New' }],
  ['tenant bad id', 'POST', '/v1/tenants', 400, { id: 'Bad_Id', name: 'x' }, admin],
  ['tenant empty name', 'POST', '/v1/tenants', 400, { id: 'ok', name: '' }, admin],
  ['tenant exists', 'POST', '/v1/tenants', 409, { id: 'acme', name: 'again' }, admin],
  [
    'account without auth',
    'POST',
    '/v1/tenants/acme/accounts',
    401,
    { id: 'new', displayName: 'n' },
  ],
  [
    'account in unknown tenant',
    'POST',
    '/v1/tenants/nope/accounts',
    404,
    { id: 'new', displayName: 'n' },
    admin,
  ],
  [
    'account bad id',
    'POST',
    '/v1/tenants/acme/accounts',
    400,
    { id: '-bad', displayName: 'n' },
    admin,
  ],
  [
    'account exists',
    'POST',
    '/v1/tenants/acme/accounts',
    409,
    { id: 'erin', displayName: 'n' },
    admin,
  ],
  ['unknown route', 'GET', '/v1/nothing', 404],
];

describe('bad input', () => {
  it.each(cases)('%s → %d', async (_name, method, url, status, body, headers) => {
    const before = await counts();
    const res = await h.app.inject({
      method,
      url,
      ...(headers ? { headers } : {}),
      ...(body !== undefined ? { payload: body as string } : {}),
    });
    expect(res.statusCode).toBe(status);
    const json = res.json<{ code: string; message: string }>();
    expect(json.code).toMatch(/^(ERR|FST)_[A-Z_]+$/);
    expect(json.message.length).toBeGreaterThan(0);
    expect(await counts()).toBe(before);
  });

  it('a replayed device signature (valid for another version) is refused', async () => {
    const list = [phoneEntry, deviceEntry(newDevice('tab'), 'device')];
    const sig = ed25519.sign(deviceListUpdateMessage(ref, 5, list), phone.secret);
    const before = await counts();
    const res = await h.app.inject({
      method: 'POST',
      url: devicesUrl,
      payload: {
        devices: list.map(deviceJson),
        signature: { deviceId: 'phone', signature: bytes.toBase64(sig) },
      },
    });
    expect(res.statusCode).toBe(403);
    expect(res.json<{ code: string }>().code).toBe('ERR_BAD_SIGNATURE');
    expect(await counts()).toBe(before);
  });
});
