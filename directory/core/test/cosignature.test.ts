import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64, fromHex, fromUtf8, toBase64, toHex, utf8 } from '../src/bytes.ts';
import { format as formatCheckpoint, parse as parseCheckpoint } from '../src/checkpoint.ts';
import {
  COSIGNATURE_V1_TYPE,
  ed25519Signer,
  formatVerifierKey,
  keyId,
  message,
  parseVerifierKey,
  sign,
  verifier,
  verify,
  verifyCheckpoint,
  type CosignatureVerifier,
} from '../src/cosignature.ts';
import { KtError, MalformedError, VerificationError } from '../src/errors.ts';
import {
  consistencyProof,
  leafHash,
  rootHash,
  verifyConsistency,
  verifyInclusion,
} from '../src/merkle.ts';
import * as note from '../src/signed-note.ts';

const tlog = JSON.parse(readFileSync(new URL('./vectors/tlog-c2sp.json', import.meta.url), 'utf8'));

function expectCode(fn: () => unknown, cls: typeof KtError, code: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${code}`).toBeInstanceOf(cls);
  expect((thrown as KtError).code).toBe(code);
}
const sha256hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface CosigVector {
  id: string;
  cosigner_name: string;
  public_key_hex: string;
  vkey_0x04: string;
  checkpoint_text: string;
  signature_line: string;
  key_id_hex: string;
  timestamp: number;
  signed_message: string;
  signed_message_sha256_hex: string;
  ed25519_seed_hex?: string;
  private_seed_hex?: string;
  published_key?: string;
}
const lineVectors: CosigVector[] = tlog.cosignatures.filter(
  (c: { signature_line?: string }) => c.signature_line !== undefined,
);

function sigOfLine(checkpointText: string, line: string): note.NoteSignature {
  return note.parse(`${checkpointText}\n${line.endsWith('\n') ? line : `${line}\n`}`)
    .signatures[0]!;
}

describe('real cosignatures (Armored Witness, Sunlight, sigsum-go)', () => {
  it('has the six line vectors', () => {
    expect(lineVectors).toHaveLength(6);
  });

  it.each(lineVectors.map((v) => [v.id, v]))('%s', (_id, v: CosigVector) => {
    const pk = fromHex(v.public_key_hex);
    const w = parseVerifierKey(v.vkey_0x04);
    expect(w.type).toBe(COSIGNATURE_V1_TYPE);
    expect(toHex(w.publicKey)).toBe(v.public_key_hex);
    expect(w.keyId.toString(16).padStart(8, '0')).toBe(v.key_id_hex);
    expect(keyId(v.cosigner_name, pk)).toBe(w.keyId);
    expect(formatVerifierKey(v.cosigner_name, pk)).toBe(v.vkey_0x04);
    const msg = message(v.checkpoint_text, v.timestamp);
    expect(fromUtf8(msg)).toBe(v.signed_message);
    expect(sha256hex(msg)).toBe(v.signed_message_sha256_hex);
    const sig = sigOfLine(v.checkpoint_text, v.signature_line);
    expect(sig.signature).toHaveLength(72);
    expect(verify(v.checkpoint_text, sig, w)).toEqual({ timestamp: v.timestamp });
    // As a note.Verifier inside note.open.
    const opened = note.open(`${v.checkpoint_text}\n${v.signature_line}`, [w]);
    expect(opened.verified).toHaveLength(1);
    // Wrong checkpoint text.
    const other = v.checkpoint_text.replace(/\n(\d+)\n/, (_m, n: string) => `\n${Number(n) + 1}\n`);
    expectCode(() => verify(other, sig, w), VerificationError, 'ERR_COSIGNATURE_INVALID');
    const seedHex = v.ed25519_seed_hex ?? v.private_seed_hex;
    if (seedHex !== undefined) {
      const signer = ed25519Signer(v.cosigner_name, fromHex(seedHex));
      const again = sign(v.checkpoint_text, v.timestamp, signer);
      expect(note.addSignatures(`${v.checkpoint_text}\n${v.signature_line}`, [again])).toBe(
        `${v.checkpoint_text}\n${v.signature_line}`,
      );
    }
  });

  it('derives the Armored Witness 0x04 key ID from its published 0x01 key', () => {
    const v = lineVectors.find((x) => x.id.startsWith('armoredwitness-small-breeze'))!;
    const published = note.parseVerifierKey(v.published_key!);
    expect(published.keyId.toString(16)).toBe('7b3ada3a');
    const w = verifier(published.name, published.publicKey);
    expect(w.keyId.toString(16)).toBe('9d1ab951');
    expectCode(
      () => parseVerifierKey(v.published_key!),
      MalformedError,
      'ERR_VKEY_UNSUPPORTED_TYPE',
    );
    expectCode(
      () => note.parseVerifierKey(v.vkey_0x04),
      MalformedError,
      'ERR_VKEY_UNSUPPORTED_TYPE',
    );
    // The 0x01 key used as-is does not match the cosignature line: the line is ignored.
    expectCode(
      () => note.open(`${v.checkpoint_text}\n${v.signature_line}`, [published]),
      VerificationError,
      'ERR_NOTE_NO_VERIFIED_SIGNATURE',
    );
  });

  it('opens the Pixel note with both Armored Witnesses; the ECDSA log line stays unverified', () => {
    const px = tlog.checkpoints.find((c: { id: string }) => c.id.startsWith('pixel'));
    const witnesses = lineVectors
      .filter((x) => x.id.startsWith('armoredwitness'))
      .map((x) => parseVerifierKey(x.vkey_0x04));
    const opened = note.open(px.note, witnesses);
    expect(opened.verified.map((s) => s.name)).toEqual([
      'ArmoredWitness-small-breeze',
      'ArmoredWitness-autumn-wood',
    ]);
    expect(opened.unverified.map((s) => s.name)).toEqual(['pixel_transparency_log']);
    // Without a usable log key the policy check cannot pass.
    expectCode(
      () => verifyCheckpoint(px.note, { log: [], witnesses, quorum: 2 }),
      VerificationError,
      'ERR_NOTE_NO_VERIFIED_SIGNATURE',
    );
  });

  it('opens the Sunlight note: type-0x05 log line ignored, witness cosignature verified', () => {
    const s = tlog.cosignatures.find((c: { id: string }) => c.id === 'sunlight-skylight-witness');
    const opened = note.open(s.full_note_served, [parseVerifierKey(s.vkey_0x04)]);
    expect(opened.verified.map((x) => x.name)).toEqual(['witness.example.org']);
    expect(opened.unverified.map((x) => x.name)).toEqual(['rome2026h1.example.org']);
  });

  it('handles the sigsum-go negative lines', () => {
    const v = lineVectors.find((x) => x.id === 'sigsum-go-cosign-ts1234')!;
    const w = parseVerifierKey(v.vkey_0x04);
    const s = tlog.cosignatures.find((c: { id: string }) => c.id === v.id);
    const [otherId, otherName, wrongLength] = s.negative_lines_from_source as { line: string }[];
    // Different key ID, different name: ignored (unknown keys).
    for (const neg of [otherId!, otherName!]) {
      const n = `${v.checkpoint_text}\n${v.signature_line}${neg.line}\n`;
      expect(note.open(n, [w]).unverified).toHaveLength(1);
      expectCode(
        () => verify(v.checkpoint_text, sigOfLine(v.checkpoint_text, neg.line), w),
        VerificationError,
        'ERR_COSIGNATURE_INVALID',
      );
    }
    // Wrong length with the right name and ID: sigsum-go drops it; by the signed-note rules a
    // known key's failing line rejects the note, and verify() calls it malformed.
    const bad = sigOfLine(v.checkpoint_text, wrongLength!.line);
    expect(bad.signature).toHaveLength(74);
    expectCode(
      () => verify(v.checkpoint_text, bad, w),
      MalformedError,
      'ERR_COSIGNATURE_MALFORMED',
    );
    expectCode(
      () => note.open(`${v.checkpoint_text}\n${wrongLength!.line}\n`, [w]),
      VerificationError,
      'ERR_NOTE_INVALID_SIGNATURE',
    );
  });
});

describe('Sigsum test log barreleye (real proof and cosignatures)', () => {
  const b = tlog.cosignatures.find((c: { id: string }) => c.id === 'sigsum-test-log-barreleye-930');
  const logKey = fromHex(b.log_public_key_hex);
  const origin = `sigsum.org/v1/tree/${sha256hex(logKey)}`;
  const logVerifier = note.parseVerifierKey(note.formatVerifierKey(origin, logKey));
  const cp = parseCheckpoint(b.checkpoint_text);
  type Cos = {
    witness?: string;
    public_key_hex?: string;
    witness_key_hash: string;
    timestamp: number;
    signature_hex: string;
  };
  const cosigs = b.cosignatures as Cos[];
  const known = cosigs.filter((c) => c.public_key_hex !== undefined);
  const witnesses = known.map((c) => verifier(c.witness!, fromHex(c.public_key_hex!)));
  // Sigsum names witnesses by key hash; the Ed25519 cosignature does not sign the name.
  const lines = cosigs.map((c, i) => {
    const name = c.witness ?? `unknown-${i}.example`;
    const id = c.public_key_hex ? keyId(name, fromHex(c.public_key_hex)) : 0x11223344 + i;
    const ts = new Uint8Array(8);
    new DataView(ts.buffer).setBigUint64(0, BigInt(c.timestamp));
    return { name, keyId: id, signature: Uint8Array.from([...ts, ...fromHex(c.signature_hex)]) };
  });
  const logLine = {
    name: origin,
    keyId: logVerifier.keyId,
    signature: fromHex(b.log_signature_hex),
  };
  const noteText = note.format({ text: b.checkpoint_text, signatures: [logLine, ...lines] });

  it('origin is sigsum.org/v1/tree/<hex SHA-256 of the log key>', () => {
    expect(cp.origin).toBe(origin);
    expect(cp.size).toBe(930);
    expect(sha256hex(fromHex(known[0]!.public_key_hex!))).toBe(known[0]!.witness_key_hash);
  });

  it('meets a 2-of-3 and a 3-of-3 policy, ignoring the two unknown witnesses', () => {
    const now = 1749045854 + 30;
    for (const quorum of [2, 3]) {
      const r = verifyCheckpoint(noteText, {
        log: [logVerifier],
        witnesses,
        quorum,
        now,
        maxAgeSeconds: 3600,
      });
      expect(r.checkpoint).toEqual(cp);
      expect(r.cosigners.map((c) => c.name).sort()).toEqual(['test1', 'test2', 'test3']);
      expect(r.cosigners.every((c) => c.timestamp === 1749045854)).toBe(true);
    }
    expectCode(
      () =>
        verifyCheckpoint(noteText, {
          log: [logVerifier],
          witnesses,
          quorum: 3,
          now: now + 7200,
          maxAgeSeconds: 3600,
        }),
      VerificationError,
      'ERR_COSIGNATURE_STALE',
    );
  });

  it('verifies the leaf hash rule and the inclusion proof of leaf 929', () => {
    const leaf = b.leaf;
    const checksum = createHash('sha256')
      .update(createHash('sha256').update(leaf.message_utf8).digest())
      .digest();
    expect(checksum.toString('hex')).toBe(leaf.checksum_hex);
    const keyHash = createHash('sha256').update(fromHex(leaf.submitter_public_key_hex)).digest();
    const lh = leafHash(
      Uint8Array.from([...checksum, ...fromHex(leaf.leaf_signature_hex), ...keyHash]),
    );
    expect(toHex(lh)).toBe(leaf.leaf_hash_hex);
    const path = (leaf.inclusion_path_hex as string[]).map(fromHex);
    verifyInclusion(lh, leaf.leaf_index, cp.size, path, cp.root);
    expectCode(
      () => {
        verifyInclusion(lh, leaf.leaf_index - 1, cp.size, path, cp.root);
      },
      VerificationError,
      'ERR_INCLUSION_PROOF_INVALID',
    );
  });
});

describe('litewitness scenario: the notes, checkpoints and proofs of each step', () => {
  const s = tlog.witness_add_checkpoint;
  const logVerifier = note.parseVerifierKey(s.setup.log_vkey);
  // Leaf hashes {0x2a, i, 0…} for i = 0..4, added as hashes.
  const leaves = Array.from({ length: 5 }, (_, i) => {
    const h = new Uint8Array(32);
    h[0] = 0x2a;
    h[1] = i;
    return h;
  });

  it('derives the log origin, the roots and the witness cosignature key', () => {
    expect(logVerifier.name).toBe(s.setup.log_origin);
    expect(sha256hex(fromHex(s.setup.log_public_key_hex))).toBe(
      s.setup.log_origin.split('/').pop(),
    );
    for (const [size, root] of Object.entries<string>(s.setup.roots)) {
      expect(toBase64(rootHash(leaves.slice(0, Number(size))))).toBe(root);
    }
    expect(formatVerifierKey(s.setup.witness_name, fromHex(s.setup.witness_public_key_hex))).toBe(
      s.setup.witness_cosig_vkey_derived,
    );
  });

  type Step = {
    step: number;
    request_body: string;
    log_signature_valid: boolean;
    consistency_proof_valid_against_true_tree: boolean;
  };
  it.each((s.steps_in_order as Step[]).map((x) => [x.step, x]))('step %i', (_n, step: Step) => {
    // A tlog-witness add-checkpoint body: "old N", proof lines, blank line, the note.
    const split = step.request_body.indexOf('\n\n');
    const head = step.request_body.slice(0, split).split('\n');
    const noteText = step.request_body.slice(split + 2);
    const old = Number(head[0]!.replace('old ', ''));
    const proof = head.slice(1).map((l) => fromBase64(l));
    const parsed = note.parse(noteText);
    const cp = parseCheckpoint(parsed.text);
    if (step.log_signature_valid) {
      expect(note.open(noteText, [logVerifier]).verified).toHaveLength(1);
    } else {
      // Step 2: a known key whose signature fails; step 3: an unknown origin (unknown key).
      const code =
        cp.origin === logVerifier.name
          ? 'ERR_NOTE_INVALID_SIGNATURE'
          : 'ERR_NOTE_NO_VERIFIED_SIGNATURE';
      expectCode(() => note.open(noteText, [logVerifier]), VerificationError, code);
    }
    if (old === 0) {
      // Trust on first use: tlog-witness sends an empty proof, and a proof from 0 proves nothing.
      expect(proof).toEqual([]);
      expect(consistencyProof(leaves.slice(0, cp.size), 0)).toEqual([]);
      expectCode(
        () => {
          verifyConsistency(0, cp.size, proof, rootHash([]), cp.root);
        },
        MalformedError,
        'ERR_PROOF_MALFORMED',
      );
      return;
    }
    const oldRoot = rootHash(leaves.slice(0, old));
    const run = (): void => {
      verifyConsistency(old, cp.size, proof, oldRoot, cp.root);
    };
    if (step.consistency_proof_valid_against_true_tree) {
      run();
      expect(consistencyProof(leaves.slice(0, cp.size), old).map(toBase64)).toEqual(head.slice(1));
    } else {
      expectCode(run, VerificationError, 'ERR_CONSISTENCY_PROOF_INVALID');
    }
  });

  it('the transparency-dev/witness "monkeys" 5 → 8 proof verifies between the two notes', () => {
    const m = tlog.checkpoints.find((c: { id: string }) => c.id.includes('monkeys'));
    const v = note.parseVerifierKey(m.vkey);
    const [cp5, cp8] = (m.notes as string[]).map((n) => parseCheckpoint(note.open(n, [v]).text));
    const proof = (m.consistency_proof_5_to_8_hex as string[]).map(fromHex);
    verifyConsistency(5, 8, proof, cp5!.root, cp8!.root);
    expect(m.add_checkpoint_request_body.split('\n').slice(1, 5)).toEqual(proof.map(toBase64));
    const w = note.parseSignerKey(m.witness_key_in_test.private_go_format);
    expect(formatVerifierKey(w.name, w.publicKey)).toBe(
      m.witness_key_in_test.cosignature_v1_vkey_derived,
    );
  });
});

describe('sign, verify and verifyCheckpoint', () => {
  const log = note.ed25519Signer('example.com/log', new Uint8Array(32).fill(1));
  const logV = note.parseVerifierKey(note.formatVerifierKey(log.name, log.publicKey));
  const ws = [1, 2, 3, 4].map((i) =>
    ed25519Signer(`example.com/w${i}`, new Uint8Array(32).fill(10 + i)),
  );
  const wvs: CosignatureVerifier[] = ws.map((w) =>
    parseVerifierKey(formatVerifierKey(w.name, w.publicKey)),
  );
  const body = formatCheckpoint({
    origin: 'example.com/log',
    size: 42,
    root: new Uint8Array(32).fill(7),
    extensions: [],
  });
  const signed = note.sign(body, [log]);
  const T = 1_700_000_000;
  const cosign = (idx: number[], ts: number[]): string =>
    note.addSignatures(
      signed,
      idx.map((i, j) => sign(body, ts[j]!, ws[i]!)),
    );

  it('round-trips random checkpoints and timestamps', () => {
    fc.assert(
      fc.property(
        fc.maxSafeNat(),
        fc.maxSafeNat(),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.array(fc.stringMatching(/^[a-z0-9 ]{1,12}$/), { maxLength: 2 }),
        (size, ts, root, extensions) => {
          const text = formatCheckpoint({ origin: 'o', size, root, extensions });
          const sig = sign(text, ts, ws[0]!);
          expect(sig.keyId).toBe(wvs[0]!.keyId);
          expect(verify(text, sig, wvs[0]!)).toEqual({ timestamp: ts });
          const line = note.parse(note.addSignatures(note.sign(text, [log]), [sig])).signatures[1]!;
          expect(toHex(line.signature)).toBe(toHex(sig.signature));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('signs extension lines too: dropping them breaks the cosignature', () => {
    const withExt = formatCheckpoint({
      origin: 'o',
      size: 1,
      root: new Uint8Array(32),
      extensions: ['ext'],
    });
    const sig = sign(withExt, T, ws[0]!);
    expect(fromUtf8(message(withExt, T))).toBe(`cosignature/v1\ntime ${T}\n${withExt}`);
    expectCode(
      () => verify(withExt.replace('ext\n', ''), sig, wvs[0]!),
      VerificationError,
      'ERR_COSIGNATURE_INVALID',
    );
  });

  it('rejects malformed cosignatures with exact codes', () => {
    const sig = sign(body, T, ws[0]!);
    expectCode(
      () => verify(body, { ...sig, signature: sig.signature.subarray(1) }, wvs[0]!),
      MalformedError,
      'ERR_COSIGNATURE_MALFORMED',
    );
    const huge = sig.signature.slice();
    huge[0] = 0x00;
    huge[1] = 0x20; // timestamp ≥ 2^53
    expectCode(
      () => verify(body, { ...sig, signature: huge }, wvs[0]!),
      MalformedError,
      'ERR_COSIGNATURE_MALFORMED',
    );
    const tooBig = sig.signature.slice();
    tooBig[0] = 0x80; // ≥ 2^63: forbidden by the specification
    expect(wvs[0]!.verify(utf8(body), tooBig)).toBe(false);
    expectCode(() => verify(body, sig, wvs[1]!), VerificationError, 'ERR_COSIGNATURE_INVALID');
    const flipped = sig.signature.slice();
    flipped[7]! ^= 1; // timestamp changed
    expectCode(
      () => verify(body, { ...sig, signature: flipped }, wvs[0]!),
      VerificationError,
      'ERR_COSIGNATURE_INVALID',
    );
    expectCode(
      () => verify('not a checkpoint\n', sig, wvs[0]!),
      MalformedError,
      'ERR_CHECKPOINT_MALFORMED',
    );
    expectCode(
      () => sign('not a checkpoint\n', T, ws[0]!),
      MalformedError,
      'ERR_CHECKPOINT_MALFORMED',
    );
    expect(() => sign(body, -1, ws[0]!)).toThrow(RangeError);
    expect(() => sign(body, 2 ** 53, ws[0]!)).toThrow(RangeError);
    expect(() => sign(body, T, { ...ws[0]!, sign: () => new Uint8Array(63) })).toThrow(RangeError);
    expect(() => verifier('w', new Uint8Array(31))).toThrow(RangeError);
    expect(() => ed25519Signer('w', new Uint8Array(31))).toThrow(RangeError);
    for (const bad of [
      'w+00000000+BAAA',
      'w',
      'w+zz+BAAA',
      `w+${keyId('w', new Uint8Array(31)).toString(16).padStart(8, '0')}+${toBase64(Uint8Array.of(4, ...new Uint8Array(31)))}`,
    ]) {
      expectCode(() => parseVerifierKey(bad), MalformedError, 'ERR_VKEY_MALFORMED');
    }
  });

  it('timestamps are big-endian u64 (litewitness v0.2.0 wrote little-endian)', () => {
    const sig = sign(body, 0x01020304, ws[0]!);
    expect(toHex(sig.signature.subarray(0, 8))).toBe('0000000001020304');
    const big = sign(body, Number.MAX_SAFE_INTEGER, ws[0]!);
    expect(toHex(big.signature.subarray(0, 8))).toBe('001fffffffffffff');
    expect(verify(body, big, wvs[0]!).timestamp).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('meets the quorum with fresh cosignatures and reports who counted', () => {
    const n = cosign([0, 1, 2], [T - 10, T - 20, T]);
    const r = verifyCheckpoint(n, {
      log: [logV],
      witnesses: wvs,
      quorum: 3,
      now: T,
      maxAgeSeconds: 60,
    });
    expect(r.checkpoint.size).toBe(42);
    expect(r.cosigners).toEqual([
      { name: 'example.com/w1', keyId: wvs[0]!.keyId, timestamp: T - 10 },
      { name: 'example.com/w2', keyId: wvs[1]!.keyId, timestamp: T - 20 },
      { name: 'example.com/w3', keyId: wvs[2]!.keyId, timestamp: T },
    ]);
    // No clock given: no freshness checks.
    expect(verifyCheckpoint(n, { log: [logV], witnesses: wvs, quorum: 3 }).cosigners).toHaveLength(
      3,
    );
    expect(verifyCheckpoint(signed, { log: [logV], witnesses: wvs, quorum: 0 }).cosigners).toEqual(
      [],
    );
  });

  it('fails with QUORUM, STALE or FUTURE as appropriate', () => {
    const policy = { log: [logV], witnesses: wvs, now: T, maxAgeSeconds: 60 };
    expectCode(
      () => verifyCheckpoint(cosign([0], [T]), { ...policy, quorum: 2 }),
      VerificationError,
      'ERR_COSIGNATURE_QUORUM',
    );
    expectCode(
      () => verifyCheckpoint(cosign([0, 1], [T, T - 61]), { ...policy, quorum: 2 }),
      VerificationError,
      'ERR_COSIGNATURE_STALE',
    );
    expectCode(
      () => verifyCheckpoint(cosign([0, 1], [T, T + 61]), { ...policy, quorum: 2 }),
      VerificationError,
      'ERR_COSIGNATURE_FUTURE',
    );
    // Within the default 60 s skew it counts; a custom skew tightens it.
    expect(
      verifyCheckpoint(cosign([0, 1], [T, T + 60]), { ...policy, quorum: 2 }).cosigners,
    ).toHaveLength(2);
    expectCode(
      () =>
        verifyCheckpoint(cosign([0, 1], [T, T + 5]), {
          ...policy,
          quorum: 2,
          maxFutureSkewSeconds: 1,
        }),
      VerificationError,
      'ERR_COSIGNATURE_FUTURE',
    );
    // A future witness is dropped, not fatal, when the others suffice.
    expect(
      verifyCheckpoint(cosign([0, 1, 2], [T, T, T + 999]), { ...policy, quorum: 2 }).cosigners,
    ).toHaveLength(2);
    // Not signed by the log.
    const witnessOnly = note.format({ text: body, signatures: [sign(body, T, ws[0]!)] });
    expectCode(
      () => verifyCheckpoint(witnessOnly, { ...policy, quorum: 1 }),
      VerificationError,
      'ERR_NOTE_NO_VERIFIED_SIGNATURE',
    );
    // A configured witness with a bad line rejects the note (signed-note rules).
    const good = sign(body, T, ws[0]!);
    const bad = { ...good, signature: good.signature.slice() };
    bad.signature[20]! ^= 1;
    expectCode(
      () => verifyCheckpoint(note.addSignatures(signed, [bad]), { ...policy, quorum: 0 }),
      VerificationError,
      'ERR_NOTE_INVALID_SIGNATURE',
    );
  });

  it('counts a key listed under two names once', () => {
    const alias = verifier('example.com/alias', ws[0]!.publicKey);
    const aliasSigner = ed25519Signer('example.com/alias', new Uint8Array(32).fill(11));
    const n = note.addSignatures(cosign([0], [T]), [sign(body, T, aliasSigner)]);
    expectCode(
      () => verifyCheckpoint(n, { log: [logV], witnesses: [wvs[0]!, alias], quorum: 2 }),
      VerificationError,
      'ERR_COSIGNATURE_QUORUM',
    );
  });

  it('rejects invalid policies as caller bugs', () => {
    const n = cosign([0], [T]);
    expect(() => verifyCheckpoint(n, { log: [logV], witnesses: wvs, quorum: 5 })).toThrow(
      RangeError,
    );
    expect(() => verifyCheckpoint(n, { log: [logV], witnesses: wvs, quorum: -1 })).toThrow(
      RangeError,
    );
    expect(() => verifyCheckpoint(n, { log: [logV], witnesses: wvs, quorum: 1.5 })).toThrow(
      RangeError,
    );
    expect(() => verifyCheckpoint(n, { log: [logV], witnesses: wvs, quorum: 1, now: 1.5 })).toThrow(
      RangeError,
    );
    expect(() =>
      verifyCheckpoint(n, { log: [logV], witnesses: wvs, quorum: 1, maxAgeSeconds: 10 }),
    ).toThrow(TypeError);
  });

  it('a witness key reused as a log key stays distinct by its key ID', () => {
    const seed = new Uint8Array(32).fill(42);
    const asLog = note.ed25519Signer('example.com/x', seed);
    const asWitness = ed25519Signer('example.com/x', seed);
    expect(asLog.keyId).not.toBe(asWitness.keyId);
    expect(toHex(asLog.publicKey)).toBe(toHex(asWitness.publicKey));
    expect(
      fromBase64(
        formatVerifierKey('example.com/x', asWitness.publicKey).split('+').slice(2).join('+'),
      )[0],
    ).toBe(4);
  });
});
