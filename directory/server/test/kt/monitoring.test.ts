/**
 * Owner monitoring catches a version inserted behind the owner's back, whatever its number.
 * The attacker writes straight into storage (bypassing authorisation), including the ladder
 * versions a viewer's lookup needs, so that viewers really are served the forged device list;
 * the owner's monitor must alert. A lone forged version without that support is served to no
 * viewer, and the owner still sees it listed.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { bytes, vrf } from '@keytrail/core';
import {
  encodeDeviceList,
  lookupProbes,
  accountLabel,
  encodeLookupProof,
  decodeLookupProof,
  decodeHistoryProof,
  encodeHistoryProof,
  historyProbes,
  type AccountRef,
} from '@keytrail/client';
import { EPOCH_LOCK } from '../../src/kt/store.ts';
import {
  startDirectory,
  clientFor,
  injectFetch,
  newDevice,
  deviceEntry,
  createAccount,
  publishAdmin,
  ownerAuth,
  type Harness,
  type TestDevice,
} from './helpers.ts';

let h: Harness;
beforeAll(async () => {
  h = await startDirectory('kt_monitor');
});
afterAll(async () => {
  await h.close();
});

async function ownerWithFourVersions(
  ref: AccountRef,
): Promise<{ owner: TestDevice; known: Map<number, Uint8Array> }> {
  await createAccount(h.app, ref);
  const owner = newDevice('owner');
  const ownerEntry = deviceEntry(owner, 'admin');
  const known = new Map<number, Uint8Array>();
  let epoch = 0;
  for (let v = 0; v < 4; v++) {
    const list = [ownerEntry, deviceEntry(newDevice(`d${v}`), 'admin')];
    const r = await publishAdmin(h.app, ref, list);
    known.set(r.version, encodeDeviceList(list));
    epoch = r.epoch;
  }
  await h.dir.waitForEpoch(epoch);
  return { owner, known };
}

/** Writes versions straight into storage, as a compromised operator would. */
async function forge(ref: AccountRef, versions: number[], value: Uint8Array): Promise<number> {
  const epoch = await h.tdb.db.transaction(async (q) => {
    await q.query('SELECT pg_advisory_xact_lock_shared($1)', [EPOCH_LOCK]);
    const s = await q.query<{ open_epoch: number }>('SELECT open_epoch FROM kt_settings');
    const e = s.rows[0]?.open_epoch ?? 0;
    for (const v of versions) {
      await q.query(
        `INSERT INTO kt_versions (tenant_id, account_id, version, epoch, value, auth_kind, auth_actor)
         VALUES ($1, $2, $3, $4, $5, 'admin', 'attacker')`,
        [ref.tenant, ref.account, v, e, value],
      );
    }
    return e;
  });
  h.dir.sequencer?.notify();
  await h.dir.waitForEpoch(epoch);
  return epoch;
}

/** A lying lookup answer claiming greatest version `n`, proven against the real tree. */
async function liarServing(
  ref: AccountRef,
  n: number,
): Promise<(path: string, body: string) => string> {
  const path = `/v1/tenants/${ref.tenant}/accounts/${ref.account}`;
  const genuine = (await h.app.inject({ method: 'GET', url: path })).json<
    Record<string, unknown>
  >();
  const p = decodeLookupProof(bytes.fromBase64(genuine['proof'] as string));
  const probes = lookupProbes(n);
  const epoch = h.dir.state.snapshot?.epoch ?? 0;
  const rows = await h.dir.store.versions(
    ref.tenant,
    ref.account,
    epoch,
    probes.map((x) => x.version),
  );
  const byVersion = new Map(rows.map((r) => [r.version, r]));
  const proofs = await h.dir.prover.prove(
    probes.map((x) => vrf.vrfInput(accountLabel(ref), x.version)),
  );
  const keys = proofs.map((x) => vrf.proofToHash(x).slice(0, 32));
  const top = byVersion.get(n);
  if (!top) throw new Error('forged version missing');
  const proof = encodeLookupProof({
    ...p,
    version: n,
    vrfProofs: proofs,
    commitments: probes
      .filter((x) => x.included && x.version !== n)
      .map((x) => byVersion.get(x.version)?.commitment ?? new Uint8Array(32)),
    opening: top.opening,
    prefix: h.dir.state.tree.proveMany(keys),
  });
  const json = JSON.stringify({
    ...genuine,
    version: n,
    proof: bytes.toBase64(proof),
    value: bytes.toBase64(top.value),
  });
  return (requested, body) => (requested === path ? json : body);
}

