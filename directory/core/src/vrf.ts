/**
 * ECVRF-EDWARDS25519-SHA512-TAI, RFC 9381 §5 (suite string 0x03), on `@noble/curves`.
 *
 * - Key generation, prove and verify follow §5.1, §5.3 and §5.4 exactly; `proofToHash` is §5.2.
 * - Point decoding is strict RFC 8032 §5.1.3: a y coordinate ≥ p or x = 0 with the sign bit set
 *   is rejected, so every accepted proof and key has exactly one encoding.
 * - `verify` rejects `s ≥ L` (§5.4.4) and runs ECVRF_validate_key (§5.4.5): a public key of
 *   small order is refused.
 * - IETF KEYTRANS suite `KT_128_SHA256_Ed25519` (0x0002) uses the first {@link KT_OUTPUT_SIZE}
 *   bytes of β as the prefix-tree search key, and {@link vrfInput} as α.
 *
 * Prove is constant-time in the secret scalar and nonce (`multiply`); verify works on public
 * data only and uses variable-time multiplication (`multiplyUnsafe` and an interleaved
 * Straus–Shamir double multiplication for `s·H − c·Γ`).
 *
 * The building blocks ({@link encodeToCurveTai}, {@link nonceGeneration},
 * {@link challengeGeneration}, {@link secretScalar}, {@link proofScalar}, {@link encodeProof},
 * {@link decodeProof}) are exported so that a native prover (for example `sodium-native`
 * point arithmetic on a server) computes only the three scalar multiplications itself and
 * produces proofs byte-identical to {@link prove}:
 *
 * ```ts
 * const x = vrf.secretScalar(sk);                       // 32-byte little-endian scalar
 * const pk = vrf.publicKey(sk);                         // or native x·B
 * const { h } = vrf.encodeToCurveTai(pk, alpha);
 * const gamma = nativeScalarMult(x, h);                 // x·H
 * const k = vrf.nonceGeneration(sk, h);
 * const u = nativeScalarMultBase(k);                    // k·B
 * const v = nativeScalarMult(k, h);                     // k·H
 * const c = vrf.challengeGeneration(pk, h, gamma, u, v);
 * const proof = vrf.encodeProof(gamma, c, vrf.proofScalar(k, c, x));
 * ```
 * @module
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { mulAddUnsafe } from '@noble/curves/abstract/curve.js';
import type { EdwardsPoint } from '@noble/curves/abstract/edwards.js';
import { bytesToNumberLE, numberToBytesLE } from '@noble/curves/utils.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { concatBytes, equalBytes } from './bytes.ts';
import { MalformedError, VerificationError } from './errors.ts';
import { Writer } from './encoding.ts';

const Point = ed25519.Point;
const L = Point.Fn.ORDER;

/** The RFC 9381 suite string of ECVRF-EDWARDS25519-SHA512-TAI. */
export const SUITE_ID = 0x03;
/** Length of a secret key (an RFC 8032 seed). */
export const SECRET_KEY_SIZE = 32;
/** Length of an encoded public key. */
export const PUBLIC_KEY_SIZE = 32;
/** Length of a proof: Γ (32) ‖ c (16) ‖ s (32). */
export const PROOF_SIZE = 80;
/** Length of the challenge `c` (cLen). */
export const CHALLENGE_SIZE = 16;
/** Length of the full VRF output β (SHA-512). */
export const OUTPUT_SIZE = 64;
/** Bytes of β that IETF KEYTRANS suite 0x0002 uses (`VRF.Nh`): the prefix-tree search key. */
export const KT_OUTPUT_SIZE = 32;

const DS_ENCODE = 0x01;
const DS_CHALLENGE = 0x02;
const DS_PROOF_TO_HASH = 0x03;
const DS_BACK = 0x00;

