/**
 * Identity's `DeviceDirectory` seam over the real key directory: first device, recovery,
 * replacement and idempotent removal each become verifiable versions.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { KtDeviceDirectory } from '../../src/kt/device-directory.ts';
import { startDirectory, clientFor, newDevice, type Harness } from './helpers.ts';

let h: Harness;
beforeAll(async () => {
  h = await startDirectory('kt_devdir');
  await h.tdb.db.query("INSERT INTO tenants (id, name) VALUES ('corp', 'Corp')");
});
afterAll(async () => {
  await h.close();
});

describe('KtDeviceDirectory', () => {
  it('publishes, keeps entries, records the grant kind, and removes idempotently', async () => {
    const dd = new KtDeviceDirectory(h.dir);
    const account = { tenantId: 'corp', accountId: 'u-123', username: 'ann@corp.example' };
    const ref = { tenant: 'corp', account: 'u-123' };
    const phone = newDevice('phone');
    const laptop = newDevice('laptop');
    const r0 = await dd.publishDevices(
      account,
      [{ deviceId: 'phone', identityKey: phone.publicKey }],
      {
        kind: 'first-device',
        sessionId: 's1',
      },
    );
    expect(r0.version).toBe(0);
    const r1 = await dd.publishDevices(
      account,
      [
        { deviceId: 'phone', identityKey: phone.publicKey },
        {
          deviceId: 'laptop',
          identityKey: laptop.publicKey,
          x25519Key: new Uint8Array(32).fill(9),
        },
      ],
      { kind: 'recovery', sessionId: 's2' },
    );
    expect(r1.version).toBe(1);
    await h.dir.waitForEpoch(Number(r1.reference.split(':')[1]));
    const got = await clientFor(h).lookup(ref);
    expect(got.devices.map((d) => [d.id, d.addedBy])).toEqual([
      ['laptop', 'recovery'],
      ['phone', 'admin'],
    ]);
    const r2 = await dd.removeAllDevices(account, { kind: 'admin', actor: 'scim' });
    const r3 = await dd.removeAllDevices(account, { kind: 'admin', actor: 'scim' });
    expect(r2.version).toBe(2);
    expect(r3).toEqual(r2);
    await h.dir.waitForEpoch(Number(r2.reference.split(':')[1]));
    expect((await clientFor(h).lookup(ref)).devices).toEqual([]);
  });
});