describe('owner monitoring', () => {
  for (const n of [4, 5, 7, 8, 100, 1000, 2 ** 20 + 3]) {
    it(`catches a forged version ${n} that viewers are served`, async () => {
      const ref = { tenant: 'acme', account: `victim-${n}` };
      const { owner, known } = await ownerWithFourVersions(ref);
      const mallory = encodeDeviceList([deviceEntry(newDevice('mallory'), 'admin')]);
      // Every version the viewer's ladder for n needs present, beyond the owner's 0..3.
      const support = lookupProbes(n)
        .filter((p) => p.included && p.version > 3)
        .map((p) => p.version);
      await forge(ref, support, mallory);

      // The operator serves the forged list to a viewer; every proof holds.
      const viewer = await clientFor(h, injectFetch(h.app, await liarServing(ref, n))).lookup(ref);
      expect(viewer.version).toBe(n);
      expect(bytes.toHex(viewer.value)).toBe(bytes.toHex(mallory));

      const report = await clientFor(h).monitor(ref, known, ownerAuth(ref, owner));
      const flagged = report.alerts
        .filter((a) => a.kind === 'unknown-version')
        .map((a) => a.version);
      expect(flagged).toContain(n);
      expect(flagged).toEqual(support);
      expect(report.alerts.every((a) => a.kind === 'unknown-version')).toBe(true);

      // Nor can the operator hide them from the owner: proving 0..3 and the rest of the ladder
      // of 3 absent fails on a version the viewer's ladder needed present.
      const histPath = `/v1/tenants/${ref.tenant}/accounts/${ref.account}/history`;
      const auth = ownerAuth(ref, owner);
      const genuine = (await h.app.inject({ method: 'GET', url: histPath, headers: auth })).json<
        Record<string, unknown>
      >();
      const hp = decodeHistoryProof(bytes.fromBase64(genuine['proof'] as string));
      const entries = hp.entries.filter((e) => e.version <= 3);
      const probes = historyProbes(entries.map((e) => e.version));
      const proofs = await h.dir.prover.prove(
        probes.map((x) => vrf.vrfInput(accountLabel(ref), x.version)),
      );
      const hidden = encodeHistoryProof({
        ...hp,
        entries,
        vrfProofs: proofs,
        prefixes: [h.dir.state.tree.proveMany(proofs.map((x) => vrf.proofToHash(x).slice(0, 32)))],
      });
      const liar = clientFor(
        h,
        injectFetch(h.app, (path, body) =>
          path === histPath ? JSON.stringify({ ...genuine, proof: bytes.toBase64(hidden) }) : body,
        ),
      );
      await expect(liar.monitor(ref, known, auth)).rejects.toMatchObject({ code: 'ERR_LADDER' });
    });
  }

  it('a lone forged version is served to no viewer and still listed to the owner', async () => {
    const ref = { tenant: 'acme', account: 'victim-lone' };
    const { owner, known } = await ownerWithFourVersions(ref);
    const mallory = encodeDeviceList([deviceEntry(newDevice('mallory'), 'admin')]);
    await forge(ref, [1000], mallory);
    // The directory's own lookup still proves version 3 …
    expect((await clientFor(h).lookup(ref)).version).toBe(3);
    // … and a liar claiming 1000 cannot prove the ladder (version 7 is absent).
    const genuine = (
      await h.app.inject({ method: 'GET', url: `/v1/tenants/acme/accounts/${ref.account}` })
    ).json<Record<string, unknown>>();
    const p = decodeLookupProof(bytes.fromBase64(genuine['proof'] as string));
    const probes = lookupProbes(1000);
    const proofs = await h.dir.prover.prove(
      probes.map((x) => vrf.vrfInput(accountLabel(ref), x.version)),
    );
    const keys = proofs.map((x) => vrf.proofToHash(x).slice(0, 32));
    const forged = encodeLookupProof({
      ...p,
      version: 1000,
      vrfProofs: proofs,
      commitments: probes
        .filter((x) => x.included && x.version !== 1000)
        .map(() => new Uint8Array(32)),
      prefix: h.dir.state.tree.proveMany(keys),
    });
    const liar = clientFor(
      h,
      injectFetch(h.app, (path, body) =>
        path.endsWith('/victim-lone')
          ? JSON.stringify({
              ...genuine,
              proof: bytes.toBase64(forged),
              value: bytes.toBase64(mallory),
            })
          : body,
      ),
    );
    await expect(liar.lookup(ref)).rejects.toMatchObject({ code: 'ERR_LADDER' });
    const report = await clientFor(h).monitor(ref, known, ownerAuth(ref, owner));
    expect(report.alerts.map((a) => [a.kind, a.version])).toEqual([['unknown-version', 1000]]);
  });

  it('reports a version the owner published that the directory lost, and a changed value', async () => {
    const ref = { tenant: 'acme', account: 'victim-lost' };
    const { owner, known } = await ownerWithFourVersions(ref);
    const mine = new Map(known);
    mine.set(4, encodeDeviceList([]));
    mine.set(2, encodeDeviceList([deviceEntry(newDevice('other'), 'admin')]));
    const report = await clientFor(h).monitor(ref, mine, ownerAuth(ref, owner));
    expect(report.alerts.map((a) => [a.kind, a.version])).toEqual([
      ['value-mismatch', 2],
      ['missing-version', 4],
    ]);
  });
});
