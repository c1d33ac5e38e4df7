/**
 * X3DH key agreement (Signal specification rev. 1, 2016-11-04) with room for a post-quantum KEM
 * in the style of PQXDH (rev. 1, 2023-05-24):
 *
 * - Bundle (§3.2): identity key IK_B (Ed25519, X25519 form by `toMontgomery`), signed prekey
 *   SPK_B with Sig(IK_B, `Keytrail_SignedPreKey_v1` ‖ u32 id ‖ SPK_B), at most one one-time
 *   prekey OPK_B, and optionally a signed KEM prekey (field present in the format from v1;
 *   a KEM is used only when the caller supplies an implementation, see {@link Kem}).
 * - Alice (§3.3): DH1 = DH(IK_A, SPK_B), DH2 = DH(EK_A, IK_B), DH3 = DH(EK_A, SPK_B),
 *   DH4 = DH(EK_A, OPK_B); SK ‖ HK_A ‖ NHK_B = HKDF-SHA256(salt = 32 zero bytes,
 *   ikm = 0xFF×32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] [‖ KEM shared secret],
 *   info = `Keytrail_X3DH_v1_X25519_SHA-256_XChaCha20-Poly1305` [‖ `_` ‖ KEM name] ‖ u8 features,
 *   96 bytes). The features byte (header encryption) is bound so that the relay cannot strip it.
 * - AD (§3.3) = IK_A ‖ IK_B is the first part of every message's associated data.
 *
 * Limits (§4): without a one-time prekey the initial message can be replayed; the responder
 * recognises a repeated base key (see `session.ts`), and its first ratchet step randomises the
 * keys in any case. The base key must be in the prime-order subgroup, so that a torsioned copy of
 * a replayed base key cannot pass as a new session.
 * @module
 */
import { type Address, readAddress, writeAddress } from './address.ts';
import { concatBytes, u32be } from './bytes.ts';
import { type Reader, Writer, decodeStrict } from './codec.ts';
import { MalformedError } from './errors.ts';
import { LABELS, ZERO_SALT, hkdf, label, signatureInput } from './kdf.ts';
import {
  type IdentityKeyPair,
  type KeyPair,
  checkIdentityKey,
  checkX25519PrimeOrder,
  checkX25519PublicKey,
  dh,
  generateKeyPair,
  identityDhPublicKey,
  sign,
  verifySignature,
} from './keys.ts';
import { getCryptoProvider } from './provider.ts';

/**
 * A key-encapsulation mechanism that X3DH can add to its secret (PQXDH §2.2). Keytrail v1 defines
 * the framing only; an implementation such as ML-KEM-1024 from `@noble/post-quantum` plugs in
 * here without a format change.
 */
export interface Kem {
  /** The registry id carried on the wire (non-zero u16). */
  readonly id: number;
  /** The name appended to the X3DH info string, for example `ML-KEM-1024`. */
  readonly name: string;
  generateKeyPair(): { publicKey: Uint8Array; secretKey: Uint8Array };
  encapsulate(publicKey: Uint8Array): { ciphertext: Uint8Array; sharedSecret: Uint8Array };
  decapsulate(secretKey: Uint8Array, ciphertext: Uint8Array): Uint8Array;
}

/** Largest KEM public key or ciphertext accepted (ML-KEM-1024: 1,568 bytes). */
export const MAX_KEM_FIELD: number = 4096;

/** Negotiated session features; bound into the X3DH key derivation. */
export interface SessionFeatures {
  /** Double Ratchet header encryption (§4). */
  readonly headerEncryption: boolean;
}

/** Feature bits on the wire. */
export function encodeFeatures(f: SessionFeatures): number {
  return f.headerEncryption ? 1 : 0;
}

/**
 * Reads feature bits; unknown bits are rejected.
 * @throws MalformedError `ERR_ENCODING_MALFORMED`
 */
export function decodeFeatures(bits: number): SessionFeatures {
  if ((bits & ~1) !== 0) throw new MalformedError('ERR_ENCODING_MALFORMED', 'unknown feature bits');
  return { headerEncryption: (bits & 1) === 1 };
}

