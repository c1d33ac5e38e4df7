import { ed25519, ED25519_TORSION_SUBGROUP } from '@noble/curves/ed25519.js';
import { NODE_CRYPTO_BACKEND } from '@keytrail/server-kit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../src/bytes.ts';
import {
  NOBLE_BACKEND,
  ed25519Verify,
  getCryptoBackend,
  setCryptoBackend,
  sha256,
  type CryptoBackend,
} from '../src/crypto.ts';

const BACKENDS: readonly CryptoBackend[] = [NOBLE_BACKEND, NODE_CRYPTO_BACKEND];

function withBackend<T>(b: CryptoBackend, fn: () => T): T {
  const prev = setCryptoBackend(b);
  try {
    return fn();
  } finally {
    setCryptoBackend(prev);
  }
}

/** The seam's answer under each backend; they must agree. */
function verifyAll(sig: Uint8Array, msg: Uint8Array, pk: Uint8Array): boolean {
  const results = BACKENDS.map((b) => withBackend(b, () => ed25519Verify(sig, msg, pk)));
  expect(results[1], `node vs noble for sig ${toHex(sig)}`).toBe(results[0]);
  return results[0]!;
}

// RFC 8032 §7.1 TEST 1–3 (copied from ../shared/vectors/crypto.json; source: RFC 8032 §7.1).
const RFC8032 = [
  {
    sk: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    pk: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    msg: '',
    sig: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    sk: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    pk: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    msg: '72',
    sig: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    sk: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    pk: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    msg: 'af82',
    sig: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

// "Taming the many EdDSAs" edge cases, novifinancial/ed25519-speccheck cases.json (commit
// 336651ba7f1c1ae90b7deac7d175290863a00b66), with the outcome under Keytrail's rules
// (cofactorless, canonical A and R, S < L, small-order A rejected).
const SPECCHECK: { message: string; pub_key: string; signature: string; want: boolean }[] = [
  {
    message: '8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6',
    pub_key: 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
    signature:
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000',
    want: false,
  },
  {
    message: '9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79',
    pub_key: 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
    signature:
      'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04',
    want: false,
  },
  {
    message: 'aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab',
    pub_key: 'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43',
    signature:
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e',
    want: true,
  },
  {
    message: '9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79',
    pub_key: 'cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d',
    signature:
      '9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009',
    want: true,
  },
  {
    message: 'e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c',
    pub_key: 'cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d',
    signature:
      '160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09',
    want: false,
  },
  {
    message: 'e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c',
    pub_key: 'cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d',
    signature:
      '21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405',
    want: false,
  },
  {
    message: '85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40',
    pub_key: '442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623',
    signature:
      'e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514',
    want: false,
  },
  {
    message: '85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40',
    pub_key: '442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623',
    signature:
      '8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22',
    want: false,
  },
  {
    message: 'fdaebc429f4a735932a160da1301080c13280eea8bc280d1b392c6b9e6ba3a5a',
    pub_key: 'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43',
    signature:
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f454d370c8d9fc323a41450f8d513eafeb5b0697390c1e505a0d4ddc71f566607',
    want: false,
  },
  {
    message: '84b698d39be126ff55fe45079e6c8bf64a0d7db6994560b4e96b7021eb39c1a1',
    pub_key: 'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43',
    signature:
      'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f084d5b99c2a9463d9c8bd5026916996984eeec87ddf1d3be329006ace1b37b09',
    want: false,
  },
];

const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const le = (n: bigint): Uint8Array => {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
};
const fromLe = (b: Uint8Array): bigint => b.reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n);
const withS = (sig: Uint8Array, s: bigint): Uint8Array => {
  const out = sig.slice();
  out.set(le(s), 32);
  return out;
};

describe('crypto seam: noble and node backends agree', () => {
  it('gives identical SHA-256 digests', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        const a = NOBLE_BACKEND.sha256(data);
        const b = NODE_CRYPTO_BACKEND.sha256(data);
        expect(toHex(a)).toBe(toHex(b));
        expect(withBackend(NODE_CRYPTO_BACKEND, () => toHex(sha256(data)))).toBe(toHex(a));
      }),
      { numRuns: 300 },
    );
    expect(toHex(NOBLE_BACKEND.sha256(new Uint8Array(0)))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    const big = new Uint8Array(1 << 20).fill(0x61);
    expect(toHex(NODE_CRYPTO_BACKEND.sha256(big))).toBe(toHex(NOBLE_BACKEND.sha256(big)));
  });

  it('restores the previous backend', () => {
    const before = getCryptoBackend();
    expect(setCryptoBackend(NODE_CRYPTO_BACKEND)).toBe(before);
    expect(getCryptoBackend().name).toBe('node');
    setCryptoBackend(before);
    expect(getCryptoBackend()).toBe(before);
  });

  it.each(RFC8032)('verifies RFC 8032 §7.1 $pk', ({ sk, pk, msg, sig }) => {
    expect(toHex(ed25519.getPublicKey(fromHex(sk)))).toBe(pk);
    expect(verifyAll(fromHex(sig), fromHex(msg), fromHex(pk))).toBe(true);
    const flipped = fromHex(sig);
    flipped[10]! ^= 1;
    expect(verifyAll(flipped, fromHex(msg), fromHex(pk))).toBe(false);
  });

  it.each(SPECCHECK.map((c, i) => ({ i, ...c })))(
    'speccheck case $i (want $want)',
    ({ message, pub_key, signature, want }) => {
      expect(verifyAll(fromHex(signature), fromHex(message), fromHex(pub_key))).toBe(want);
      // The raw backends agree too (the seam only adds the small-order key check).
      const args = [fromHex(signature), fromHex(message), fromHex(pub_key)] as const;
      expect(NODE_CRYPTO_BACKEND.ed25519Verify(...args)).toBe(NOBLE_BACKEND.ed25519Verify(...args));
    },
  );

  it('rejects S ≥ L under both backends', () => {
    const { sig, msg, pk } = RFC8032[1]!;
    const s = fromLe(fromHex(sig).subarray(32));
    for (const bad of [s + L, s + 2n * L, L, 2n ** 256n - 1n]) {
      expect(verifyAll(withS(fromHex(sig), bad), fromHex(msg), fromHex(pk))).toBe(false);
    }
    expect(verifyAll(withS(fromHex(sig), s), fromHex(msg), fromHex(pk))).toBe(true);
  });

  it('rejects non-canonical encodings of A and R under both backends', () => {
    const { sig, msg, pk } = RFC8032[0]!;
    // y = p + d for d = 0..18 are the only non-canonical y values (with either sign bit).
    for (let d = 0; d < 19; d++) {
      for (const sign of [0, 0x80]) {
        const enc = new Uint8Array(32).fill(0xff);
        enc[0] = 0xed + d;
        enc[31] = 0x7f | sign;
        expect(verifyAll(fromHex(sig), fromHex(msg), enc)).toBe(false);
        const badR = fromHex(sig);
        badR.set(enc, 0);
        expect(verifyAll(badR, fromHex(msg), fromHex(pk))).toBe(false);
      }
    }
    // Wrong lengths.
    expect(verifyAll(fromHex(sig).subarray(1), fromHex(msg), fromHex(pk))).toBe(false);
    expect(verifyAll(fromHex(sig), fromHex(msg), fromHex(pk).subarray(1))).toBe(false);
  });

  it('raw backends reject wrong lengths and a zero S without throwing', () => {
    const { sig, msg, pk } = RFC8032[0]!;
    for (const b of BACKENDS) {
      expect(b.ed25519Verify(fromHex(sig).subarray(1), fromHex(msg), fromHex(pk))).toBe(false);
      expect(b.ed25519Verify(fromHex(sig), fromHex(msg), fromHex(pk).subarray(1))).toBe(false);
    }
    expect(verifyAll(withS(fromHex(sig), 0n), fromHex(msg), fromHex(pk))).toBe(false);
  });

  it('rejects every small-order public key, with or without the sign bit', () => {
    for (const hex of ED25519_TORSION_SUBGROUP) {
      for (const sign of [0, 0x80]) {
        const a = fromHex(hex);
        a[31] = (a[31]! & 0x7f) | sign;
        // R = identity, S = 0 verifies for small-order A under a plain cofactorless check.
        const sig = new Uint8Array(64);
        sig[0] = 1;
        expect(verifyAll(sig, new Uint8Array(0), a)).toBe(false);
        expect(verifyAll(sig, Uint8Array.of(1, 2, 3), a)).toBe(false);
      }
    }
  });

  it('agrees on random valid and tampered signatures', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 200 }),
        fc.nat(511),
        (seed, msg, bit) => {
          const pk = ed25519.getPublicKey(seed);
          const sig = ed25519.sign(msg, seed);
          expect(verifyAll(sig, msg, pk)).toBe(true);
          const bad = sig.slice();
          bad[bit >> 3]! ^= 1 << (bit & 7);
          expect(verifyAll(bad, msg, pk)).toBe(false);
          const otherMsg = Uint8Array.from([...msg, 0]);
          expect(verifyAll(sig, otherMsg, pk)).toBe(false);
        },
      ),
      { numRuns: 100 },
    );
  });
});
