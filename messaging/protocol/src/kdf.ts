/**
 * Key derivation: HKDF-SHA256 (RFC 5869) on the provider's HMAC, the Double Ratchet KDFs of the
 * Signal specification (§5.2: `KDF_RK` with HKDF, `KDF_CK` with HMAC constants 0x01/0x02) and
 * every domain-separation label Keytrail uses (listed in `messaging/PROTOCOL.md`).
 * @module
 */
import { concatBytes, utf8 } from './bytes.ts';
import { getCryptoProvider } from './provider.ts';

/** HKDF "no salt": HashLen zero bytes (RFC 5869 §2.2). */
export const ZERO_SALT: Uint8Array = new Uint8Array(32);

/**
 * Domain-separation labels (HKDF `info` strings and signature contexts). Changing any of them is
 * a wire-incompatible change and requires a new wire version.
 */
export const LABELS: {
  readonly x3dh: string;
  readonly ratchet: string;
  readonly ratchetHeaderEncryption: string;
  readonly messageKeys: string;
  readonly signedPreKey: string;
  readonly kemPreKey: string;
  readonly sealedSenderEphemeral: string;
  readonly sealedSenderStatic: string;
  readonly senderCertificate: string;
  readonly groupMessageKeys: string;
  readonly groupMessage: string;
  readonly resetRequest: string;
  readonly attachmentDigest: string;
} = Object.freeze({
  x3dh: 'Keytrail_X3DH_v1_X25519_SHA-256_XChaCha20-Poly1305',
  ratchet: 'Keytrail_Ratchet_v1',
  ratchetHeaderEncryption: 'Keytrail_Ratchet_HE_v1',
  messageKeys: 'Keytrail_MessageKeys_v1',
  signedPreKey: 'Keytrail_SignedPreKey_v1',
  kemPreKey: 'Keytrail_KemPreKey_v1',
  sealedSenderEphemeral: 'Keytrail_SealedSender_v1_Ephemeral',
  sealedSenderStatic: 'Keytrail_SealedSender_v1_Static',
  senderCertificate: 'Keytrail_SenderCertificate_v1',
  groupMessageKeys: 'Keytrail_GroupMessageKeys_v1',
  groupMessage: 'Keytrail_GroupMessage_v1',
  resetRequest: 'Keytrail_ResetRequest_v1',
  attachmentDigest: 'Keytrail_AttachmentDigest_v1',
});

const labelCache = new Map<string, Uint8Array>();

/** The UTF-8 bytes of a label (cached). */
export function label(text: string): Uint8Array {
  let b = labelCache.get(text);
  if (b === undefined) {
    b = utf8(text);
    labelCache.set(text, b);
  }
  return b;
}

/** HKDF-Extract (RFC 5869 §2.2). An empty salt means HashLen zero bytes. */
export function hkdfExtract(salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return getCryptoProvider().hmacSha256(salt.length === 0 ? ZERO_SALT : salt, ikm);
}

/** HKDF-Expand (RFC 5869 §2.3), `length` ≤ 255 × 32. */
export function hkdfExpand(prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > 255 * 32) {
    throw new RangeError('hkdfExpand: length out of range');
  }
  const p = getCryptoProvider();
  const out = new Uint8Array(length);
  let t: Uint8Array = new Uint8Array(0);
  const buf = new Uint8Array(32 + info.length + 1);
  for (let i = 1, off = 0; off < length; i++) {
    // T(i) = HMAC(PRK, T(i-1) || info || i); T(0) is empty.
    const input = i === 1 ? buf.subarray(32) : buf;
    if (i > 1) buf.set(t, 0);
    buf.set(info, 32);
    buf[buf.length - 1] = i;
    t = p.hmacSha256(prk, input);
    out.set(t.subarray(0, Math.min(32, length - off)), off);
    off += 32;
  }
  return out;
}

/** HKDF-SHA256 (RFC 5869 §2): Extract then Expand. */
export function hkdf(
  ikm: Uint8Array,
  salt: Uint8Array,
  info: Uint8Array,
  length: number,
): Uint8Array {
  return hkdfExpand(hkdfExtract(salt, ikm), info, length);
}

const CK_MESSAGE = Uint8Array.of(0x01);
const CK_NEXT = Uint8Array.of(0x02);

/**
 * `KDF_CK` (Signal Double Ratchet §5.2): message key seed = HMAC(ck, 0x01), next chain key =
 * HMAC(ck, 0x02).
 */
export function kdfChainKey(chainKey: Uint8Array): {
  chainKey: Uint8Array;
  messageKey: Uint8Array;
} {
  const p = getCryptoProvider();
  return {
    messageKey: p.hmacSha256(chainKey, CK_MESSAGE),
    chainKey: p.hmacSha256(chainKey, CK_NEXT),
  };
}

/**
 * `KDF_RK` (§5.2): HKDF with the root key as salt and the DH output as input keying material.
 * Returns the next root key and a chain key, plus the next header key when header encryption is
 * on (§4 `KDF_RK_HE`).
 */
export function kdfRootKey(
  rootKey: Uint8Array,
  dhOutput: Uint8Array,
  headerEncryption: boolean,
): { rootKey: Uint8Array; chainKey: Uint8Array; nextHeaderKey?: Uint8Array } {
  if (!headerEncryption) {
    const okm = hkdf(dhOutput, rootKey, label(LABELS.ratchet), 64);
    return { rootKey: okm.slice(0, 32), chainKey: okm.slice(32, 64) };
  }
  const okm = hkdf(dhOutput, rootKey, label(LABELS.ratchetHeaderEncryption), 96);
  return {
    rootKey: okm.slice(0, 32),
    chainKey: okm.slice(32, 64),
    nextHeaderKey: okm.slice(64, 96),
  };
}

/**
 * Keytrail's `ENCRYPT` key schedule (replacing §5.2's AES-CBC + HMAC): key ‖ nonce =
 * HKDF(salt = zero, ikm = message key, info, 56 bytes) for XChaCha20-Poly1305. A message key is
 * used for exactly one message, so the derived nonce never repeats under one key.
 */
export function messageKeyMaterial(
  messageKey: Uint8Array,
  info: string = LABELS.messageKeys,
): { key: Uint8Array; nonce: Uint8Array } {
  const okm = hkdf(messageKey, ZERO_SALT, label(info), 56);
  return { key: okm.subarray(0, 32), nonce: okm.subarray(32, 56) };
}

/** `label ‖ parts…`: the byte string a signature context covers. */
export function signatureInput(context: string, ...parts: readonly Uint8Array[]): Uint8Array {
  return concatBytes(label(context), ...parts);
}
