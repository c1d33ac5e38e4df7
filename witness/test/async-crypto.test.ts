/**
 * The thread-pool Ed25519 path agrees with the synchronous one `@keytrail/core` uses in Node
 * (server-kit's native backend): on valid signatures, on every kind of mutation, and on the
 * non-canonical encodings RFC 8032 rejects.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createPrivateKey, sign } from 'node:crypto';
import { ed25519Verify, note } from '@keytrail/core';
import { installNodeCrypto } from '@keytrail/server-kit';
import { ed25519PublicKey, verifyAsync } from '../src/async-crypto.ts';

installNodeCrypto();

const L = (1n << 252n) + 27742317777372353535851937790883648493n;

function keyPair(seed: Uint8Array): { pk: Uint8Array; sign: (m: Uint8Array) => Uint8Array } {
  const signer = note.ed25519Signer('k', seed);
  const priv = createPrivateKey({
    key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]),
    format: 'der',
    type: 'pkcs8',
  });
  return { pk: signer.publicKey, sign: (m) => new Uint8Array(sign(null, m, priv)) };
}

function leToBig(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
}
function bigToLe(n: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
}

async function agree(pk: Uint8Array, msg: Uint8Array, sig: Uint8Array): Promise<boolean> {
  const sync = ed25519Verify(sig, msg, pk);
  const async = await verifyAsync(ed25519PublicKey(pk), msg, sig);
  expect(async).toBe(sync);
  return sync;
}

describe('verifyAsync ≡ the native synchronous backend', () => {
  it('valid signatures verify; mutations of the signature, message or key agree (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 200 }),
        fc.nat(),
        fc.constantFrom('none', 'sig', 'msg', 'pk', 'length'),
        async (seed, msg, at, what) => {
          const { pk, sign: s } = keyPair(seed);
          let sig = s(msg);
          let m = msg;
          let key = pk;
          if (what === 'sig') sig = sig.map((b, i) => (i === at % 64 ? b ^ (1 << (at % 8)) : b));
          if (what === 'msg') m = Uint8Array.from([...msg, at % 256]);
          if (what === 'pk') key = pk.map((b, i) => (i === at % 32 ? b ^ 1 : b));
          if (what === 'length') sig = sig.subarray(0, at % 64);
          const ok = await agree(key, m, sig);
          if (what === 'none') expect(ok).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses s + L (malleated) and non-canonical R or A, like the backend', async () => {
    const { pk, sign: s } = keyPair(new Uint8Array(32).fill(3));
    const msg = new Uint8Array([1, 2, 3]);
    const sig = s(msg);
    const sPlusL = bigToLe(leToBig(sig.subarray(32)) + L, 32);
    expect(await agree(pk, msg, Uint8Array.from([...sig.subarray(0, 32), ...sPlusL]))).toBe(false);
    // y = p + 1 ≡ 1 (the identity), a non-canonical encoding of R and of A.
    const nonCanonical = bigToLe((1n << 255n) - 19n + 1n, 32);
    expect(await agree(pk, msg, Uint8Array.from([...nonCanonical, ...sig.subarray(32)]))).toBe(
      false,
    );
    expect(await agree(nonCanonical, msg, sig)).toBe(false);
    expect(ed25519PublicKey(nonCanonical)).toBeUndefined();
    expect(await agree(pk, msg, new Uint8Array(64))).toBe(false);
  });
});