/** A signed prekey held by its owner. */
export interface SignedPreKey {
  readonly id: number;
  readonly keyPair: KeyPair;
  readonly signature: Uint8Array;
  /** When it was created (milliseconds); callers rotate weekly to monthly. */
  readonly createdAt: number;
}

/** A one-time prekey held by its owner. */
export interface OneTimePreKey {
  readonly id: number;
  readonly keyPair: KeyPair;
}

/** A signed KEM prekey held by its owner (one-time, or last-resort and reusable). */
export interface KemPreKey {
  readonly kemId: number;
  readonly id: number;
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
  readonly signature: Uint8Array;
  readonly lastResort: boolean;
}

/** A prekey bundle as the relay serves it. */
export interface PreKeyBundle {
  readonly address: Address;
  readonly registrationId: number;
  /** IK_B, Ed25519. */
  readonly identityKey: Uint8Array;
  readonly signedPreKey: {
    readonly id: number;
    readonly publicKey: Uint8Array;
    readonly signature: Uint8Array;
  };
  readonly oneTimePreKey: { readonly id: number; readonly publicKey: Uint8Array } | undefined;
  readonly kemPreKey:
    | {
        readonly kemId: number;
        readonly id: number;
        readonly publicKey: Uint8Array;
        readonly signature: Uint8Array;
      }
    | undefined;
}

function signedPreKeyMessage(id: number, publicKey: Uint8Array): Uint8Array {
  return signatureInput(LABELS.signedPreKey, u32be(id), publicKey);
}

function kemPreKeyMessage(kemId: number, id: number, publicKey: Uint8Array): Uint8Array {
  return signatureInput(
    LABELS.kemPreKey,
    Uint8Array.of(kemId >> 8, kemId & 0xff),
    u32be(id),
    publicKey,
  );
}

/** Creates and signs a signed prekey. */
export function createSignedPreKey(
  identity: IdentityKeyPair,
  id: number,
  now: number,
): SignedPreKey {
  const keyPair = generateKeyPair();
  return {
    id,
    keyPair,
    signature: sign(identity, signedPreKeyMessage(id, keyPair.publicKey)),
    createdAt: now,
  };
}

/** Creates one-time prekeys with consecutive ids. */
export function createOneTimePreKeys(firstId: number, count: number): OneTimePreKey[] {
  const out: OneTimePreKey[] = [];
  for (let i = 0; i < count; i++) out.push({ id: (firstId + i) >>> 0, keyPair: generateKeyPair() });
  return out;
}

/** Creates and signs a KEM prekey. */
export function createKemPreKey(
  identity: IdentityKeyPair,
  kem: Kem,
  id: number,
  lastResort: boolean,
): KemPreKey {
  const kp = kem.generateKeyPair();
  return {
    kemId: kem.id,
    id,
    publicKey: kp.publicKey,
    secretKey: kp.secretKey,
    signature: sign(identity, kemPreKeyMessage(kem.id, id, kp.publicKey)),
    lastResort,
  };
}

/** Largest encoded bundle. */
export const MAX_BUNDLE_SIZE: number = 512 + MAX_KEM_FIELD;

/**
 * Encodes a bundle (wire type `preKeyBundle` 0x01); layout in PROTOCOL.md.
 */
export function encodePreKeyBundle(b: PreKeyBundle): Uint8Array {
  const w = new Writer(256).header('preKeyBundle');
  writeAddress(w, b.address);
  w.u32(b.registrationId)
    .fixed(b.identityKey, 32)
    .u32(b.signedPreKey.id)
    .fixed(b.signedPreKey.publicKey, 32)
    .fixed(b.signedPreKey.signature, 64);
  if (b.oneTimePreKey === undefined) w.u8(0);
  else w.u8(1).u32(b.oneTimePreKey.id).fixed(b.oneTimePreKey.publicKey, 32);
  if (b.kemPreKey === undefined) w.u16(0);
  else {
    w.u16(b.kemPreKey.kemId)
      .u32(b.kemPreKey.id)
      .opaque16(b.kemPreKey.publicKey)
      .fixed(b.kemPreKey.signature, 64);
  }
  return w.finish();
}

function readKemId(r: Reader): number {
  return r.u16();
}

