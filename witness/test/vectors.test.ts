/**
 * Interoperability with independently built logs and witnesses, from ../shared/vectors/tlog.json
 * (copied into test/vectors/tlog-witness.json with each upstream source):
 * - torchwood's litewitness 9-step scenario over a Sigsum-style log (gentest/sigsum.go);
 * - transparency-dev/witness's "monkeys" 5 → 8 consistency proof;
 * - the 16 checkpoints of Tessera's testdata log;
 * - a known-answer cosignature from sigsum-go (seed 0x11, timestamp 1234).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytes, checkpoint, merkle, note } from '@keytrail/core';
import { createTestDatabase, type TestDatabase } from '@keytrail/server-kit/testing';
import {
  Witness,
  MemoryWitnessStore,
  formatAddCheckpointRequest,
  parseWitnessKey,
  witnessKeyFromSeed,
} from '../src/index.ts';
import { post, verifyCosignature, witnessFixture } from './helpers.ts';

interface Step {
  desc: string;
  step: number;
  request_body: string;
  want_status: number;
  litewitness_status: number;
  litewitness_assert: string;
}
const V = JSON.parse(
  readFileSync(new URL('./vectors/tlog-witness.json', import.meta.url), 'utf8'),
) as {
  litewitness_scenario: {
    setup: {
      log_vkey: string;
      log_origin: string;
      witness_name: string;
      witness_public_key_hex: string;
      witness_cosig_vkey_derived: string;
      witness_ssh_private_key_pem: string;
    };
    steps: Step[];
  };
  monkeys_5_to_8: {
    vkey: string;
    notes: string[];
    consistency_proof_5_to_8_hex: string[];
    add_checkpoint_request_body: string;
    witness_key_in_test: { private_go_format: string; cosignature_v1_vkey_derived: string };
  };
  cosignature_known_answer: {
    cosigner_name: string;
    vkey_0x04: string;
    checkpoint_text: string;
    signature_line: string;
    timestamp: number;
    ed25519_seed_hex: string;
  };
  tessera_testdata_log: { vkey: string; entries_utf8_in_order: string[]; notes_by_size: string[] };
};

/** The Ed25519 seed inside an unencrypted OpenSSH private key: seed || pk follows `00000040`. */
function opensshSeed(pem: string, publicKey: Uint8Array): Uint8Array {
  const b64 = pem
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('-----'))
    .join('');
  const raw = bytes.fromBase64(b64);
  const hex = bytes.toHex(raw);
  const at = hex.lastIndexOf(bytes.toHex(publicKey)) / 2;
  expect(bytes.toHex(raw.slice(at - 36, at - 32))).toBe('00000040');
  return raw.slice(at - 32, at);
}

describe('cosignature known answer (sigsum-go)', () => {
  it('signs exactly the published line at timestamp 1234', async () => {
    const ka = V.cosignature_known_answer;
    const key = witnessKeyFromSeed(ka.cosigner_name, bytes.fromHex(ka.ed25519_seed_hex));
    expect(key.vkey).toBe(ka.vkey_0x04);
    const store = new MemoryWitnessStore();
    const origin = checkpoint.parse(ka.checkpoint_text).origin;
    // The checkpoint needs a log signature to be witnessed: sign it with a throwaway log key.
    const logSigner = note.ed25519Signer(origin, new Uint8Array(32).fill(5));
    await store.addLog({ origin, vkeys: [note.formatVerifierKey(origin, logSigner.publicKey)] });
    const witness = new Witness({ store, key, now: () => ka.timestamp * 1000 });
    const body = formatAddCheckpointRequest(0, [], note.sign(ka.checkpoint_text, [logSigner]));
    const result = await witness.addCheckpoint(bytes.utf8(body));
    expect(result.cosignature).toBe(ka.signature_line);
    expect(result.timestamp).toBe(1234);
  });
});

