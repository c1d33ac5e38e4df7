/**
 * The embedded path, as a newcomer runs it: `main.ts` without DATABASE_URL starts on PGlite
 * in DATA_DIR, creates its keys, prints its address, verifier key, VRF key and a lookup
 * command; publish and lookup work; a restart keeps keys and data.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytes } from '@keytrail/core';
import { DirectoryClient } from '@keytrail/client';
import { startServer, freePort, type ServerProcess } from './process.ts';
import { ADMIN, newDevice, deviceEntry, deviceJson } from './helpers.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'keytrail-pglite-'));
let server: ServerProcess | undefined;
afterAll(async () => {
  await server?.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('PGlite (npm start without DATABASE_URL)', () => {
  it(
    'starts, publishes, looks up, and keeps its keys across a restart',
    { timeout: 180_000 },
    async () => {
      const env = {
        DATA_DIR: dataDir,
        PORT: String(await freePort()),
        ADMIN_TOKEN: ADMIN,
        EPOCH_MS: '50',
      };
      server = await startServer({ ...env, DATABASE_URL: '' });
      const printed = server.output.join('');
      expect(printed).toContain('PGlite in');
      const vkey = /verifier key:\s+(\S+)/.exec(printed)?.[1] ?? '';
      const vrfKey = /VRF public key:\s+(\S+)/.exec(printed)?.[1] ?? '';
      expect(vkey).toMatch(/^localhost\/keytrail-directory\+[0-9a-f]{8}\+/);
      expect(bytes.fromBase64(vrfKey)).toHaveLength(32);
      expect(printed).toMatch(/curl -s http:\/\/\S+\/v1\/tenants\/demo\/accounts\/alice/);

      const base = server.url;
      const auth = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
      expect(
        (
          await fetch(`${base}/v1/tenants`, {
            method: 'POST',
            headers: auth,
            body: JSON.stringify({ id: 'demo', name: 'Demo' }),
          })
        ).status,
      ).toBe(201);
      expect(
        (
          await fetch(`${base}/v1/tenants/demo/accounts`, {
            method: 'POST',
            headers: auth,
            body: JSON.stringify({ id: 'alice', displayName: 'alice@example.com' }),
          })
        ).status,
      ).toBe(201);
      const res = await fetch(`${base}/v1/tenants/demo/accounts/alice/devices`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ devices: [deviceJson(deviceEntry(newDevice('phone'), 'admin'))] }),
      });
      expect(res.status).toBe(202);
      const receipt = (await res.json()) as { epoch: number };
      const client = (): DirectoryClient =>
        new DirectoryClient({
          baseUrl: base,
          trust: {
            logKey: vkey,
            vrfPublicKey: bytes.fromBase64(vrfKey),
            maxCheckpointAgeMs: 120_000,
          },
          fetch: (url, init) => fetch(url, init),
          now: Date.now,
        });
      for (;;) {
        const size = Number((await (await fetch(`${base}/v1/checkpoint`)).text()).split('\n')[1]);
        if (size > receipt.epoch) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(
        (await client().lookup({ tenant: 'demo', account: 'alice' })).devices.map((d) => d.id),
      ).toEqual(['phone']);

      await server.kill('SIGTERM');
      server = await startServer({ ...env, DATABASE_URL: '' });
      expect(server.output.join('')).toContain(vkey);
      expect((await client().lookup({ tenant: 'demo', account: 'alice' })).version).toBe(0);
    },
  );
});
