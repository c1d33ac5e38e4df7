/**
 * ECVRF-EDWARDS25519-SHA512-TAI proving (RFC 9381 §5.1) for the sequencer, the directory's
 * write bottleneck. Three interchangeable provers produce byte-identical proofs:
 * - {@link NobleVrfProver}: `@keytrail/core`'s pure prover (the reference);
 * - {@link NativeVrfProver}: `sodium-native` point arithmetic for the three scalar
 *   multiplications and the try-and-increment decoding, reusing core's exported building
 *   blocks for everything else (about 10× faster than noble);
 * - {@link AddonVrfProver}: the whole proof in one native call per batch
 *   (`native/vrf_prove.c`, built by `npm run build:native` against libsodium's own ref10
 *   point arithmetic, without the subgroup check libsodium's public API repeats on every
 *   multiplication; about 2× faster than sodium-native).
 * {@link createFastProver} picks the addon when it is built and passes its self-check, else
 * sodium-native. `vrf-pool.ts` runs fast provers on worker threads.
 * @module
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import sodium from 'sodium-native';
import { vrf, bytes } from '@keytrail/core';

/** A proof and its output. */
export interface VrfOutput {
  /** The 80-byte proof π. */
  readonly proof: Uint8Array;
  /** β = ECVRF_proof_to_hash(π), 64 bytes. */
  readonly output: Uint8Array;
}

