/**
 * Owner histories longer than one prefix proof can carry (PROTOCOL.md §6): an account with 300
 * versions, written through the write API, gets a history proof in two batches (255 + 51
 * probes) against the one prefix root; it verifies and monitoring raises no alert. The
 * lying-server pattern (lying-server.test.ts) then tampers with the second batch and with what
 * it covers, and the client must reject each with the code PROTOCOL.md §7 names.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { bytes, prefixTree, vrf } from '@keytrail/core';
import {
  accountLabel,
  decodeHistoryProof,
  encodeDeviceList,
  encodeHistoryProof,
  historyBatches,
  historyProbes,
  type ClientErrorCode,
  type HistoryEntry,
} from '@keytrail/client';
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
import { flip, replaceAt, historyMutation, type Mutation } from './tamper.ts';

/** More versions than one 255-probe prefix proof covers. */
const VERSIONS = 300;

let h: Harness;
const ref = { tenant: 'acme', account: 'long' };
const path = `/v1/tenants/${ref.tenant}/accounts/${ref.account}/history`;
let owner: TestDevice;
const known = new Map<number, Uint8Array>();
let historyJson: Record<string, unknown>;

beforeAll(async () => {
  h = await startDirectory('kt_long_history');
  await createAccount(h.app, ref);
  owner = newDevice('owner');
  const ownerEntry = deviceEntry(owner, 'admin');
  let epoch = 0;
  // Fifty writes at a time: the write path commits concurrent updates together, in order.
  for (let start = 0; start < VERSIONS; start += 50) {
    const receipts = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const list = [ownerEntry, deviceEntry(newDevice(`d${start + i}`), 'admin')];
        const r = await publishAdmin(h.app, ref, list);
        known.set(r.version, encodeDeviceList(list));
        return r;
      }),
    );
    epoch = Math.max(epoch, ...receipts.map((r) => r.epoch));
  }
  expect([...known.keys()].sort((a, b) => a - b)).toEqual(
    Array.from({ length: VERSIONS }, (_, v) => v),
  );
  await h.dir.waitForEpoch(epoch);
  const res = await h.app.inject({ method: 'GET', url: path, headers: ownerAuth(ref, owner) });
  expect(res.statusCode).toBe(200);
  historyJson = res.json();
}, 120_000);
afterAll(async () => {
  await h.close();
});

function serving(json: Record<string, unknown>): (p: string, b: string) => string {
  return (p, b) => (p === path ? JSON.stringify(json) : b);
}

describe('an owner history longer than one prefix proof', () => {
  it('is proven in batches of 255 probes against one root, verifies, and monitors clean', async () => {
    const p = decodeHistoryProof(bytes.fromBase64(historyJson['proof'] as string));
    const probes = historyProbes(p.entries.map((e) => e.version));
    expect(p.entries).toHaveLength(VERSIONS);
    // 300 listed versions and the absent rest of the ladder of 299: 300, 301, 303, 319, 383, 511.
    expect(probes.filter((x) => !x.included).map((x) => x.version)).toEqual([
      300, 301, 303, 319, 383, 511,
    ]);
    expect(p.prefixes.map((x) => x.results.length)).toEqual([255, 51]);

    const report = await clientFor(h).monitor(ref, known, ownerAuth(ref, owner));
    expect(report.alerts).toEqual([]);
    expect(report.greatestVersion).toBe(VERSIONS - 1);
    expect(report.versions).toHaveLength(VERSIONS);
    for (const v of report.versions) {
      expect(bytes.toHex(v.value)).toBe(bytes.toHex(known.get(v.version) ?? new Uint8Array()));
    }

    // A version the owner did not publish, in the second batch, is still caught.
    const mine = new Map(known);
    mine.delete(280);
    const flagged = await clientFor(h).monitor(ref, mine, ownerAuth(ref, owner));
    expect(flagged.alerts.map((a) => [a.kind, a.version])).toEqual([['unknown-version', 280]]);
  });
});

/** Replaces the second batch's prefix proof. */
function secondBatch(
  name: string,
  f: (b: prefixTree.PrefixProof) => prefixTree.PrefixProof,
  code: ClientErrorCode,
): Mutation {
  return historyMutation(
    name,
    (q) => ({
      ...q,
      prefixes: replaceAt(q.prefixes, 1, f(q.prefixes[1] as prefixTree.PrefixProof)),
    }),
    code,
  );
}

