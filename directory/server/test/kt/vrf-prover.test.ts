/**
 * The native VRF provers (the `native/vrf_prove.c` addon and sodium-native) and the worker pool
 * produce proofs byte-identical to
 * `@keytrail/core`'s reference prover: RFC 9381 Appendix B.3 Examples 16–18 (Example 17 needs
 * the try-and-increment retry), and random keys and inputs.
 */
import { describe, it, expect, afterAll } from 'vitest';
import fc from 'fast-check';
import { vrf, bytes } from '@keytrail/core';
import {
  AddonVrfProver,
  NativeVrfProver,
  NobleVrfProver,
  createFastProver,
  vrfAddonStatus,
} from '../../src/kt/vrf-prover.ts';
import { VrfWorkerPool } from '../../src/kt/vrf-pool.ts';

// source: RFC 9381 Appendix B.3, Examples 16-18 (ECVRF-EDWARDS25519-SHA512-TAI, suite 0x03)
const VECTORS = [
  {
    sk: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    pk: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    alpha: '',
    pi: '8657106690b5526245a92b003bb079ccd1a92130477671f6fc01ad16f26f723f26f8a57ccaed74ee1b190bed1f479d9727d2d0f9b005a6e456a35d4fb0daab1268a1b0db10836d9826a528ca76567805',
  },
  {
    sk: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    pk: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    alpha: '72',
    pi: 'f3141cd382dc42909d19ec5110469e4feae18300e94f304590abdced48aed5933bf0864a62558b3ed7f2fea45c92a465301b3bbf5e3e54ddf2d935be3b67926da3ef39226bbc355bdc9850112c8f4b02',
  },
  {
    sk: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    pk: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    alpha: 'af82',
    pi: '9bc0f79119cc5604bf02d23b4caede71393cedfbb191434dd016d30177ccbf8096bb474e53895c362d8628ee9f9ea3c0e52c7a5c691b6c18c9979866568add7a2d41b00b05081ed0f58ee5e31b3a970e',
  },
];

const pools: VrfWorkerPool[] = [];
afterAll(async () => {
  for (const p of pools) await p.close();
});

describe('native VRF prover', () => {
  it('reproduces RFC 9381 Examples 16–18', async () => {
    for (const v of VECTORS) {
      const sk = bytes.fromHex(v.sk);
      const alpha = bytes.fromHex(v.alpha);
      const native = new NativeVrfProver(sk);
      expect(bytes.toHex(native.publicKey)).toBe(v.pk);
      expect(bytes.toHex(native.proveOne(alpha))).toBe(v.pi);
      const [fromNoble] = await new NobleVrfProver(sk).prove([alpha]);
      expect(bytes.toHex(fromNoble ?? new Uint8Array())).toBe(v.pi);
      const [fromAddon] = await new AddonVrfProver(sk).prove([alpha]);
      expect(bytes.toHex(fromAddon ?? new Uint8Array())).toBe(v.pi);
    }
  });

  it('the addon is built and chosen (npm test builds it; a silent fallback would halve throughput)', () => {
    expect(vrfAddonStatus()).toEqual({ loaded: true, reason: 'native addon (libsodium ref10)' });
    expect(createFastProver(new Uint8Array(32))).toBeInstanceOf(AddonVrfProver);
  });

  it('the addon is byte-identical to core for random keys and batches of any input lengths', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }),
        (sk, alphas) => {
          const results = new AddonVrfProver(sk).proveMany(alphas);
          expect(results.map((r) => bytes.toHex(r.proof))).toEqual(
            alphas.map((a) => bytes.toHex(vrf.prove(sk, a))),
          );
          expect(results.map((r) => bytes.toHex(r.output))).toEqual(
            alphas.map((a) => bytes.toHex(vrf.proofToHash(vrf.prove(sk, a)))),
          );
        },
      ),
      { numRuns: 60 },
    );
  });

  it('is byte-identical to core for random keys and inputs', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 64 }),
        (sk, alpha) => {
          expect(bytes.toHex(new NativeVrfProver(sk).proveOne(alpha))).toBe(
            bytes.toHex(vrf.prove(sk, alpha)),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('sodium-native and noble outputs (β) equal core proofToHash', async () => {
    const sk = crypto.getRandomValues(new Uint8Array(32));
    const alphas = Array.from({ length: 8 }, (_, i) => bytes.utf8(`alpha-${i}`));
    const expected = alphas.map((a) => bytes.toHex(vrf.proofToHash(vrf.prove(sk, a))));
    for (const prover of [new NativeVrfProver(sk), new NobleVrfProver(sk)]) {
      const results = await prover.proveWithOutputs(alphas);
      expect(results.map((r) => bytes.toHex(r.output))).toEqual(expected);
    }
  });

  it('the worker pool returns the same proofs, in order, and they verify', async () => {
    const sk = crypto.getRandomValues(new Uint8Array(32));
    const pool = new VrfWorkerPool(sk, 2);
    pools.push(pool);
    const alphas = Array.from({ length: 40 }, (_, i) => vrf.vrfInput(bytes.utf8(`acct-${i}`), i));
    const proofs = await pool.prove(alphas);
    expect(proofs).toHaveLength(40);
    proofs.forEach((p, i) => {
      expect(bytes.toHex(p)).toBe(bytes.toHex(vrf.prove(sk, alphas[i] as Uint8Array)));
      vrf.verify(pool.publicKey, alphas[i] as Uint8Array, p);
    });
    const withOutputs = await pool.proveWithOutputs(alphas);
    withOutputs.forEach((r, i) => {
      expect(bytes.toHex(r.proof)).toBe(bytes.toHex(proofs[i] ?? new Uint8Array()));
      expect(bytes.toHex(r.output)).toBe(
        bytes.toHex(vrf.verify(pool.publicKey, alphas[i] as Uint8Array, r.proof)),
      );
    });
  });
});