/** Proves VRF outputs for many inputs. */
export interface VrfProver {
  /** The VRF public key. */
  readonly publicKey: Uint8Array;
  /** The 80-byte proof for each input, in order. */
  prove(alphas: readonly Uint8Array[]): Promise<Uint8Array[]>;
  /**
   * Each input's proof and output, in order. Native provers compute β natively (core's
   * `proofToHash` decodes Γ in pure JavaScript, which would cost the caller's thread more than
   * the proof itself).
   */
  proveWithOutputs(alphas: readonly Uint8Array[]): Promise<VrfOutput[]>;
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
  proveWithOutputs(alphas: readonly Uint8Array[]): Promise<VrfOutput[]> {
    return Promise.resolve(
      alphas.map((a) => {
        const proof = vrf.prove(this.#sk, a);
        return { proof, output: vrf.proofToHash(proof) };
      }),
    );
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

const PROOF_TO_HASH_PREFIX = Buffer.of(vrf.SUITE_ID, 0x03);

/** ECVRF_proof_to_hash (RFC 9381 §5.2) with libsodium's point doubling, for a valid proof. */
function nativeProofToHash(proof: Uint8Array): Uint8Array {
  const p = Buffer.alloc(32);
  const gamma = Buffer.from(proof.buffer, proof.byteOffset, 32);
  try {
    sodium.crypto_core_ed25519_add(p, gamma, gamma);
    sodium.crypto_core_ed25519_add(p, p, p);
    sodium.crypto_core_ed25519_add(p, p, p);
  } catch {
    // libsodium refuses the identity as an input (Γ of small order: the reference handles it).
    return vrf.proofToHash(proof);
  }
  const out = createHash('sha512').update(PROOF_TO_HASH_PREFIX).update(p).update(CHALLENGE_SUFFIX);
  return new Uint8Array(out.digest());
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
    const k = proverKeys(secretKey);
    this.publicKey = k.pk;
    this.#pk = Buffer.from(k.pk);
    this.#x = Buffer.from(k.x);
    this.#prefix = Buffer.from(k.prefix);
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

  /** Proofs and outputs for many inputs, synchronously. */
  proveMany(alphas: readonly Uint8Array[]): VrfOutput[] {
    return alphas.map((a) => {
      const proof = this.proveOne(a);
      return { proof, output: nativeProofToHash(proof) };
    });
  }

  prove(alphas: readonly Uint8Array[]): Promise<Uint8Array[]> {
    return Promise.resolve(alphas.map((a) => this.proveOne(a)));
  }

  proveWithOutputs(alphas: readonly Uint8Array[]): Promise<VrfOutput[]> {
    return Promise.resolve(this.proveMany(alphas));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The Node-API addon built from `native/vrf_prove.c`. */
interface VrfAddon {
  proveBatch(
    x: Uint8Array,
    prefix: Uint8Array,
    pk: Uint8Array,
    alphas: Uint8Array,
    ends: Uint32Array,
    out: Uint8Array,
    betas: Uint8Array,
    status: Uint8Array,
  ): void;
}

/** Where the addon is built (the same relative place from `src/kt` and `dist/kt`). */
export const VRF_ADDON_PATH: string = fileURLToPath(
  new URL('../../native/build/keytrail_vrf.node', import.meta.url),
);

/** Which prover {@link createFastProver} uses, and why. */
export interface VrfAddonStatus {
  readonly loaded: boolean;
  readonly reason: string;
}

let addonCache: { addon: VrfAddon | undefined; status: VrfAddonStatus } | undefined;

// source: RFC 9381 Appendix B.3, Example 16 (the self-check run when the addon loads).
const SELF_CHECK = {
  sk: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
  pi: '8657106690b5526245a92b003bb079ccd1a92130477671f6fc01ad16f26f723f26f8a57ccaed74ee1b190bed1f479d9727d2d0f9b005a6e456a35d4fb0daab1268a1b0db10836d9826a528ca76567805',
};

function loadAddon(): { addon: VrfAddon | undefined; status: VrfAddonStatus } {
  if (addonCache) return addonCache;
  const off = (reason: string): { addon: undefined; status: VrfAddonStatus } => ({
    addon: undefined,
    status: { loaded: false, reason },
  });
  if (!existsSync(VRF_ADDON_PATH)) {
    addonCache = off('native addon not built (npm run build:native)');
  } else {
    try {
      const addon = createRequire(import.meta.url)(VRF_ADDON_PATH) as VrfAddon;
      const [r] = proveWithAddon(addon, bytes.fromHex(SELF_CHECK.sk), [new Uint8Array()]);
      addonCache =
        r !== undefined &&
        bytes.toHex(r.proof) === SELF_CHECK.pi &&
        bytes.toHex(r.output) === bytes.toHex(vrf.proofToHash(r.proof))
          ? { addon, status: { loaded: true, reason: 'native addon (libsodium ref10)' } }
          : off('native addon failed its RFC 9381 self-check');
    } catch (err) {
      addonCache = off(`native addon failed to load: ${(err as Error).message}`);
    }
  }
  return addonCache;
}

/** Whether the native addon is in use (for start-up logs and benchmarks). */
export function vrfAddonStatus(): VrfAddonStatus {
  return loadAddon().status;
}

function proveWithAddon(
  addon: VrfAddon,
  secretKey: Uint8Array,
  alphas: readonly Uint8Array[],
  keys?: { x: Uint8Array; prefix: Uint8Array; pk: Uint8Array },
): VrfOutput[] {
  const k = keys ?? proverKeys(secretKey);
  let total = 0;
  for (const a of alphas) total += a.length;
  const joined = new Uint8Array(total);
  const ends = new Uint32Array(alphas.length);
  let at = 0;
  alphas.forEach((a, i) => {
    joined.set(a, at);
    at += a.length;
    ends[i] = at;
  });
  const out = new Uint8Array(80 * alphas.length);
  const betas = new Uint8Array(64 * alphas.length);
  const status = new Uint8Array(alphas.length);
  addon.proveBatch(k.x, k.prefix, k.pk, joined, ends, out, betas, status);
  return alphas.map((a, i) => {
    if (status[i] === 0) {
      return {
        proof: out.subarray(80 * i, 80 * i + 80),
        output: betas.subarray(64 * i, 64 * i + 64),
      };
    }
    // Status 1: H has small order (probability about 2^-250); the reference handles it.
    const proof = vrf.prove(secretKey, a);
    return { proof, output: vrf.proofToHash(proof) };
  });
}

/** The prover's secret scalar x, nonce key (RFC 8032 prefix) and public key. */
function proverKeys(secretKey: Uint8Array): { x: Uint8Array; prefix: Uint8Array; pk: Uint8Array } {
  return {
    x: vrf.secretScalar(secretKey),
    prefix: new Uint8Array(createHash('sha512').update(secretKey).digest().subarray(32)),
    pk: vrf.publicKey(secretKey),
  };
}

/** The native addon prover, single-threaded: one native call per batch. */
export class AddonVrfProver implements VrfProver {
  readonly publicKey: Uint8Array;
  readonly #sk: Uint8Array;
  readonly #addon: VrfAddon;
  readonly #keys: { x: Uint8Array; prefix: Uint8Array; pk: Uint8Array };

  /** @throws Error when the addon is not available (see {@link vrfAddonStatus}). */
  constructor(secretKey: Uint8Array) {
    const { addon, status } = loadAddon();
    if (!addon) throw new Error(`VRF addon unavailable: ${status.reason}`);
    this.#addon = addon;
    this.#sk = secretKey.slice();
    this.#keys = proverKeys(secretKey);
    this.publicKey = this.#keys.pk;
  }

  /** Proofs and outputs for many inputs, synchronously. */
  proveMany(alphas: readonly Uint8Array[]): VrfOutput[] {
    return proveWithAddon(this.#addon, this.#sk, alphas, this.#keys);
  }

  prove(alphas: readonly Uint8Array[]): Promise<Uint8Array[]> {
    return Promise.resolve(this.proveMany(alphas).map((r) => r.proof));
  }

  proveWithOutputs(alphas: readonly Uint8Array[]): Promise<VrfOutput[]> {
    return Promise.resolve(this.proveMany(alphas));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A prover that also proves synchronously (for worker threads). */
export interface SyncVrfProver extends VrfProver {
  proveMany(alphas: readonly Uint8Array[]): VrfOutput[];
}

/**
 * The fastest single-threaded prover here: the addon if usable (and `useAddon`, the
 * `KT_VRF_ADDON` setting), else sodium-native.
 */
export function createFastProver(secretKey: Uint8Array, useAddon = true): SyncVrfProver {
  return useAddon && loadAddon().addon
    ? new AddonVrfProver(secretKey)
    : new NativeVrfProver(secretKey);
}
