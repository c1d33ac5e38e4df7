/**
 * ECVRF-EDWARDS25519-SHA512-TAI proving (RFC 9381 §5.1) for the sequencer, the directory's
 * write bottleneck. Two interchangeable provers produce byte-identical proofs:
 * - {@link NobleVrfProver}: `@keytrail/core`'s pure prover (the reference);
 * - {@link NativeVrfProver}: `sodium-native` point arithmetic for the three scalar
 *   multiplications and the try-and-increment decoding, reusing core's exported building
 *   blocks for everything else (about 10× faster).
 * `vrf-pool.ts` runs native provers on worker threads.
 * @module
 */
import { createHash } from 'node:crypto';
import sodium from 'sodium-native';
import { vrf } from '@keytrail/core';

/** Proves VRF outputs for many inputs. */
export interface VrfProver {
  /** The VRF public key. */
  readonly publicKey: Uint8Array;
  /** The 80-byte proof for each input, in order. */
  prove(alphas: readonly Uint8Array[]): Promise<Uint8Array[]>;
  /** Releases threads, if any. */
  close(): Promise<void>;
}

/** `@keytrail/core`'s pure prover. */
export class NobleVrfProver implements VrfProver {
  readonly publicKey: Uint8Array;
  readonly #sk: Uint8Array;
  constructor(secretKey: Uint8Array) {
    this.#sk = secretKey.slice();
    this.publicKey = vrf.publicKey(secretKey);
  }
  prove(alphas: readonly Uint8Array[]): Promise<Uint8Array[]> {
    return Promise.resolve(alphas.map((a) => vrf.prove(this.#sk, a)));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const CHALLENGE_PREFIX = Buffer.of(vrf.SUITE_ID, 0x02);
const CHALLENGE_SUFFIX = Buffer.of(0x00);

// p = 2^255 - 19. An encoding is canonical iff y < p; x = 0 with the sign bit set (y = ±1) is
// rejected by RFC 8032 decoding but not by libsodium, so it is checked here.
function isStrictEncoding(enc: Uint8Array): boolean {
  const top = (enc[31] ?? 0) & 0x7f;
  let yAtLeastP = top === 0x7f && (enc[0] ?? 0) >= 0xed;
  for (let i = 1; i < 31 && yAtLeastP; i++) if (enc[i] !== 0xff) yAtLeastP = false;
  if (yAtLeastP) return false;
  if (((enc[31] ?? 0) & 0x80) !== 0) {
    // y = 1: 01 00…00; y = p − 1: ec ff…ff 7f (before the sign bit).
    let one = enc[0] === 1 && top === 0;
    for (let i = 1; i < 31 && one; i++) if (enc[i] !== 0) one = false;
    let minusOne = enc[0] === 0xec && top === 0x7f;
    for (let i = 1; i < 31 && minusOne; i++) if (enc[i] !== 0xff) minusOne = false;
    if (one || minusOne) return false;
  }
  return true;
}

/**
 * The sodium-native prover, single-threaded. Falls back to core's prover for an input whose
 * hash-to-curve point is of small order (probability about 2^-250), where libsodium refuses.
 */
export class NativeVrfProver implements VrfProver {
  readonly publicKey: Uint8Array;
  readonly #sk: Uint8Array;
  readonly #x: Buffer;
  readonly #prefix: Buffer;
  readonly #pk: Buffer;

  constructor(secretKey: Uint8Array) {
    this.#sk = secretKey.slice();
    this.publicKey = vrf.publicKey(secretKey);
    this.#pk = Buffer.from(this.publicKey);
    this.#x = Buffer.from(vrf.secretScalar(secretKey));
    this.#prefix = createHash('sha512').update(secretKey).digest().subarray(32);
  }

  /** H = 8 · decode(SHA-512(0x03 ‖ 0x01 ‖ PK ‖ α ‖ ctr ‖ 0x00)[0..32]) for the first ctr that decodes. */
  #encodeToCurve(alpha: Uint8Array): Buffer {
    const input = Buffer.concat([Buffer.of(0x03, 0x01), this.#pk, alpha, Buffer.of(0, 0)]);
    const ctrAt = input.length - 2;
    const p = Buffer.alloc(32);
    for (let ctr = 0; ctr < 256; ctr++) {
      input[ctrAt] = ctr;
      const candidate = createHash('sha512').update(input).digest().subarray(0, 32);
      if (!isStrictEncoding(candidate)) continue;
      try {
        // Decodes and checks the curve equation; throws when there is no square root.
        sodium.crypto_core_ed25519_add(p, candidate, candidate);
      } catch {
        continue;
      }
      sodium.crypto_core_ed25519_add(p, p, p);
      sodium.crypto_core_ed25519_add(p, p, p);
      return p;
    }
    /* v8 ignore next */
    throw new Error('ECVRF encode_to_curve: no valid point after 256 tries');
  }

  /** One proof. */
  proveOne(alpha: Uint8Array): Uint8Array {
    try {
      const h = this.#encodeToCurve(alpha);
      const gamma = Buffer.alloc(32);
      sodium.crypto_scalarmult_ed25519_noclamp(gamma, this.#x, h);
      const k = Buffer.alloc(32);
      sodium.crypto_core_ed25519_scalar_reduce(
        k,
        createHash('sha512').update(this.#prefix).update(h).digest(),
      );
      const u = Buffer.alloc(32);
      sodium.crypto_scalarmult_ed25519_base_noclamp(u, k);
      const v = Buffer.alloc(32);
      sodium.crypto_scalarmult_ed25519_noclamp(v, k, h);
      // ECVRF_challenge_generation (RFC 9381 §5.4.3) with the native SHA-512; the same bytes
      // as core's challengeGeneration (the tests compare whole proofs).
      const c = createHash('sha512')
        .update(CHALLENGE_PREFIX)
        .update(this.#pk)
        .update(h)
        .update(gamma)
        .update(u)
        .update(v)
        .update(CHALLENGE_SUFFIX)
        .digest()
        .subarray(0, vrf.CHALLENGE_SIZE);
      return vrf.encodeProof(gamma, c, vrf.proofScalar(k, c, this.#x));
    } catch {
      // libsodium refuses small-order points and zero scalars; the reference handles them.
      return vrf.prove(this.#sk, alpha);
    }
  }

  prove(alphas: readonly Uint8Array[]): Promise<Uint8Array[]> {
    return Promise.resolve(alphas.map((a) => this.proveOne(a)));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
