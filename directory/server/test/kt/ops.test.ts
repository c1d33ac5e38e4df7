/**
 * The cosigning seam and witness quorum end to end, and the operational endpoints: a
 * `CheckpointCosigner` adds a C2SP `cosignature/v1` line; a client requiring that witness
 * accepts lookups, a client requiring an unknown witness rejects them with
 * ERR_CHECKPOINT_QUORUM. OpenAPI, health and metrics are served.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { cosignature, note } from '@keytrail/core';
import { DirectoryClient } from '@keytrail/client';
import type { CheckpointCosigner } from '../../src/kt/cosigner.ts';
import {
  startDirectory,
  injectFetch,
  createAccount,
  publishAdmin,
  newDevice,
  deviceEntry,
  type Harness,
} from './helpers.ts';

const witnessKey = crypto.getRandomValues(new Uint8Array(32));
const witness = cosignature.ed25519Signer('witness.example/w1', witnessKey);
let sizesSeen: number[] = [];
const cosigner: CheckpointCosigner = {
  cosign(req) {
    sizesSeen.push(req.size);
    if (req.size > 1) expect(req.consistencyProof(1).length).toBeGreaterThanOrEqual(0);
    const n = note.parse(req.checkpoint);
    const sig = cosignature.sign(n.text, Math.floor(Date.now() / 1000), witness);
    return Promise.resolve(note.addSignatures(req.checkpoint, [sig]));
  },
};

let h: Harness;
beforeAll(async () => {
  sizesSeen = [];
  h = await startDirectory('kt_ops', { cosigner });
});
afterAll(async () => {
  await h.close();
});

describe('witness cosignatures through the seam', () => {
  it('published checkpoints carry the cosignature; the quorum is enforced by the client', async () => {
    const ref = { tenant: 'acme', account: 'gina' };
    await createAccount(h.app, ref);
    await h.dir.waitForEpoch(
      (await publishAdmin(h.app, ref, [deviceEntry(newDevice('p'), 'admin')])).epoch,
    );
    expect(sizesSeen.length).toBeGreaterThan(1);
    const trust = (witnesses: string[]) => ({
      logKey: h.dir.identity.logKey,
      vrfPublicKey: h.dir.identity.vrfPublicKey,
      witnesses,
      quorum: 1,
      maxCheckpointAgeMs: 60_000,
    });
    const good = new DirectoryClient({
      baseUrl: 'http://d',
      trust: trust([cosignature.formatVerifierKey(witness.name, witness.publicKey)]),
      fetch: injectFetch(h.app),
      now: Date.now,
    });
    expect((await good.lookup(ref)).version).toBe(0);
    const other = cosignature.ed25519Signer(
      'witness.example/w2',
      crypto.getRandomValues(new Uint8Array(32)),
    );
    const strict = new DirectoryClient({
      baseUrl: 'http://d',
      trust: trust([cosignature.formatVerifierKey(other.name, other.publicKey)]),
      fetch: injectFetch(h.app),
      now: Date.now,
    });
    await expect(strict.lookup(ref)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT_QUORUM' });
    // Cosignatures older than the maximum age do not count.
    const late = new DirectoryClient({
      baseUrl: 'http://d',
      trust: {
        ...trust([cosignature.formatVerifierKey(witness.name, witness.publicKey)]),
        maxCheckpointAgeMs: 60_000,
      },
      fetch: injectFetch(h.app),
      now: () => Date.now() + 10 * 60_000,
    });
    await expect(late.lookup(ref)).rejects.toMatchObject({ code: 'ERR_CHECKPOINT_STALE' });
  });
});

describe('operations', () => {
  it('serves OpenAPI, health and Prometheus metrics', async () => {
    const docs = await h.app.inject({ method: 'GET', url: '/docs/json' });
    expect(docs.statusCode).toBe(200);
    const paths = Object.keys(docs.json<{ paths: Record<string, unknown> }>().paths);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/v1/checkpoint',
        '/v1/log/consistency',
        '/v1/tenants/{tenant}/accounts/{account}',
      ]),
    );
    const health = await h.app.inject({ method: 'GET', url: '/healthz' });
    expect(health.json()).toMatchObject({ status: 'ok' });
    const metrics = await h.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toContain('keytrail_epochs_total');
    expect(metrics.body).toContain('keytrail_updates_accepted_total');
    const config = await h.app.inject({ method: 'GET', url: '/v1/config' });
    expect(config.json()).toMatchObject({
      origin: 'localhost/keytrail-directory',
      logKey: h.dir.identity.logKey,
    });
  });
});