function checkLength(bytes: Uint8Array, length: number, name: string): void {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${name}: expected Uint8Array`);
  if (bytes.length !== length) {
    throw new RangeError(`${name}: expected ${length} bytes, got ${bytes.length}`);
  }
}

function malformed(message: string, cause?: unknown): MalformedError {
  return new MalformedError('ERR_VRF_MALFORMED', message, cause === undefined ? {} : { cause });
}

/** Strict RFC 8032 §5.1.3 decoding; `what` names the input in the error message. */
function decodePoint(bytes: Uint8Array, what: string): EdwardsPoint {
  try {
    return Point.fromBytes(bytes, false);
  } catch (cause) {
    throw malformed(`${what} is not a canonical edwards25519 point`, cause);
  }
}

interface ExpandedKey {
  /** The secret scalar, clamped (RFC 8032 §5.1.5) and reduced mod L. */
  readonly x: bigint;
  /** SHA-512(SK)[32..64], the nonce prefix (RFC 9381 §5.4.2.2). */
  readonly prefix: Uint8Array;
}

function expand(secretKey: Uint8Array): ExpandedKey {
  checkLength(secretKey, SECRET_KEY_SIZE, 'secretKey');
  const h = sha512(secretKey);
  const head = h.slice(0, 32);
  head[0] = (head[0] as number) & 248;
  head[31] = ((head[31] as number) & 127) | 64;
  // The clamped scalar is < 2^255; points of the prime-order subgroup (B, and H after cofactor
  // clearing) give the same product for x and x mod L, and `multiply` wants 1 ≤ x < L.
  return { x: bytesToNumberLE(head) % L, prefix: h.slice(32, 64) };
}

/**
 * The public key of an RFC 8032 secret key (§5.1.5): `x·B`, the same bytes as an Ed25519
 * public key of that seed.
 * @throws RangeError if `secretKey` is not 32 bytes.
 */
export function publicKey(secretKey: Uint8Array): Uint8Array {
  return Point.BASE.multiply(expand(secretKey).x).toBytes();
}

/**
 * The secret scalar `x` of an RFC 8032 secret key, clamped and reduced mod L, as 32
 * little-endian bytes. For native provers; keep it secret.
 * @throws RangeError if `secretKey` is not 32 bytes.
 */
export function secretScalar(secretKey: Uint8Array): Uint8Array {
  return numberToBytesLE(expand(secretKey).x, 32);
}

interface EncodedToCurve {
  readonly point: EdwardsPoint;
  readonly h: Uint8Array;
  readonly ctr: number;
}

function encodeToCurvePoint(pk: Uint8Array, alpha: Uint8Array): EncodedToCurve {
  const input = concatBytes(
    Uint8Array.of(SUITE_ID, DS_ENCODE),
    pk,
    alpha,
    Uint8Array.of(0, DS_BACK),
  );
  const ctrAt = input.length - 2;
  for (let ctr = 0; ctr < 256; ctr++) {
    input[ctrAt] = ctr;
    const candidate = sha512(input).subarray(0, 32);
    let p: EdwardsPoint;
    try {
      // interpret_hash_value_as_a_point: strict decoding, so non-canonical strings are
      // skipped exactly as the RFC's reference implementation skips them.
      p = Point.fromBytes(candidate, false);
    } catch {
      continue;
    }
    const point = p.clearCofactor();
    return { point, h: point.toBytes(), ctr };
  }
  // Each try succeeds with probability about 1/2, so 256 failures do not happen.
  /* v8 ignore next */
  throw new Error('ECVRF encode_to_curve: no valid point after 256 tries');
}

/**
 * ECVRF_encode_to_curve_try_and_increment (RFC 9381 §5.4.1.1) with the public key as salt:
 * for ctr = 0, 1, …, decode `SHA-512(0x03 ‖ 0x01 ‖ PK ‖ alpha ‖ ctr ‖ 0x00)[0..32]` as a point
 * and multiply it by the cofactor 8.
 * @param publicKey - the 32-byte public key `PK_string` (not validated here).
 * @returns `h`: the encoded point H (`point_to_string(H)`), and the counter that produced it.
 * @throws RangeError if `publicKey` is not 32 bytes.
 */
export function encodeToCurveTai(
  publicKey: Uint8Array,
  alpha: Uint8Array,
): { h: Uint8Array; ctr: number } {
  checkLength(publicKey, PUBLIC_KEY_SIZE, 'publicKey');
  const { h, ctr } = encodeToCurvePoint(publicKey, alpha);
  return { h, ctr };
}

function nonce(prefix: Uint8Array, h: Uint8Array): bigint {
  return bytesToNumberLE(sha512(concatBytes(prefix, h))) % L;
}

/**
 * ECVRF_nonce_generation for edwards25519 (RFC 9381 §5.4.2.2, as RFC 8032 §5.1.6):
 * `k = SHA-512(SHA-512(SK)[32..64] ‖ h) mod L`.
 * @param h - `point_to_string(H)` from {@link encodeToCurveTai}.
 * @returns k as 32 little-endian bytes. Keep it secret: it reveals the key together with a proof.
 * @throws RangeError if `secretKey` or `h` is not 32 bytes.
 */
export function nonceGeneration(secretKey: Uint8Array, h: Uint8Array): Uint8Array {
  checkLength(h, 32, 'h');
  return numberToBytesLE(nonce(expand(secretKey).prefix, h), 32);
}

/**
 * ECVRF_challenge_generation (RFC 9381 §5.4.3):
 * `c = SHA-512(0x03 ‖ 0x02 ‖ Y ‖ H ‖ Γ ‖ U ‖ V ‖ 0x00)[0..16]`.
 * @param y - the public key; `h` H; `gamma` Γ; `u` k·B (or s·B − c·Y); `v` k·H (or s·H − c·Γ),
 *   each a 32-byte encoded point.
 * @returns the 16-byte challenge string (little-endian integer c).
 * @throws RangeError if an argument is not 32 bytes.
 */
export function challengeGeneration(
  y: Uint8Array,
  h: Uint8Array,
  gamma: Uint8Array,
  u: Uint8Array,
  v: Uint8Array,
): Uint8Array {
  const parts = { y, h, gamma, u, v };
  for (const [name, p] of Object.entries(parts)) checkLength(p, 32, name);
  const digest = sha512(
    concatBytes(Uint8Array.of(SUITE_ID, DS_CHALLENGE), y, h, gamma, u, v, Uint8Array.of(DS_BACK)),
  );
  return digest.slice(0, CHALLENGE_SIZE);
}

/**
 * The proof's response scalar `s = (k + c·x) mod L` (RFC 9381 §5.1 step 6).
 * @param k - the nonce from {@link nonceGeneration} (32 bytes, little-endian).
 * @param c - the challenge from {@link challengeGeneration} (16 bytes, little-endian).
 * @param x - the secret scalar from {@link secretScalar} (32 bytes, little-endian).
 * @returns s as 32 little-endian bytes.
 * @throws RangeError on wrong lengths.
 */
export function proofScalar(k: Uint8Array, c: Uint8Array, x: Uint8Array): Uint8Array {
  checkLength(k, 32, 'k');
  checkLength(c, CHALLENGE_SIZE, 'c');
  checkLength(x, 32, 'x');
  const s = (bytesToNumberLE(k) + bytesToNumberLE(c) * bytesToNumberLE(x)) % L;
  return numberToBytesLE(s, 32);
}

/**
 * Serialises a proof: `Γ (32) ‖ c (16) ‖ s (32)` (RFC 9381 §5.1 step 7).
 * @throws RangeError on wrong lengths.
 */
export function encodeProof(gamma: Uint8Array, c: Uint8Array, s: Uint8Array): Uint8Array {
  checkLength(gamma, 32, 'gamma');
  checkLength(c, CHALLENGE_SIZE, 'c');
  checkLength(s, 32, 's');
  return new Writer(PROOF_SIZE).bytes(gamma).bytes(c).bytes(s).finish();
}

interface DecodedProof {
  readonly gamma: EdwardsPoint;
  readonly c: bigint;
  readonly s: bigint;
}

function decodeProofPoints(proof: Uint8Array): DecodedProof {
  if (!(proof instanceof Uint8Array)) throw new TypeError('proof: expected Uint8Array');
  if (proof.length !== PROOF_SIZE) {
    throw malformed(`proof must be ${PROOF_SIZE} bytes, got ${proof.length}`);
  }
  const gamma = decodePoint(proof.subarray(0, 32), 'proof Gamma');
  const c = bytesToNumberLE(proof.subarray(32, 48));
  const s = bytesToNumberLE(proof.subarray(48, 80));
  // §5.4.4 step 8: a non-reduced s would give a second encoding of the same proof.
  if (s >= L) throw malformed('proof scalar s is not reduced (s ≥ L)');
  return { gamma, c, s };
}

/**
 * ECVRF_decode_proof (RFC 9381 §5.4.4): splits and validates a proof.
 * @returns copies of the three parts; `gamma` is a canonical point encoding and `s < L`.
 * @throws MalformedError `ERR_VRF_MALFORMED` for a wrong length, a Γ that is not a canonical
 *   point encoding, or s ≥ L.
 */
export function decodeProof(proof: Uint8Array): {
  gamma: Uint8Array;
  c: Uint8Array;
  s: Uint8Array;
} {
  decodeProofPoints(proof);
  return { gamma: proof.slice(0, 32), c: proof.slice(32, 48), s: proof.slice(48, 80) };
}

function gammaToHash(gamma: EdwardsPoint): Uint8Array {
  return sha512(
    concatBytes(
      Uint8Array.of(SUITE_ID, DS_PROOF_TO_HASH),
      gamma.clearCofactor().toBytes(),
      Uint8Array.of(DS_BACK),
    ),
  );
}

/**
 * ECVRF_prove (RFC 9381 §5.1). Deterministic: the same key and input always give the same
 * proof. Constant-time in the secret key.
 * @param secretKey - 32-byte RFC 8032 secret key (seed).
 * @param alpha - the VRF input (for KEYTRANS, {@link vrfInput}).
 * @returns the 80-byte proof π.
 * @throws RangeError if `secretKey` is not 32 bytes.
 */
export function prove(secretKey: Uint8Array, alpha: Uint8Array): Uint8Array {
  const { x, prefix } = expand(secretKey);
  const pk = Point.BASE.multiply(x).toBytes();
  const { point: H, h } = encodeToCurvePoint(pk, alpha);
  const gamma = H.multiply(x).toBytes();
  const k = nonce(prefix, h);
  const u = Point.BASE.multiply(k).toBytes();
  const v = H.multiply(k).toBytes();
  const c = challengeGeneration(pk, h, gamma, u, v);
  const s = (k + bytesToNumberLE(c) * x) % L;
  return encodeProof(gamma, c, numberToBytesLE(s, 32));
}

/**
 * ECVRF_verify (RFC 9381 §5.3) with key validation (§5.4.5).
 * @param publicKey - the 32-byte public key.
 * @param alpha - the VRF input.
 * @param proof - the 80-byte proof π.
 * @returns β, the 64-byte VRF output (KEYTRANS uses its first {@link KT_OUTPUT_SIZE} bytes).
 * @throws MalformedError `ERR_VRF_MALFORMED` if the key or proof has the wrong length, is not a
 *   canonical point encoding, or s ≥ L.
 * @throws VerificationError `ERR_VRF_INVALID` if the public key has small order or the proof
 *   does not verify.
 */
export function verify(publicKey: Uint8Array, alpha: Uint8Array, proof: Uint8Array): Uint8Array {
  if (!(publicKey instanceof Uint8Array)) throw new TypeError('publicKey: expected Uint8Array');
  if (publicKey.length !== PUBLIC_KEY_SIZE) {
    throw malformed(`public key must be ${PUBLIC_KEY_SIZE} bytes, got ${publicKey.length}`);
  }
  const Y = decodePoint(publicKey, 'public key');
  if (Y.isSmallOrder()) {
    throw new VerificationError('ERR_VRF_INVALID', 'VRF public key has small order');
  }
  const { gamma, c, s } = decodeProofPoints(proof);
  const { point: H, h } = encodeToCurvePoint(publicKey, alpha);
  // Public data only: variable-time arithmetic. c < 2^128, so c·Y costs half a full
  // multiplication, and s·H − c·Γ shares one doubling chain.
  const U = Point.BASE.multiplyUnsafe(s).add(Y.negate().multiplyUnsafe(c));
  const V = mulAddUnsafe(Point, [H, gamma.negate()], [s, c]);
  const expected = challengeGeneration(
    publicKey,
    h,
    proof.subarray(0, 32),
    U.toBytes(),
    V.toBytes(),
  );
  if (!equalBytes(expected, proof.subarray(32, 48))) {
    throw new VerificationError('ERR_VRF_INVALID', 'VRF proof does not verify');
  }
  return gammaToHash(gamma);
}

/**
 * ECVRF_proof_to_hash (RFC 9381 §5.2): β = SHA-512(0x03 ‖ 0x03 ‖ (8·Γ) ‖ 0x00). This does not
 * verify the proof; use {@link verify}, which returns β, unless the proof was verified before.
 * @throws MalformedError `ERR_VRF_MALFORMED` if the proof does not decode.
 */
export function proofToHash(proof: Uint8Array): Uint8Array {
  return gammaToHash(decodeProofPoints(proof).gamma);
}

/**
 * IETF KEYTRANS `VrfInput` (draft-ietf-keytrans-protocol §11.7), the α of a label-version pair:
 * `struct { opaque label<0..2^8-1>; uint32 version; }`.
 * @throws MalformedError `ERR_ENCODING_TOO_LARGE` if the label is longer than 255 bytes.
 * @throws RangeError if `version` is not a uint32.
 */
export function vrfInput(label: Uint8Array, version: number): Uint8Array {
  return new Writer(label.length + 5).opaque8(label).u32(version).finish();
}