/**
 * Decodes a bundle strictly and checks every key's encoding (signatures are checked by
 * {@link verifyPreKeyBundle}).
 * @throws MalformedError `ERR_ENCODING_*`, `ERR_KEY_*`, `ERR_UNSUPPORTED_VERSION`, `ERR_UNEXPECTED_TYPE`
 */
export function decodePreKeyBundle(bytes: Uint8Array): PreKeyBundle {
  return decodeStrict(bytes, MAX_BUNDLE_SIZE, (r) => {
    r.header('preKeyBundle');
    const address = readAddress(r);
    const registrationId = r.u32();
    const identityKey = checkIdentityKey(r.fixed(32));
    const signedPreKey = {
      id: r.u32(),
      publicKey: checkX25519PublicKey(r.fixed(32)),
      signature: r.fixed(64),
    };
    const oneTimePreKey = r.bool()
      ? { id: r.u32(), publicKey: checkX25519PublicKey(r.fixed(32)) }
      : undefined;
    const kemId = readKemId(r);
    const kemPreKey =
      kemId === 0
        ? undefined
        : {
            kemId,
            id: r.u32(),
            publicKey: r.opaque16(MAX_KEM_FIELD),
            signature: r.fixed(64),
          };
    return { address, registrationId, identityKey, signedPreKey, oneTimePreKey, kemPreKey };
  });
}

/**
 * Verifies the bundle's prekey signatures with its identity key (strict Ed25519).
 * @throws VerificationError `ERR_SIGNATURE_INVALID`
 */
export function verifyPreKeyBundle(b: PreKeyBundle): void {
  verifySignature(
    b.identityKey,
    signedPreKeyMessage(b.signedPreKey.id, b.signedPreKey.publicKey),
    b.signedPreKey.signature,
  );
  if (b.kemPreKey !== undefined) {
    verifySignature(
      b.identityKey,
      kemPreKeyMessage(b.kemPreKey.kemId, b.kemPreKey.id, b.kemPreKey.publicKey),
      b.kemPreKey.signature,
    );
  }
}

const F = new Uint8Array(32).fill(0xff);

/**
 * The X3DH KDF (§2.2 / PQXDH §2.2): HKDF(salt = zero, ikm = 0xFF×32 ‖ DH outputs ‖ [KEM secret],
 * info, length). Exposed for known-answer tests (with info `WhisperText` and 64 bytes it is
 * libsignal's root ‖ chain key derivation).
 */
export function deriveX3dhSecret(
  dhOutputs: readonly Uint8Array[],
  kemSecret: Uint8Array | undefined,
  info: Uint8Array,
  length: number,
): Uint8Array {
  const ikm = concatBytes(F, ...dhOutputs, ...(kemSecret === undefined ? [] : [kemSecret]));
  return hkdf(ikm, ZERO_SALT, info, length);
}

function x3dhInfo(features: SessionFeatures, kem: Kem | undefined): Uint8Array {
  const name = kem === undefined ? LABELS.x3dh : `${LABELS.x3dh}_${kem.name}`;
  return concatBytes(label(name), Uint8Array.of(encodeFeatures(features)));
}

/** The keys X3DH produces. */
export interface X3dhKeys {
  /** SK. */
  readonly sharedSecret: Uint8Array;
  /** Shared HK_A and NHK_B for header encryption (Double Ratchet §4 with X3DH). */
  readonly headerKeys: { readonly a: Uint8Array; readonly nextB: Uint8Array };
}

function splitKeys(okm: Uint8Array): X3dhKeys {
  return {
    sharedSecret: okm.slice(0, 32),
    headerKeys: { a: okm.slice(32, 64), nextB: okm.slice(64, 96) },
  };
}

/** What Alice sends in the prekey message so that Bob can repeat the agreement. */
export interface X3dhInitiation {
  readonly features: SessionFeatures;
  readonly signedPreKeyId: number;
  readonly oneTimePreKeyId: number | undefined;
  readonly baseKey: Uint8Array;
  readonly kem:
    | { readonly kemId: number; readonly preKeyId: number; readonly ciphertext: Uint8Array }
    | undefined;
}

/**
 * Alice's side (§3.3) on a bundle whose signatures were verified. Uses the bundle's KEM prekey
 * when `kem` implements its algorithm.
 * @throws MalformedError `ERR_KEY_*`, `ERR_KEM_UNSUPPORTED`
 */