describe('litewitness scenario (torchwood, Sigsum-style log)', () => {
  const s = V.litewitness_scenario.setup;
  const seed = opensshSeed(s.witness_ssh_private_key_pem, bytes.fromHex(s.witness_public_key_hex));
  const key = witnessKeyFromSeed(s.witness_name, seed);
  let fx: Awaited<ReturnType<typeof witnessFixture>>;

  beforeAll(async () => {
    fx = await witnessFixture('witness_litewitness', [{ origin: s.log_origin, vkey: s.log_vkey }], {
      key,
    });
  });
  afterAll(async () => {
    await fx.close();
  });

  it('derives the witness cosignature/v1 vkey from the SSH key', () => {
    expect(bytes.toHex(key.publicKey)).toBe(s.witness_public_key_hex);
    expect(key.vkey).toBe(s.witness_cosig_vkey_derived);
  });

  it('answers the nine steps with the specification status codes', async () => {
    const got: number[] = [];
    for (const step of V.litewitness_scenario.steps) {
      const r = await post(fx.app, step.request_body);
      got.push(r.statusCode);
      expect(r.statusCode, `step ${step.step}: ${step.desc}`).toBe(step.want_status);
      if (r.statusCode === 200) {
        expect(r.body).toContain('— example.com/witness');
        const text = step.request_body.slice(step.request_body.indexOf('\n\n') + 2);
        verifyCosignature(r.body, note.parse(text).text, key);
      }
      if (r.statusCode === 409) {
        expect(r.headers['content-type']).toBe('text/x.tlog.size');
        expect(JSON.stringify(r.body)).toBe(step.litewitness_assert.replace(/^body == /, ''));
      }
    }
    // Where the spec and litewitness differ (step 3: unknown origin), we follow the spec.
    expect(got).toEqual([200, 403, 404, 422, 422, 200, 409, 200, 409]);
    const st = await fx.store.getState(s.log_origin);
    expect(st!.size).toBe(5);
  });
});

describe('monkeys 5 → 8 (transparency-dev/witness)', () => {
  const m = V.monkeys_5_to_8;
  const key = parseWitnessKey(m.witness_key_in_test.private_go_format);
  let tdb: TestDatabase;

  beforeAll(async () => {
    tdb = await createTestDatabase('witness_monkeys', ['witness']);
  });
  afterAll(async () => {
    await tdb.drop();
  });

  it('reads the Go signer key and derives its 0x04 vkey', () => {
    expect(key.vkey).toBe(m.witness_key_in_test.cosignature_v1_vkey_derived);
  });

  it('cosigns 5, then 8 with the published proof', async () => {
    const fx = await witnessFixture('monkeys', [{ origin: 'monkeys', vkey: m.vkey }], { key }, tdb);
    try {
      const r5 = await post(fx.app, `old 0\n\n${m.notes[0]!}`);
      expect(r5.statusCode).toBe(200);
      const proof = m.consistency_proof_5_to_8_hex.map((h) => bytes.fromHex(h));
      expect(m.add_checkpoint_request_body).toBe(formatAddCheckpointRequest(5, proof, m.notes[1]!));
      const r8 = await post(fx.app, m.add_checkpoint_request_body);
      expect(r8.statusCode).toBe(200);
      verifyCosignature(r8.body, note.parse(m.notes[1]!).text, key);
      // The proof with one hash flipped is refused.
      const bad = proof.map((h, i) => (i === 3 ? h.map((b, j) => (j === 31 ? b ^ 1 : b)) : h));
      const r = await post(fx.app, formatAddCheckpointRequest(5, bad, m.notes[1]!));
      expect(r.statusCode).toBe(409); // already at 8: the old size is checked first
      expect(r.body).toBe('8\n');
    } finally {
      await fx.close();
    }
  });
});

describe('Tessera testdata log (transparency-dev/tessera)', () => {
  const t = V.tessera_testdata_log;
  const origin = 'example.com/log/testdata';
  const leaves = t.entries_utf8_in_order.map((e) => merkle.leafHash(bytes.utf8(e)));
  const tree = merkle.MemoryTree.from(leaves);

  it('cosigns every checkpoint 0 → 1 → … → 15 with proofs built here', async () => {
    const fx = await witnessFixture('witness_tessera', [{ origin, vkey: t.vkey }]);
    try {
      let old = 0;
      for (let size = 0; size < t.notes_by_size.length; size++) {
        const signed = t.notes_by_size[size]!;
        expect(
          bytes.equalBytes(checkpoint.parse(note.parse(signed).text).root, tree.root(size)),
        ).toBe(true);
        const proof = old === 0 || old === size ? [] : tree.consistencyProof(old, size);
        const r = await post(fx.app, formatAddCheckpointRequest(old, proof, signed));
        expect(r.statusCode, `size ${size}`).toBe(200);
        old = size;
      }
    } finally {
      await fx.close();
    }
  });

  it('jumps 3 → 15 in one request, then refuses 15 → 3', async () => {
    const fx = await witnessFixture('witness_tessera_jump', [{ origin, vkey: t.vkey }]);
    try {
      expect((await post(fx.app, `old 0\n\n${t.notes_by_size[3]!}`)).statusCode).toBe(200);
      const r = await post(
        fx.app,
        formatAddCheckpointRequest(3, tree.consistencyProof(3, 15), t.notes_by_size[15]!),
      );
      expect(r.statusCode).toBe(200);
      const back = await post(fx.app, formatAddCheckpointRequest(15, [], t.notes_by_size[3]!));
      expect(back.statusCode).toBe(400);
    } finally {
      await fx.close();
    }
  });
});
