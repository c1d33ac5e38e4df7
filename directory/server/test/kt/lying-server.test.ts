/**
 * A lying-server harness: every element of every proof (lookup, history, checkpoint,
 * consistency) is tampered with, one at a time, and the client must reject each with the
 * error code PROTOCOL.md §7 names for it.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import {
  bytes,
  note,
  checkpoint as cp,
  epoch as epochRecord,
  prefixTree,
  vrf,
} from '@keytrail/core';
import {
  decodeLookupProof,
  encodeLookupProof,
  decodeHistoryProof,
  encodeHistoryProof,
  encodeDeviceList,
  historyProbes,
  accountLabel,
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
import { flip, replaceAt, proofMutation, historyMutation, type Mutation } from './tamper.ts';

let h: Harness;
const alice = { tenant: 'acme', account: 'alice' };
let owner: TestDevice;
let lookupJson: Record<string, unknown>;
let historyJson: Record<string, unknown>;

beforeAll(async () => {
  h = await startDirectory('kt_lying');
  await createAccount(h.app, alice);
  owner = newDevice('owner');
  let epoch = 0;
  const ownerEntry = deviceEntry(owner, 'admin');
  for (let v = 0; v < 4; v++) {
    const devices = [ownerEntry, deviceEntry(newDevice(`d${v}`), 'admin')];
    epoch = (await publishAdmin(h.app, alice, devices)).epoch;
  }
  // Other accounts, so the proofs carry copath hashes (in a tree of alice's versions alone the
  // searched paths can cover every node, leaving no element to tamper with).
  for (let i = 0; i < 24; i++) {
    const other = { tenant: 'acme', account: `other-${i}` };
    await createAccount(h.app, other);
    epoch = Math.max(
      epoch,
      (await publishAdmin(h.app, other, [deviceEntry(newDevice('x'), 'admin')])).epoch,
    );
  }
  await h.dir.waitForEpoch(epoch);
  lookupJson = (
    await h.app.inject({ method: 'GET', url: '/v1/tenants/acme/accounts/alice' })
  ).json();
  historyJson = (
    await h.app.inject({
      method: 'GET',
      url: '/v1/tenants/acme/accounts/alice/history',
      headers: ownerAuth(alice, owner),
    })
  ).json();
});
afterAll(async () => {
  await h.close();
});

function lookupMutations(): Mutation[] {
  const p = decodeLookupProof(bytes.fromBase64(lookupJson['proof'] as string));
  expect(p.prefix.elements.length).toBeGreaterThan(0);
  const out: Mutation[] = [];
  p.vrfProofs.forEach((_, i) => {
    for (const at of [0, 40, 60]) {
      out.push(
        proofMutation(
          `vrf proof ${i} byte ${at}`,
          (q) => ({
            ...q,
            vrfProofs: replaceAt(q.vrfProofs, i, flip(q.vrfProofs[i] as Uint8Array, at)),
          }),
          'ERR_VRF_PROOF',
        ),
      );
    }
  });
  p.commitments.forEach((_, i) => {
    // The other present versions' commitments are bound through the prefix tree; the greatest
    // version's is not sent but recomputed from its opening and the value.
    const code = 'ERR_PREFIX_PROOF';
    out.push(
      proofMutation(
        `commitment ${i}`,
        (q) => ({
          ...q,
          commitments: replaceAt(q.commitments, i, flip(q.commitments[i] as Uint8Array)),
        }),
        code,
      ),
    );
  });
  out.push(
    proofMutation(
      'opening',
      (q) => ({ ...q, opening: flip(q.opening as Uint8Array) }),
      'ERR_PREFIX_PROOF',
    ),
  );
  p.prefix.elements.forEach((_, i) => {
    out.push(
      proofMutation(
        `prefix element ${i}`,
        (q) => ({
          ...q,
          prefix: {
            ...q.prefix,
            elements: replaceAt(q.prefix.elements, i, flip(q.prefix.elements[i] as Uint8Array, 7)),
          },
        }),
        'ERR_PREFIX_PROOF',
      ),
    );
  });
  out.push(
    proofMutation(
      'prefix element dropped',
      (q) => ({ ...q, prefix: { ...q.prefix, elements: q.prefix.elements.slice(1) } }),
      'ERR_PREFIX_PROOF',
    ),
  );
  p.prefix.results.forEach((r, i) => {
    out.push(
      proofMutation(
        `prefix result ${i} depth`,
        (q) => ({
          ...q,
          prefix: {
            ...q.prefix,
            results: replaceAt(q.prefix.results, i, { ...r, depth: r.depth + 1 }),
          },
        }),
        'ERR_PREFIX_PROOF',
      ),
    );
    const other: prefixTree.PrefixSearchResult =
      r.type === 'inclusion'
        ? { type: 'nonInclusionParent', depth: r.depth }
        : { type: 'inclusion', depth: r.depth };
    out.push(
      proofMutation(
        `prefix result ${i} type`,
        (q) => ({ ...q, prefix: { ...q.prefix, results: replaceAt(q.prefix.results, i, other) } }),
        'ERR_LADDER',
      ),
    );
  });
  out.push(
    proofMutation(
      'record prefix root',
      (q) => ({ ...q, record: { ...q.record, prefixRoot: flip(q.record.prefixRoot) } }),
      'ERR_PREFIX_PROOF',
    ),
  );
  out.push(
    proofMutation(
      'record timestamp',
      (q) => ({ ...q, record: { ...q.record, timestampMs: q.record.timestampMs + 1 } }),
      'ERR_LOG_INCLUSION',
    ),
  );
  out.push(
    proofMutation(
      'record insert count',
      (q) => ({ ...q, record: { ...q.record, insertCount: q.record.insertCount + 1 } }),
      'ERR_LOG_INCLUSION',
    ),
  );
  out.push(
    proofMutation(
      'record inserts digest',
      (q) => ({ ...q, record: { ...q.record, insertsDigest: flip(q.record.insertsDigest) } }),
      'ERR_LOG_INCLUSION',
    ),
  );
  out.push(
    proofMutation(
      'record epoch (an older epoch)',
      (q) => ({ ...q, record: { ...q.record, epoch: q.record.epoch - 1 } }),
      'ERR_LOG_INCLUSION',
    ),
  );
  p.logInclusion.forEach((_, i) => {
    out.push(
      proofMutation(
        `log inclusion ${i}`,
        (q) => ({
          ...q,
          logInclusion: replaceAt(q.logInclusion, i, flip(q.logInclusion[i] as Uint8Array)),
        }),
        'ERR_LOG_INCLUSION',
      ),
    );
  });
  out.push(
    proofMutation(
      'log inclusion extended',
      (q) => ({ ...q, logInclusion: [...q.logInclusion, new Uint8Array(32)] }),
      'ERR_LOG_INCLUSION',
    ),
  );
  // A claimed older greatest version: the probes no longer match.
  out.push([
    'proof truncated',
    (j) => ({ ...j, proof: (j['proof'] as string).slice(0, 100) }),
    'ERR_RESPONSE_MALFORMED',
  ]);
  out.push(['proof not base64', (j) => ({ ...j, proof: '%%%' }), 'ERR_RESPONSE_MALFORMED']);
  // A key swapped for one viewer: another device list under the real proof.
  const swapped = encodeDeviceList([deviceEntry(newDevice('mallory'), 'admin')]);
  out.push([
    'value swapped',
    (j) => ({ ...j, value: bytes.toBase64(swapped) }),
    'ERR_PREFIX_PROOF',
  ]);
  out.push(['value removed', (j) => ({ ...j, value: null }), 'ERR_RESPONSE_MALFORMED']);
  const value = bytes.fromBase64(lookupJson['value'] as string);
  out.push([
    'value not a device list',
    (j) => ({ ...j, value: bytes.toBase64(bytes.concatBytes(value, Uint8Array.of(0))) }),
    'ERR_PREFIX_PROOF',
  ]);
  // Checkpoint note: body and signature.
  const noteText = lookupJson['checkpoint'] as string;
  const [body, sigs] = noteText.split('\n\n') as [string, string];
  const parsed = cp.parse(`${body}\n`);
  out.push([
    'checkpoint root',
    (j) => ({ ...j, checkpoint: `${cp.format({ ...parsed, root: flip(parsed.root) })}\n${sigs}` }),
    'ERR_CHECKPOINT_SIGNATURE',
  ]);
  out.push([
    'checkpoint signature',
    (j) => {
      const n = note.parse(noteText);
      const sig = n.signatures[0];
      if (!sig) throw new Error('no signature');
      return {
        ...j,
        checkpoint: note.format({
          text: n.text,
          signatures: [{ ...sig, signature: flip(sig.signature, 5) }],
        }),
      };
    },
    'ERR_CHECKPOINT_SIGNATURE',
  ]);
  out.push([
    'checkpoint unsigned',
    (j) => ({ ...j, checkpoint: `${body}\n` }),
    'ERR_CHECKPOINT_SIGNATURE',
  ]);
  return out;
}

function serving(path: string, json: Record<string, unknown>): (p: string, b: string) => string {
  return (p, b) => (p === path ? JSON.stringify(json) : b);
}

describe('lying server: lookup', () => {
  it('the genuine answer verifies', async () => {
    const got = await clientFor(
      h,
      injectFetch(h.app, serving('/v1/tenants/acme/accounts/alice', lookupJson)),
    ).lookup(alice);
    expect(got.version).toBe(3);
  });

  it('every tampered element is rejected with its code', async () => {
    const mutations = lookupMutations();
    expect(mutations.length).toBeGreaterThan(35);
    for (const [name, mutate, code] of mutations) {
      const client = clientFor(
        h,
        injectFetch(h.app, serving('/v1/tenants/acme/accounts/alice', mutate(lookupJson))),
      );
      const err = await client.lookup(alice).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect({ name, code: (err as { code?: string } | undefined)?.code }).toEqual({ name, code });
    }
  });

  it('a stale checkpoint is rejected by age, a rolled-back or forked log as misbehaviour', async () => {
    const later = clientFor(h, undefined, () => Date.now() + 10 * 60_000);
    await expect(later.lookup(alice)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT_STALE' });
    // An epoch dated in the future (it could be replayed until then) is refused too.
    const earlier = clientFor(h, undefined, () => Date.now() - 10 * 60_000);
    await expect(earlier.lookup(alice)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT_STALE' });

    const client = clientFor(h);
    await client.lookup(alice);
    const settings = await h.dir.store.settings();
    if (!settings) throw new Error('no settings');
    const signer = note.ed25519Signer(settings.origin, settings.logSecret);
    const st = client.state;
    if (!st) throw new Error('no state');
    // The operator signs a different tree of the same size: a fork.
    const fork = note.sign(
      cp.format({
        origin: settings.origin,
        size: st.size,
        root: new Uint8Array(32).fill(7),
        extensions: [],
      }),
      [signer],
    );
    await expect(client.acceptCheckpoint(fork)).rejects.toMatchObject({
      code: 'ERR_LOG_INCONSISTENT',
    });
    // A smaller tree than already seen: a rollback (an old checkpoint replayed).
    const first = (await h.dir.store.checkpoint(1))?.note ?? '';
    await expect(client.acceptCheckpoint(first)).rejects.toMatchObject({
      code: 'ERR_LOG_ROLLBACK',
    });
    // A larger tree whose consistency proof is tampered with.
    const bob = { tenant: 'acme', account: 'bob' };
    await createAccount(h.app, bob);
    await h.dir.waitForEpoch(
      (await publishAdmin(h.app, bob, [deviceEntry(newDevice('b'), 'admin')])).epoch,
    );
    const liar = clientFor(
      h,
      injectFetch(h.app, (p, b) =>
        p === '/v1/log/consistency'
          ? JSON.stringify({
              proof: (JSON.parse(b) as { proof: string[] }).proof.map((x) =>
                bytes.toBase64(flip(bytes.fromBase64(x))),
              ),
            })
          : b,
      ),
    );
    await liar.acceptCheckpoint(first);
    await expect(liar.lookup(bob)).rejects.toMatchObject({ code: 'ERR_LOG_INCONSISTENT' });
  });

  it('the record of an older epoch under the current checkpoint is rejected (stale value)', async () => {
    const p = decodeLookupProof(bytes.fromBase64(lookupJson['proof'] as string));
    const [older] = await h.dir.store.records(p.record.epoch - 1, p.record.epoch);
    if (!older) throw new Error('no record');
    const stale = { ...p, record: epochRecord.decodeEpochRecord(older) };
    const client = clientFor(
      h,
      injectFetch(
        h.app,
        serving('/v1/tenants/acme/accounts/alice', {
          ...lookupJson,
          proof: bytes.toBase64(encodeLookupProof(stale)),
        }),
      ),
    );
    await expect(client.lookup(alice)).rejects.toMatchObject({
      code: expect.stringMatching(/^ERR_(PREFIX_PROOF|LOG_INCLUSION)$/),
    });
  });
});

describe('lying server: owner history', () => {
  it('every tampered element is rejected with its code', async () => {
    const p = decodeHistoryProof(bytes.fromBase64(historyJson['proof'] as string));
    const muts: Mutation[] = [];
    p.entries.forEach((e, i) => {
      muts.push(
        historyMutation(
          `entry ${i} opening`,
          (q) => ({ ...q, entries: replaceAt(q.entries, i, { ...e, opening: flip(e.opening) }) }),
          'ERR_PREFIX_PROOF',
        ),
      );
      muts.push(
        historyMutation(
          `entry ${i} value`,
          (q) => ({ ...q, entries: replaceAt(q.entries, i, { ...e, value: flip(e.value, 9) }) }),
          'ERR_PREFIX_PROOF',
        ),
      );
    });
    // A version hidden from its owner: the liar lists 0..2 and proves the rest of the ladder
    // of 2 (version 3 absent) against the real tree, as a real server would have to.
    const hidden = p.entries.slice(0, 3);
    const probes = historyProbes(hidden.map((e) => e.version));
    const label = accountLabel(alice);
    const proofs = await h.dir.prover.prove(probes.map((x) => vrf.vrfInput(label, x.version)));
    const keys = proofs.map((x) => vrf.proofToHash(x).slice(0, 32));
    const liarProof = encodeHistoryProof({
      ...p,
      entries: hidden,
      vrfProofs: proofs,
      prefixes: [h.dir.state.tree.proveMany(keys)],
    });
    muts.push([
      'a version hidden',
      (j) => ({ ...j, proof: bytes.toBase64(liarProof) }),
      'ERR_LADDER',
    ]);
    p.vrfProofs.forEach((_, i) => {
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
    });
    expect(p.prefixes).toHaveLength(1);
    const [prefix] = p.prefixes as [prefixTree.PrefixProof];
    prefix.elements.forEach((_, i) => {
      muts.push(
        historyMutation(
          `prefix element ${i}`,
          (q) => ({
            ...q,
            prefixes: [
              {
                ...prefix,
                elements: replaceAt(prefix.elements, i, flip(prefix.elements[i] as Uint8Array)),
              },
            ],
          }),
          'ERR_PREFIX_PROOF',
        ),
      );
    });
    p.logInclusion.forEach((_, i) => {
      muts.push(
        historyMutation(
          `log inclusion ${i}`,
          (q) => ({
            ...q,
            logInclusion: replaceAt(q.logInclusion, i, flip(q.logInclusion[i] as Uint8Array)),
          }),
          'ERR_LOG_INCLUSION',
        ),
      );
    });
    const path = '/v1/tenants/acme/accounts/alice/history';
    const genuine = await clientFor(h, injectFetch(h.app, serving(path, historyJson))).history(
      alice,
      ownerAuth(alice, owner),
    );
    expect(genuine.map((v) => v.version)).toEqual([0, 1, 2, 3]);
    for (const [name, mutate, code] of muts) {
      const client = clientFor(h, injectFetch(h.app, serving(path, mutate(historyJson))));
      const err = await client.history(alice, ownerAuth(alice, owner)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect({ name, code: (err as { code?: string } | undefined)?.code }).toEqual({ name, code });
    }
  });
});