export function x3dhInitiate(
  identity: IdentityKeyPair,
  bundle: PreKeyBundle,
  features: SessionFeatures,
  kem?: Kem,
): { keys: X3dhKeys; initiation: X3dhInitiation } {
  const ikB = identityDhPublicKey(bundle.identityKey);
  const spk = checkX25519PublicKey(bundle.signedPreKey.publicKey);
  const ek = generateKeyPair();
  const dhs = [dh(identity.dhPrivateKey, spk), dh(ek.privateKey, ikB), dh(ek.privateKey, spk)];
  if (bundle.oneTimePreKey !== undefined) {
    dhs.push(dh(ek.privateKey, checkX25519PublicKey(bundle.oneTimePreKey.publicKey)));
  }
  let kemPart: X3dhInitiation['kem'];
  let kemSecret: Uint8Array | undefined;
  let usedKem: Kem | undefined;
  if (bundle.kemPreKey !== undefined && kem !== undefined) {
    if (bundle.kemPreKey.kemId !== kem.id) {
      throw new MalformedError('ERR_KEM_UNSUPPORTED', 'bundle KEM differs from the supplied KEM');
    }
    const enc = kem.encapsulate(bundle.kemPreKey.publicKey);
    kemSecret = enc.sharedSecret;
    usedKem = kem;
    kemPart = { kemId: kem.id, preKeyId: bundle.kemPreKey.id, ciphertext: enc.ciphertext };
  }
  const okm = deriveX3dhSecret(dhs, kemSecret, x3dhInfo(features, usedKem), 96);
  return {
    keys: splitKeys(okm),
    initiation: {
      features,
      signedPreKeyId: bundle.signedPreKey.id,
      oneTimePreKeyId: bundle.oneTimePreKey?.id,
      baseKey: ek.publicKey,
      kem: kemPart,
    },
  };
}

/**
 * Bob's side (§3.4): repeats the agreement from Alice's identity key and base key with his own
 * prekeys (looked up by the caller from the ids in the message).
 * @throws MalformedError `ERR_KEY_*`, `ERR_KEM_UNSUPPORTED`
 */
export function x3dhRespond(params: {
  readonly identity: IdentityKeyPair;
  readonly signedPreKey: KeyPair;
  readonly oneTimePreKey: KeyPair | undefined;
  readonly remoteIdentityKey: Uint8Array;
  readonly initiation: X3dhInitiation;
  readonly kem?: { readonly kem: Kem; readonly secretKey: Uint8Array } | undefined;
}): X3dhKeys {
  const { identity, initiation } = params;
  const ikA = identityDhPublicKey(params.remoteIdentityKey);
  const ek = checkX25519PrimeOrder(initiation.baseKey);
  const dhs = [
    dh(params.signedPreKey.privateKey, ikA),
    dh(identity.dhPrivateKey, ek),
    dh(params.signedPreKey.privateKey, ek),
  ];
  if (params.oneTimePreKey !== undefined) dhs.push(dh(params.oneTimePreKey.privateKey, ek));
  let kemSecret: Uint8Array | undefined;
  let usedKem: Kem | undefined;
  if (initiation.kem !== undefined) {
    if (params.kem === undefined || params.kem.kem.id !== initiation.kem.kemId) {
      throw new MalformedError('ERR_KEM_UNSUPPORTED', 'no implementation for the message KEM');
    }
    kemSecret = params.kem.kem.decapsulate(params.kem.secretKey, initiation.kem.ciphertext);
    usedKem = params.kem.kem;
  }
  return splitKeys(deriveX3dhSecret(dhs, kemSecret, x3dhInfo(initiation.features, usedKem), 96));
}

/** Random registration id (1 … 2^31 − 1), chosen once per install. */
export function generateRegistrationId(): number {
  const b = getCryptoProvider().randomBytes(4);
  const v =
    (((b[0] ?? 0) << 24) | ((b[1] ?? 0) << 16) | ((b[2] ?? 0) << 8) | (b[3] ?? 0)) & 0x7fffffff;
  return v === 0 ? 1 : v;
}
