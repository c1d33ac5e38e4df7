/**
 * End to end over real PostgreSQL: publish, look up, verify; signed updates; history and owner
 * monitoring; consistency across checkpoints; the auditor endpoints replay to every root.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { bytes, epoch as epochRecord, prefixTree, merkle, note } from '@keytrail/core';
import { encodeDeviceList, ClientError } from '@keytrail/client';
import {
  startDirectory,
  clientFor,
  newDevice,
  deviceEntry,
  createAccount,
  publishAdmin,
  publishSigned,
  ownerAuth,
  ADMIN,
  type Harness,
} from './helpers.ts';
import type { Receipt } from '../../src/kt/writes.ts';

let h: Harness;
beforeAll(async () => {
  h = await startDirectory('kt_e2e');
});
afterAll(async () => {
  await h.close();
});

describe('publish, lookup, verify', () => {
  const alice = { tenant: 'acme', account: 'alice' };
  const phone = newDevice('phone');
  const laptop = newDevice('laptop');

  it('an absent account is proven absent', async () => {
    await expect(clientFor(h).lookup({ tenant: 'acme', account: 'nobody' })).rejects.toMatchObject({
      code: 'ERR_ACCOUNT_NOT_FOUND',
    });
  });

  it('publishes with an admin grant and a device signature; every version verifies', async () => {
    await createAccount(h.app, alice);
    const v0 = [deviceEntry(phone, 'admin')];
    const r0 = await publishAdmin(h.app, alice, v0);
    expect(r0.version).toBe(0);
    await h.dir.waitForEpoch(r0.epoch);
    const client = clientFor(h);
    const got0 = await client.lookup(alice);
    expect(got0.version).toBe(0);
    expect(got0.devices.map((d) => d.id)).toEqual(['phone']);
    expect(got0.epoch).toBeGreaterThanOrEqual(r0.epoch);

    const v1 = [...v0, deviceEntry(laptop, 'device')];
    const r1 = await publishSigned(h.app, alice, 1, v1, phone);
    expect(r1.status).toBe(202);
    await h.dir.waitForEpoch(r1.body['epoch'] as number);
    const got1 = await client.lookup(alice);
    expect(got1.version).toBe(1);
    expect(bytes.toHex(got1.value)).toBe(bytes.toHex(encodeDeviceList(v1)));

    // Versions 2 and 3 (the ladder of 3 probes 0, 1, 3 present and 4 absent).
    const v2 = v1.filter((d) => d.id !== 'phone');
    const r2 = await publishSigned(h.app, alice, 2, v2, laptop);
    expect(r2.status).toBe(202);
    const v3 = [...v2, deviceEntry(newDevice('tablet'), 'device')];
    const r3 = await publishSigned(h.app, alice, 3, v3, laptop);
    expect(r3.status).toBe(202);
    await h.dir.waitForEpoch(r3.body['epoch'] as number);
    const got3 = await client.lookup(alice);
    expect(got3.version).toBe(3);
    expect(got3.devices.map((d) => d.id).sort()).toEqual(['laptop', 'tablet']);

    const report = await client.monitor(
      alice,
      new Map([
        [0, encodeDeviceList(v0)],
        [1, encodeDeviceList(v1)],
        [2, encodeDeviceList(v2)],
        [3, encodeDeviceList(v3)],
      ]),
      ownerAuth(alice, laptop),
    );
    expect(report.alerts).toEqual([]);
    expect(report.greatestVersion).toBe(3);
    expect(report.versions.map((v) => v.version)).toEqual([0, 1, 2, 3]);

    // The owner that forgot nothing but never published version 3 gets exactly one alert.
    const partial = await client.monitor(
      alice,
      new Map([
        [0, encodeDeviceList(v0)],
        [1, encodeDeviceList(v1)],
        [2, encodeDeviceList(v2)],
      ]),
      ownerAuth(alice, laptop),
    );
    expect(partial.alerts.map((a) => [a.kind, a.version])).toEqual([['unknown-version', 3]]);
  });

  it('refuses a signature by a removed device, a replayed signature and a wrong version', async () => {
    const v = [deviceEntry(newDevice('evil'), 'device')];
    const removed = await publishSigned(h.app, alice, 4, v, phone);
    expect(removed.status).toBe(403);
    expect(removed.body['code']).toBe('ERR_FORBIDDEN');
    const stale = await publishSigned(h.app, alice, 2, v, laptop);
    expect(stale.status).toBe(409);
    expect(stale.body['code']).toBe('ERR_VERSION_CONFLICT');
  });

  it('history is owner-only', async () => {
    const res = await h.app.inject({
      method: 'GET',
      url: '/v1/tenants/acme/accounts/alice/history',
    });
    expect(res.statusCode).toBe(401);
    const wrong = await h.app.inject({
      method: 'GET',
      url: '/v1/tenants/acme/accounts/alice/history',
      headers: ownerAuth(alice, newDevice('laptop')),
    });
    expect(wrong.statusCode).toBe(403);
  });
});

describe('auditor endpoints', () => {
  it("replaying every epoch's inserts gives every record's root and digest, and the log verifies", async () => {
    const cp = await h.app.inject({ method: 'GET', url: '/v1/checkpoint' });
    expect(cp.headers['content-type']).toContain('text/plain');
    const opened = note.open(cp.body, [note.parseVerifierKey(h.dir.identity.logKey)]);
    const size = Number(opened.text.split('\n')[1]);
    const leaves = (
      await h.app.inject({ method: 'GET', url: `/v1/log/leaves?start=0&end=${size}` })
    ).json<{ leaves: string[] }>().leaves;
    expect(leaves).toHaveLength(size);
    const tree = new prefixTree.PrefixTree();
    const seen = new Set<string>();
    for (let e = 0; e < size; e++) {
      const rec = epochRecord.decodeEpochRecord(bytes.fromBase64(leaves[e] as string));
      expect(rec.epoch).toBe(e);
      const inserts: { label: Uint8Array; commitment: Uint8Array }[] = [];
      let after: string | null = null;
      do {
        const q: string = after ? `&after=${encodeURIComponent(after)}` : '';
        const page = (
          await h.app.inject({ method: 'GET', url: `/v1/epochs/${e}/inserts?limit=2${q}` })
        ).json<{
          inserts: { label: string; commitment: string }[];
          next: string | null;
        }>();
        for (const x of page.inserts)
          inserts.push({
            label: bytes.fromBase64(x.label),
            commitment: bytes.fromBase64(x.commitment),
          });
        after = page.next;
      } while (after);
      for (const x of inserts) {
        const id = bytes.toHex(x.label);
        expect(seen.has(id)).toBe(false);
        seen.add(id);
      }
      tree.insertBatch(inserts.map((x) => ({ key: x.label, commitment: x.commitment })));
      expect(bytes.toHex(tree.root())).toBe(bytes.toHex(rec.prefixRoot));
      expect(bytes.toHex(epochRecord.insertsDigest(inserts))).toBe(bytes.toHex(rec.insertsDigest));
      expect(rec.insertCount).toBe(inserts.length);
    }
    const hashes = leaves.map((l) => merkle.leafHash(bytes.fromBase64(l)));
    expect(bytes.toBase64(merkle.rootHash(hashes))).toBe(opened.text.split('\n')[2]);
    const proof = (
      await h.app.inject({ method: 'GET', url: `/v1/log/consistency?from=1&to=${size}` })
    ).json<{ proof: string[] }>();
    merkle.verifyConsistency(
      1,
      size,
      proof.proof.map((p) => bytes.fromBase64(p)),
      merkle.rootHash(hashes.slice(0, 1)),
      merkle.rootHash(hashes),
    );
  });

  it('a client that saw an earlier checkpoint demands and checks consistency', async () => {
    const client = clientFor(h);
    const first = await client.lookup({ tenant: 'acme', account: 'alice' });
    const bob = { tenant: 'acme', account: 'bob' };
    await createAccount(h.app, bob);
    const r = await publishAdmin(h.app, bob, [deviceEntry(newDevice('b1'), 'admin')]);
    await h.dir.waitForEpoch(r.epoch);
    const second = await client.lookup(bob);
    expect(second.epoch).toBeGreaterThan(first.epoch);
    expect(client.state?.size).toBe(second.epoch + 1);
    expect(second).not.toBeInstanceOf(ClientError);
  });
});

describe('concurrent writes (group commit)', () => {
  it('batches in flight together hold disjoint accounts and keep each account in order', async () => {
    const refs = Array.from({ length: 20 }, (_, i) => ({ tenant: 'acme', account: `order-${i}` }));
    for (const ref of refs) await createAccount(h.app, ref);
    const write = (ref: { tenant: string; account: string }, id: string): Promise<Receipt> =>
      h.dir.writes.submit({
        ref,
        devices: [
          {
            id,
            identityKey: crypto.getRandomValues(new Uint8Array(32)),
            addedAt: Date.now(),
            addedBy: 'admin',
          },
        ],
        credential: { kind: 'bearer', token: ADMIN },
      });
    // Batch 1 (accounts 0–9) is in flight when the next writes arrive: accounts 10–19 form a
    // second batch at once, while the second writes of 0–9 wait for batch 1 to finish.
    const first = refs.slice(0, 10).map((ref) => write(ref, 'a'));
    await new Promise((r) => setImmediate(r));
    const second = refs.map((ref) => write(ref, 'b'));
    const third = refs.slice(0, 10).map((ref) => write(ref, 'c'));
    const [r1, r2, r3] = await Promise.all([first, second, third].map((p) => Promise.all(p)));
    expect(r1?.map((r) => r.version)).toEqual(Array<number>(10).fill(0));
    expect(r2?.map((r) => r.version)).toEqual([
      ...Array<number>(10).fill(1),
      ...Array<number>(10).fill(0),
    ]);
    expect(r3?.map((r) => r.version)).toEqual(Array<number>(10).fill(2));
    await h.dir.waitForEpoch(
      Math.max(...[r1, r2, r3].flatMap((rs) => rs?.map((r) => r.epoch) ?? [])),
    );
    // Labels proven ahead as the writes committed were all used, none is kept.
    expect(h.dir.sequencer?.provenAhead).toBe(0);
    const client = clientFor(h);
    for (const [i, ref] of refs.entries()) {
      const found = await client.lookup(ref);
      if (found instanceof ClientError) throw found;
      expect(found.version).toBe(i < 10 ? 2 : 0);
      expect(found.devices.map((d) => d.id)).toEqual([i < 10 ? 'c' : 'b']);
    }
  });

  it('concurrent writes to one account get distinct consecutive versions; a contested version has one winner', async () => {
    const ref = { tenant: 'acme', account: 'frank' };
    await createAccount(h.app, ref);
    const receipts = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        publishAdmin(h.app, ref, [deviceEntry(newDevice(`c${i}`), 'admin')]),
      ),
    );
    expect(receipts.map((r) => r.version).sort((a, b) => a - b)).toEqual([...Array(30).keys()]);
    const contested = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        h.app.inject({
          method: 'POST',
          url: '/v1/tenants/acme/accounts/frank/devices',
          headers: { authorization: 'Bearer test-admin-token-0123456789' },
          payload: {
            version: 30,
            devices: [
              {
                id: `x${i}`,
                identityKey: bytes.toBase64(new Uint8Array(32).fill(i)),
                addedAt: Date.now(),
                addedBy: 'admin',
              },
            ],
          },
        }),
      ),
    );
    expect(contested.map((r) => r.statusCode).sort()).toEqual([202, ...Array<number>(9).fill(409)]);
    await h.dir.waitForEpoch(
      Math.max(
        ...receipts.map((r) => r.epoch),
        ...contested
          .filter((r) => r.statusCode === 202)
          .map((r) => r.json<{ epoch: number }>().epoch),
      ),
    );
    expect((await clientFor(h).lookup(ref)).version).toBe(30);
  });
});
