import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ed25519, ED25519_TORSION_SUBGROUP } from '@noble/curves/ed25519.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import * as vrf from '../src/vrf.ts';
import { fromHex, toHex, utf8 } from '../src/bytes.ts';
import { KtError, MalformedError, VerificationError } from '../src/errors.ts';
import vectors from './vectors/ecvrf-rfc9381.json' with { type: 'json' };

const Point = ed25519.Point;
const L = Point.Fn.ORDER;
const P = 2n ** 255n - 19n;

function expectCode(fn: () => unknown, code: string, cls: typeof KtError = KtError): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected ${code}`).toBeInstanceOf(cls);
  expect((caught as KtError).code).toBe(code);
}

const ex16 = vectors.vectors[0]!;
const ex16pk = fromHex(ex16.pk);
const ex16pi = fromHex(ex16.pi);
const alpha16 = fromHex(ex16.alpha);

describe('RFC 9381 Appendix B.3 vectors (ECVRF-EDWARDS25519-SHA512-TAI)', () => {
  it('has the vectors', () => {
    expect(vectors.vectors.length).toBe(3);
  });
  for (const v of vectors.vectors) {
    describe(v.desc, () => {
      const sk = fromHex(v.sk);
      const alpha = fromHex(v.alpha);
      it('derives the public key', () => {
        expect(toHex(vrf.publicKey(sk))).toBe(v.pk);
      });
      it('proves π', () => {
        expect(toHex(vrf.prove(sk, alpha))).toBe(v.pi);
      });
      it('verifies and returns β', () => {
        expect(toHex(vrf.verify(fromHex(v.pk), alpha, fromHex(v.pi)))).toBe(v.beta);
      });
      it('proofToHash gives β', () => {
        expect(toHex(vrf.proofToHash(fromHex(v.pi)))).toBe(v.beta);
      });
      const { h: wantH, ctr: wantCtr, x: wantX } = v as { h?: string; ctr?: number; x?: string };
      if (wantH !== undefined) {
        it(`encodes to the curve at ctr = ${String(wantCtr)}`, () => {
          const { h, ctr } = vrf.encodeToCurveTai(fromHex(v.pk), alpha);
          expect(toHex(h)).toBe(wantH);
          expect(ctr).toBe(wantCtr);
        });
      }
      if (wantX !== undefined) {
        it('secretScalar is the clamped scalar reduced mod L', () => {
          const x = bytesToNumberLE(fromHex(wantX)) % L;
          expect(toHex(vrf.secretScalar(sk))).toBe(toHex(numberToBytesLE(x, 32)));
        });
      }
    });
  }

  it('Example 17 exercises the try-and-increment retry', () => {
    const ex17 = vectors.vectors[1]!;
    expect(vrf.encodeToCurveTai(fromHex(ex17.pk), fromHex(ex17.alpha)).ctr).toBe(1);
  });
});

describe('building blocks for a native prover', () => {
  it('compose to a proof byte-identical to prove()', () => {
    for (const v of vectors.vectors) {
      const sk = fromHex(v.sk);
      const alpha = fromHex(v.alpha);
      const x = vrf.secretScalar(sk);
      const pk = vrf.publicKey(sk);
      const { h } = vrf.encodeToCurveTai(pk, alpha);
      // Stand-ins for sodium's crypto_scalarmult_ed25519_noclamp / _base_noclamp.
      const mult = (scalar: Uint8Array, point: Uint8Array): Uint8Array =>
        Point.fromBytes(point).multiply(bytesToNumberLE(scalar)).toBytes();
      const multBase = (scalar: Uint8Array): Uint8Array =>
        Point.BASE.multiply(bytesToNumberLE(scalar)).toBytes();
      const gamma = mult(x, h);
      const k = vrf.nonceGeneration(sk, h);
      const c = vrf.challengeGeneration(pk, h, gamma, multBase(k), mult(k, h));
      const proof = vrf.encodeProof(gamma, c, vrf.proofScalar(k, c, x));
      expect(toHex(proof)).toBe(v.pi);
      expect(vrf.decodeProof(proof)).toEqual({
        gamma: proof.slice(0, 32),
        c: proof.slice(32, 48),
        s: proof.slice(48, 80),
      });
    }
  });

  it('reject values that are not byte arrays with TypeError', () => {
    const notBytes = [1, 2, 3] as unknown as Uint8Array;
    expect(() => vrf.publicKey(notBytes)).toThrow(TypeError);
    expect(() => vrf.verify(notBytes, alpha16, ex16pi)).toThrow(TypeError);
    expect(() => vrf.verify(ex16pk, alpha16, notBytes)).toThrow(TypeError);
    expect(() => vrf.proofToHash(notBytes)).toThrow(TypeError);
  });

  it('reject wrong lengths with RangeError', () => {
    const z = new Uint8Array(32);
    expect(() => vrf.encodeToCurveTai(new Uint8Array(31), z)).toThrow(RangeError);
    expect(() => vrf.nonceGeneration(z, new Uint8Array(33))).toThrow(RangeError);
    expect(() => vrf.challengeGeneration(z, z, z, z, new Uint8Array(31))).toThrow(RangeError);
    expect(() => vrf.proofScalar(z, new Uint8Array(32), z)).toThrow(RangeError);
    expect(() => vrf.encodeProof(z, new Uint8Array(16), new Uint8Array(31))).toThrow(RangeError);
    expect(() => vrf.publicKey(new Uint8Array(64))).toThrow(RangeError);
    expect(() => vrf.prove(new Uint8Array(31), z)).toThrow(RangeError);
  });
});

describe('verify rejects', () => {
  it('s ≥ L as malformed (non-reduced scalar)', () => {
    const s = bytesToNumberLE(ex16pi.subarray(48));
    for (const bad of [s + L, L, 2n ** 256n - 1n]) {
      const pi = ex16pi.slice();
      pi.set(numberToBytesLE(bad, 32), 48);
      expectCode(() => vrf.verify(ex16pk, alpha16, pi), 'ERR_VRF_MALFORMED', MalformedError);
      expectCode(() => vrf.proofToHash(pi), 'ERR_VRF_MALFORMED', MalformedError);
      expectCode(() => vrf.decodeProof(pi), 'ERR_VRF_MALFORMED', MalformedError);
    }
  });

  it('a non-canonical Γ encoding (y ≥ p, or x = 0 with the sign bit set)', () => {
    // The identity point (x = 0, y = 1) encoded with y + p, and with the sign bit set.
    const yPlusP = numberToBytesLE(1n + P, 32);
    const signedZero = numberToBytesLE(1n, 32);
    signedZero[31] = 0x80;
    for (const gamma of [yPlusP, signedZero]) {
      const pi = ex16pi.slice();
      pi.set(gamma, 0);
      expectCode(() => vrf.verify(ex16pk, alpha16, pi), 'ERR_VRF_MALFORMED', MalformedError);
    }
  });

  it('a Γ that is not on the curve', () => {
    // Find a y with no matching x.
    let y = 2n;
    for (; ; y++) {
      try {
        Point.fromBytes(numberToBytesLE(y, 32));
      } catch {
        break;
      }
    }
    const pi = ex16pi.slice();
    pi.set(numberToBytesLE(y, 32), 0);
    expectCode(() => vrf.verify(ex16pk, alpha16, pi), 'ERR_VRF_MALFORMED', MalformedError);
  });

  it('small-order public keys (ECVRF_validate_key)', () => {
    const torsion = ED25519_TORSION_SUBGROUP.map((hex) => fromHex(hex));
    expect(torsion.length).toBe(8);
    for (const pk of torsion) {
      expectCode(() => vrf.verify(pk, alpha16, ex16pi), 'ERR_VRF_INVALID', VerificationError);
    }
  });

  it('non-canonical public key encodings (y ≥ p) as malformed', () => {
    // Only y < 19 has a second encoding y + p below 2^255; y = 1 is the identity.
    for (const y of [1n, 0n, 18n]) {
      const pk = numberToBytesLE(y + P, 32);
      expectCode(() => vrf.verify(pk, alpha16, ex16pi), 'ERR_VRF_MALFORMED', MalformedError);
    }
  });

  it('wrong lengths as malformed', () => {
    for (const n of [0, 31, 33, 64]) {
      expectCode(() => vrf.verify(new Uint8Array(n), alpha16, ex16pi), 'ERR_VRF_MALFORMED');
    }
    for (const n of [0, 79, 81]) {
      expectCode(() => vrf.verify(ex16pk, alpha16, new Uint8Array(n)), 'ERR_VRF_MALFORMED');
      expectCode(() => vrf.proofToHash(new Uint8Array(n)), 'ERR_VRF_MALFORMED');
    }
  });

  it('a different input', () => {
    expectCode(() => vrf.verify(ex16pk, utf8('x'), ex16pi), 'ERR_VRF_INVALID', VerificationError);
  });

  it('another valid key', () => {
    const other = fromHex(vectors.vectors[1]!.pk);
    expectCode(() => vrf.verify(other, alpha16, ex16pi), 'ERR_VRF_INVALID', VerificationError);
  });

  it('every single-bit flip of the proof and of the public key', () => {
    let malformed = 0;
    let invalid = 0;
    const check = (pk: Uint8Array, pi: Uint8Array): void => {
      try {
        vrf.verify(pk, alpha16, pi);
      } catch (err) {
        expect(err).toBeInstanceOf(KtError);
        const code = (err as KtError).code;
        if (code === 'ERR_VRF_MALFORMED') malformed++;
        else if (code === 'ERR_VRF_INVALID') invalid++;
        else throw err;
        return;
      }
      throw new Error('a tampered proof verified');
    };
    for (let bit = 0; bit < 640; bit++) {
      const pi = ex16pi.slice();
      pi[bit >> 3]! ^= 1 << (bit & 7);
      check(ex16pk, pi);
    }
    for (let bit = 0; bit < 256; bit++) {
      const pk = ex16pk.slice();
      pk[bit >> 3]! ^= 1 << (bit & 7);
      check(pk, ex16pi);
    }
    expect(malformed + invalid).toBe(896);
    expect(malformed).toBeGreaterThan(0);
    expect(invalid).toBeGreaterThan(0);
  });
});

describe('properties', () => {
  it('verify(prove) returns proofToHash, and the KT output is its first 32 bytes', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 64 }),
        (sk, alpha) => {
          const pk = vrf.publicKey(sk);
          expect(toHex(pk)).toBe(toHex(ed25519.getPublicKey(sk)));
          const pi = vrf.prove(sk, alpha);
          const beta = vrf.verify(pk, alpha, pi);
          expect(beta.length).toBe(vrf.OUTPUT_SIZE);
          expect(toHex(beta)).toBe(toHex(vrf.proofToHash(pi)));
          expect(vrf.KT_OUTPUT_SIZE).toBe(32);
          // Deterministic.
          expect(toHex(vrf.prove(sk, alpha))).toBe(toHex(pi));
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe('vrfInput (KEYTRANS VrfInput)', () => {
  it('encodes opaque label<0..255> then uint32 version', () => {
    expect(toHex(vrf.vrfInput(utf8('alice'), 7))).toBe('05616c69636500000007');
    expect(toHex(vrf.vrfInput(new Uint8Array(0), 0xffff_ffff))).toBe('00ffffffff');
  });
  it('rejects long labels and bad versions', () => {
    expectCode(() => vrf.vrfInput(new Uint8Array(256), 0), 'ERR_ENCODING_TOO_LARGE');
    expect(() => vrf.vrfInput(new Uint8Array(1), -1)).toThrow(RangeError);
    expect(() => vrf.vrfInput(new Uint8Array(1), 2 ** 32)).toThrow(RangeError);
  });
});
