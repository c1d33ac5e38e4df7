/**
 * Crash safety: the directory runs as a child process (main.ts) on PostgreSQL while updates
 * stream in; it is killed with SIGKILL at random points and restarted. Afterwards no
 * acknowledged update is lost, each is in the epoch its receipt named, and the whole log
 * replays and verifies.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@keytrail/server-kit/testing';
import { bytes } from '@keytrail/core';
import { DirectoryClient, encodeDeviceList } from '@keytrail/client';
import { startServer, auditReplay, httpGet, freePort, type ServerProcess } from './process.ts';
import { ADMIN, newDevice, deviceEntry, deviceJson } from './helpers.ts';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase('kt_crash', ['directory']);
});
afterAll(async () => {
  await tdb.drop();
});

interface Acked {
  account: string;
  version: number;
  epoch: number;
  value: Uint8Array;
}

describe('crash', () => {
  it(
    'loses no acknowledged update across SIGKILLs, and the log verifies',
    { timeout: 240_000 },
    async () => {
      const port = String(await freePort());
      const env = {
        DATABASE_URL: tdb.url,
        PORT: port,
        ADMIN_TOKEN: ADMIN,
        EPOCH_MS: '50',
        VRF_WORKERS: '1',
      };
      let server: ServerProcess = await startServer(env);
      const base = server.url;
      const auth = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
      await fetch(`${base}/v1/tenants`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ id: 'acme', name: 'Acme' }),
      });
      const accounts = ['a0', 'a1', 'a2', 'a3'];
      for (const id of accounts) {
        await fetch(`${base}/v1/tenants/acme/accounts`, {
          method: 'POST',
          headers: auth,
          body: JSON.stringify({ id, displayName: id }),
        });
      }
      const acked: Acked[] = [];
      let running = true;
      let n = 0;
      // Bounded per account. The bound kept histories under the former 255-probe limit of a
      // history proof; proofs are batched now, so it only keeps the run short.
      const writer = async (account: string): Promise<void> => {
        let written = 0;
        while (running && written++ < 150) {
          const list = [deviceEntry(newDevice(`w${n++}`), 'admin')];
          try {
            const res = await fetch(`${base}/v1/tenants/acme/accounts/${account}/devices`, {
              method: 'POST',
              headers: auth,
              body: JSON.stringify({ devices: list.map(deviceJson) }),
            });
            if (res.status === 202) {
              const r = (await res.json()) as { version: number; epoch: number };
              acked.push({
                account,
                version: r.version,
                epoch: r.epoch,
                value: encodeDeviceList(list),
              });
            }
          } catch {
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      };
      const writers = accounts.map((a) => writer(a));
      for (let round = 0; round < 3; round++) {
        await new Promise((r) => setTimeout(r, 800 + Math.random() * 1500));
        await server.kill('SIGKILL');
        await new Promise((r) => setTimeout(r, 100));
        server = await startServer(env);
      }
      await new Promise((r) => setTimeout(r, 1000));
      running = false;
      await Promise.all(writers);
      expect(acked.length).toBeGreaterThan(20);

      // Wait until every acknowledged epoch is published.
      const want = Math.max(...acked.map((a) => a.epoch));
      const get = httpGet(base);
      for (;;) {
        const text = (await get('/v1/checkpoint')).text;
        if (Number(text.split('\n')[1]) > want) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const config = JSON.parse((await get('/v1/config')).text) as {
        logKey: string;
        vrfPublicKey: string;
      };
      const size = await auditReplay(get, config.logKey);
      expect(size).toBeGreaterThan(want);

      const client = new DirectoryClient({
        baseUrl: base,
        trust: {
          logKey: config.logKey,
          vrfPublicKey: bytes.fromBase64(config.vrfPublicKey),
          maxCheckpointAgeMs: 120_000,
        },
        fetch: (url, init) => fetch(url, init),
        now: Date.now,
      });
      for (const account of accounts) {
        const history = await client.history(
          { tenant: 'acme', account },
          { authorization: `Bearer ${ADMIN}` },
        );
        const byVersion = new Map(history.map((v) => [v.version, v]));
        expect(history.map((v) => v.version)).toEqual([...history.keys()]);
        for (const a of acked.filter((x) => x.account === account)) {
          const got = byVersion.get(a.version);
          expect(got, `${account} v${a.version}`).toBeDefined();
          expect(bytes.toHex(got?.value ?? new Uint8Array())).toBe(bytes.toHex(a.value));
          expect(got?.epoch).toBe(a.epoch);
        }
        const latest = await client.lookup({ tenant: 'acme', account });
        expect(latest.version).toBe(history.length - 1);
      }
      await server.kill('SIGTERM');
    },
  );
});