describe('lying server: the second batch of a long owner history', () => {
  it('every tampered element is rejected with its code', async () => {
    const p = decodeHistoryProof(bytes.fromBase64(historyJson['proof'] as string));
    const b1 = p.prefixes[1] as prefixTree.PrefixProof;
    expect(b1.elements.length).toBeGreaterThan(2);
    const muts: Mutation[] = [];
    const last = b1.elements.length - 1;
    for (const i of [0, last >> 1, last]) {
      muts.push(
        secondBatch(
          `batch 1 prefix element ${i}`,
          (b) => ({
            ...b,
            elements: replaceAt(b.elements, i, flip(b.elements[i] as Uint8Array, 3)),
          }),
          'ERR_PREFIX_PROOF',
        ),
      );
    }
    muts.push(
      secondBatch(
        'batch 1 prefix element dropped',
        (b) => ({ ...b, elements: b.elements.slice(1) }),
        'ERR_PREFIX_PROOF',
      ),
    );
    // Probe 255 + 20 is version 275 (present); probe 255 + 46 is version 301 (absent).
    for (const i of [20, 46]) {
      const r = b1.results[i] as prefixTree.PrefixSearchResult;
      muts.push(
        secondBatch(
          `batch 1 result ${i} depth`,
          (b) => ({ ...b, results: replaceAt(b.results, i, { ...r, depth: r.depth + 1 }) }),
          'ERR_PREFIX_PROOF',
        ),
      );
      const other: prefixTree.PrefixSearchResult =
        r.type === 'inclusion'
          ? { type: 'nonInclusionParent', depth: r.depth }
          : { type: 'inclusion', depth: r.depth };
      muts.push(
        secondBatch(
          `batch 1 result ${i} type`,
          (b) => ({ ...b, results: replaceAt(b.results, i, other) }),
          'ERR_LADDER',
        ),
      );
    }
    // The second batch proven against a later tree (another account's version added): it
    // leads to another root than the first batch does.
    const later = new prefixTree.PrefixTree();
    const keys = p.vrfProofs.map((x) => vrf.proofToHash(x).slice(0, vrf.KT_OUTPUT_SIZE));
    const probes = historyProbes(p.entries.map((e) => e.version));
    const label = accountLabel(ref);
    later.insertBatch(
      probes.flatMap((x, i) => {
        const key = keys[i] as Uint8Array;
        const commitment = h.dir.state.tree.get(key);
        return x.included && commitment ? [{ key, commitment }] : [];
      }),
    );
    expect(later.size).toBe(VERSIONS);
    later.insert(new Uint8Array(32).fill(0xee), new Uint8Array(32));
    muts.push(
      secondBatch(
        'batch 1 from another tree',
        () => later.proveMany(historyBatches(keys)[1] ?? []),
        'ERR_PREFIX_PROOF',
      ),
    );
    // What the second batch covers: an entry's value and opening, a VRF proof.
    for (const [name, f] of [
      ['value', (e: HistoryEntry) => ({ ...e, value: flip(e.value, 9) })],
      ['opening', (e: HistoryEntry) => ({ ...e, opening: flip(e.opening) })],
    ] as const) {
      muts.push(
        historyMutation(
          `entry 280 ${name}`,
          (q) => ({ ...q, entries: replaceAt(q.entries, 280, f(q.entries[280] as HistoryEntry)) }),
          'ERR_PREFIX_PROOF',
        ),
      );
    }
    for (const i of [270, 303]) {
      muts.push(
        historyMutation(
          `vrf proof ${i}`,
          (q) => ({
            ...q,
            vrfProofs: replaceAt(q.vrfProofs, i, flip(q.vrfProofs[i] as Uint8Array, 45)),
          }),
          'ERR_VRF_PROOF',
        ),
      );
    }
    // The greatest version hidden: the liar lists 0..298 and proves the ladder of 298 (299
    // absent, a probe of the second batch) against the real tree, as a real server would have to.
    const hidden = p.entries.slice(0, VERSIONS - 1);
    const hiddenProbes = historyProbes(hidden.map((e) => e.version));
    const proofs = await h.dir.prover.prove(
      hiddenProbes.map((x) => vrf.vrfInput(label, x.version)),
    );
    const hiddenKeys = proofs.map((x) => vrf.proofToHash(x).slice(0, vrf.KT_OUTPUT_SIZE));
    const liarProof = encodeHistoryProof({
      ...p,
      entries: hidden,
      vrfProofs: proofs,
      prefixes: historyBatches(hiddenKeys).map((b) => h.dir.state.tree.proveMany(b)),
    });
    muts.push([
      'the greatest version hidden',
      (j) => ({ ...j, proof: bytes.toBase64(liarProof) }),
      'ERR_LADDER',
    ]);
    // The wire cut in the middle of the second batch.
    const wire = bytes.fromBase64(historyJson['proof'] as string);
    const cut =
      wire.length - (1 + 32 * p.logInclusion.length) - (prefixTree.encodeProof(b1).length >> 1);
    muts.push([
      'proof truncated inside the second batch',
      (j) => ({ ...j, proof: bytes.toBase64(wire.subarray(0, cut)) }),
      'ERR_RESPONSE_MALFORMED',
    ]);

    const genuine = await clientFor(h, injectFetch(h.app, serving(historyJson))).history(
      ref,
      ownerAuth(ref, owner),
    );
    expect(genuine).toHaveLength(VERSIONS);
    for (const [name, mutate, code] of muts) {
      const client = clientFor(h, injectFetch(h.app, serving(mutate(historyJson))));
      const err = await client.history(ref, ownerAuth(ref, owner)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect({ name, code: (err as { code?: string } | undefined)?.code }).toEqual({ name, code });
    }
  }, 120_000);
});
