/**
 * Signed-note and cosignature benchmarks (C2SP signed-note, tlog-checkpoint, tlog-cosignature):
 * `note.open` of a one-signature checkpoint and `cosignature.verifyCheckpoint` of a checkpoint
 * with a log signature and three witness cosignatures, on the noble and the native backends,
 * each beside a raw Ed25519 verification measured in the same run (noble's own `verify`, and
 * `node:crypto.verify` with a cached key).
 * @module
 */
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { NODE_CRYPTO_BACKEND } from '@keytrail/server-kit';
import { format as formatCheckpoint, parse as parseCheckpoint } from '../src/checkpoint.ts';
import * as cosignature from '../src/cosignature.ts';
import { NOBLE_BACKEND, setCryptoBackend, type CryptoBackend } from '../src/crypto.ts';
import * as note from '../src/signed-note.ts';
import { fmt, opsPerSecond, report, type Bench } from '../../../scripts/bench-util.ts';

const bench: Bench = () => {
  const log = note.ed25519Signer('example.com/log', new Uint8Array(32).fill(1));
  const logVerifier = note.parseVerifierKey(note.formatVerifierKey(log.name, log.publicKey));
  const witnesses = [2, 3, 4].map((i) =>
    cosignature.ed25519Signer(`example.com/w${i}`, new Uint8Array(32).fill(i)),
  );
  const witnessVerifiers = witnesses.map((w) => cosignature.verifier(w.name, w.publicKey));
  const body = formatCheckpoint({
    origin: 'example.com/log',
    size: 1_234_567,
    root: new Uint8Array(32).fill(7),
    extensions: [],
  });
  const now = 1_750_000_000;
  const signed = note.sign(body, [log]);
  const cosigned = note.addSignatures(
    signed,
    witnesses.map((w) => cosignature.sign(body, now, w)),
  );
  const policy = {
    log: [logVerifier],
    witnesses: witnessVerifiers,
    quorum: 2,
    now,
    maxAgeSeconds: 3600,
  };

  // Raw baselines: one Ed25519 verification of the same message.
  const msg = new TextEncoder().encode(body);
  const sig = note.parse(signed).signatures[0]?.signature ?? new Uint8Array(64);
  const nobleRaw = opsPerSecond(() => ed25519.verify(sig, msg, log.publicKey));
  const key = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(log.publicKey).toString('base64url') },
    format: 'jwk',
  });
  const nodeRaw = opsPerSecond(() => nodeVerify(null, msg, key, sig));
  report('raw Ed25519 verify, @noble/curves (baseline)', `${fmt(nobleRaw)} /s`);
  report('raw Ed25519 verify, node:crypto (baseline)', `${fmt(nodeRaw)} /s`);

  const run = (backend: CryptoBackend, raw: number): void => {
    const previous = setCryptoBackend(backend);
    try {
      const open = opsPerSecond(() => parseCheckpoint(note.open(signed, [logVerifier]).text));
      report(
        `note.open + checkpoint.parse, 1 signature (${backend.name})`,
        `${fmt(open)} /s`,
        `${fmt((100 * open) / raw, 1)}% of one raw verify`,
      );
      const full = opsPerSecond(() => cosignature.verifyCheckpoint(cosigned, policy));
      report(
        `verifyCheckpoint, log + 3 cosignatures (${backend.name})`,
        `${fmt(full)} /s`,
        `${fmt((100 * full * 4) / raw, 1)}% of raw in verifications`,
      );
    } finally {
      setCryptoBackend(previous);
    }
  };
  run(NOBLE_BACKEND, nobleRaw);
  run(NODE_CRYPTO_BACKEND, nodeRaw);
  return Promise.resolve();
};

export default bench;
