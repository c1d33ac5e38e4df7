/**
 * Sealed sender: an envelope that hides the sender from the relay, after libsignal's
 * `sealed_sender.rs` version 1 (two layers, an ephemeral and a static Diffie-Hellman) with
 * Keytrail's AEAD and a sender certificate checked against the key directory.
 *
 * Envelope (wire type `sealedSender` 0x06), sender S to recipient R, fresh ephemeral E:
 * 1. s1 = X25519(e, IK_R); chain ‖ k1 ‖ n1 = HKDF(salt = zero, ikm = s1,
 *    info = `Keytrail_SealedSender_v1_Ephemeral` ‖ IK_R ‖ E, 88 B);
 *    static = XChaCha20-Poly1305(k1, n1, IK_S, ad = version ‖ type ‖ E).
 * 2. s2 = X25519(ik_S, IK_R); k2 ‖ n2 = HKDF(salt = chain, ikm = s2,
 *    info = `Keytrail_SealedSender_v1_Static` ‖ static, 56 B);
 *    body = XChaCha20-Poly1305(k2, n2, certificate ‖ content, ad = version ‖ type ‖ E ‖ static).
 * Layer 2 authenticates the sender's identity key to the recipient (only S and R can compute
 * s2) without a signature, so the envelope stays deniable.
 *
 * The sender certificate (wire type `senderCertificate` 0x07) binds account, device id, identity
 * key and an expiry time, signed by that identity key. Signal has a server sign certificates
 * under a trust root; in Keytrail the directory's transparency proofs play that role, so the
 * recipient checks the certificate against the device list it obtained from the directory
 * ({@link verifySenderCertificate}). The certificate's key must equal the key that layer 2
 * authenticated.
 *
 * Limits: the relay still sees the recipient, the time and the size; a recipient can prove to
 * nobody that the sender sent the envelope, but the certificate (signed) shows that the key
 * holder claimed the address until the expiry.
 * @module
 */
import { open, seal } from './aead.ts';
import { type Address, readAddress, sameAddress, writeAddress } from './address.ts';
import { concatBytes, equalBytes } from './bytes.ts';
import { Writer, WIRE_TYPE, WIRE_VERSION, decodeStrict } from './codec.ts';
import { MalformedError, VerificationError } from './errors.ts';
import { LABELS, ZERO_SALT, hkdf, label, signatureInput } from './kdf.ts';
import {
  type IdentityKeyPair,
  checkIdentityKey,
  checkX25519PublicKey,
  dh,
  generateKeyPair,
  identityDhPublicKey,
  sign,
  verifySignature,
} from './keys.ts';

/** A sender certificate. */
export interface SenderCertificate {
  readonly address: Address;
  /** The sender device's Ed25519 identity key. */
  readonly identityKey: Uint8Array;
  /** Expiry, milliseconds since the epoch. */
  readonly expiresAt: number;
  readonly signature: Uint8Array;
  /** The encoded certificate, exactly as signed and sent. */
  readonly encoded: Uint8Array;
}

/** A directory device entry: what the key directory proves about one device. */
export interface DirectoryDevice {
  readonly device: number;
  /** Ed25519 identity key. */
  readonly identityKey: Uint8Array;
  readonly registrationId: number;
}

/** An account's device list as proven by the directory. */
export interface DeviceList {
  readonly account: string;
  readonly devices: readonly DirectoryDevice[];
}

const MAX_CERTIFICATE_SIZE = 2 + 1 + 255 + 4 + 32 + 8 + 64;

/** Largest sealed content. */
export const MAX_SEALED_CONTENT: number = 160 * 1024;

function certificateBody(address: Address, identityKey: Uint8Array, expiresAt: number): Uint8Array {
  const w = new Writer(128).header('senderCertificate');
  writeAddress(w, address);
  return w.fixed(identityKey, 32).u64(expiresAt).finish();
}

/** Issues a certificate for this device, valid until `expiresAt` (milliseconds). */
export function createSenderCertificate(
  identity: IdentityKeyPair,
  address: Address,
  expiresAt: number,
): SenderCertificate {
  const body = certificateBody(address, identity.publicKey, expiresAt);
  const signature = sign(identity, signatureInput(LABELS.senderCertificate, body));
  return {
    address,
    identityKey: identity.publicKey,
    expiresAt,
    signature,
    encoded: concatBytes(body, signature),
  };
}

/**
 * Decodes a certificate and verifies its signature and expiry.
 * @throws MalformedError `ERR_ENCODING_*`, `ERR_KEY_*`, `ERR_ADDRESS_INVALID`
 * @throws VerificationError `ERR_SENDER_CERTIFICATE_INVALID`, `ERR_SENDER_CERTIFICATE_EXPIRED`
 */
export function decodeSenderCertificate(bytes: Uint8Array, now: number): SenderCertificate {
  const cert = decodeStrict(bytes, MAX_CERTIFICATE_SIZE, (r) => {
    r.header('senderCertificate');
    const address = readAddress(r);
    const identityKey = checkIdentityKey(r.fixed(32));
    const expiresAt = r.u64();
    const signature = r.fixed(64);
    return { address, identityKey, expiresAt, signature, encoded: bytes.slice() };
  });
  verifySignature(
    cert.identityKey,
    signatureInput(LABELS.senderCertificate, bytes.subarray(0, bytes.length - 64)),
    cert.signature,
    'ERR_SENDER_CERTIFICATE_INVALID',
  );
  if (now > cert.expiresAt) {
    throw new VerificationError('ERR_SENDER_CERTIFICATE_EXPIRED', 'sender certificate expired');
  }
  return cert;
}

/**
 * Checks a certificate against the sender account's device list from the directory: the device
 * must be listed with exactly the certificate's identity key. Returns the directory entry.
 * @throws VerificationError `ERR_SENDER_NOT_IN_DIRECTORY`
 */
export function verifySenderCertificate(
  cert: SenderCertificate,
  devices: DeviceList,
): DirectoryDevice {
  const entry =
    devices.account === cert.address.account
      ? devices.devices.find((d) => d.device === cert.address.device)
      : undefined;
  if (entry === undefined || !equalBytes(entry.identityKey, cert.identityKey)) {
    throw new VerificationError('ERR_SENDER_NOT_IN_DIRECTORY', 'sender device not in directory');
  }
  return entry;
}

const TYPE_BYTES = Uint8Array.of(WIRE_VERSION, WIRE_TYPE.sealedSender);

function layer1(s1: Uint8Array, recipientIdentityKey: Uint8Array, ephemeral: Uint8Array) {
  const okm = hkdf(
    s1,
    ZERO_SALT,
    concatBytes(label(LABELS.sealedSenderEphemeral), recipientIdentityKey, ephemeral),
    88,
  );
  return { chain: okm.slice(0, 32), key: okm.slice(32, 64), nonce: okm.slice(64, 88) };
}

function layer2(s2: Uint8Array, chain: Uint8Array, encryptedStatic: Uint8Array) {
  const okm = hkdf(s2, chain, concatBytes(label(LABELS.sealedSenderStatic), encryptedStatic), 56);
  return { key: okm.subarray(0, 32), nonce: okm.subarray(32, 56) };
}

/**
 * Seals `content` (any Keytrail wire message) from `sender` to the device whose identity key is
 * `recipientIdentityKey`.
 */
export function sealSender(params: {
  readonly sender: IdentityKeyPair;
  readonly certificate: SenderCertificate;
  readonly recipientIdentityKey: Uint8Array;
  readonly content: Uint8Array;
}): Uint8Array {
  if (!equalBytes(params.certificate.identityKey, params.sender.publicKey)) {
    throw new RangeError('sealSender: certificate is for another identity key');
  }
  if (params.content.length > MAX_SEALED_CONTENT)
    throw new RangeError('sealSender: content too large');
  const ikR = identityDhPublicKey(params.recipientIdentityKey);
  const e = generateKeyPair();
  const l1 = layer1(dh(e.privateKey, ikR), params.recipientIdentityKey, e.publicKey);
  const encryptedStatic = seal(
    l1.key,
    l1.nonce,
    params.sender.publicKey,
    concatBytes(TYPE_BYTES, e.publicKey),
  );
  const l2 = layer2(dh(params.sender.dhPrivateKey, ikR), l1.chain, encryptedStatic);
  const inner = new Writer(params.content.length + 256)
    .opaque16(params.certificate.encoded)
    .opaque32(params.content)
    .finish();
  const body = seal(l2.key, l2.nonce, inner, concatBytes(TYPE_BYTES, e.publicKey, encryptedStatic));
  return new Writer(body.length + 96)
    .bytes(TYPE_BYTES)
    .fixed(e.publicKey, 32)
    .fixed(encryptedStatic, 48)
    .opaque32(body)
    .finish();
}

/** What an opened envelope yields. */
export interface OpenedSealedSender {
  readonly certificate: SenderCertificate;
  readonly content: Uint8Array;
}

/**
 * Opens an envelope addressed to `recipient`: decrypts both layers, verifies the certificate
 * (signature, expiry) and that its key is the one layer 2 authenticated. The caller must still
 * check the certificate against the directory ({@link verifySenderCertificate}).
 * @throws MalformedError `ERR_ENCODING_*`, `ERR_KEY_*`
 * @throws VerificationError `ERR_DECRYPTION_FAILED`, `ERR_SENDER_MISMATCH`,
 *   `ERR_SENDER_CERTIFICATE_INVALID`, `ERR_SENDER_CERTIFICATE_EXPIRED`
 */
export function openSealedSender(
  envelope: Uint8Array,
  recipient: IdentityKeyPair,
  now: number,
): OpenedSealedSender {
  const { ephemeral, encryptedStatic, body } = decodeStrict(
    envelope,
    MAX_SEALED_CONTENT + 1024,
    (r) => {
      r.header('sealedSender');
      return {
        ephemeral: checkX25519PublicKey(r.fixed(32)),
        encryptedStatic: r.fixed(48),
        body: r.opaque32(MAX_SEALED_CONTENT + 512),
      };
    },
  );
  const l1 = layer1(dh(recipient.dhPrivateKey, ephemeral), recipient.publicKey, ephemeral);
  const senderKey = open(l1.key, l1.nonce, encryptedStatic, concatBytes(TYPE_BYTES, ephemeral));
  const ikS = identityDhPublicKey(senderKey);
  const l2 = layer2(dh(recipient.dhPrivateKey, ikS), l1.chain, encryptedStatic);
  const inner = open(l2.key, l2.nonce, body, concatBytes(TYPE_BYTES, ephemeral, encryptedStatic));
  const { certBytes, content } = decodeStrict(inner, MAX_SEALED_CONTENT + 512, (r) => ({
    certBytes: r.opaque16(MAX_CERTIFICATE_SIZE),
    content: r.opaque32(MAX_SEALED_CONTENT),
  }));
  const certificate = decodeSenderCertificate(certBytes, now);
  if (!equalBytes(certificate.identityKey, senderKey)) {
    throw new VerificationError(
      'ERR_SENDER_MISMATCH',
      'certificate key differs from the sealing key',
    );
  }
  return { certificate, content };
}

/** True when a certificate names the given address. */
export function certificateNames(cert: SenderCertificate, address: Address): boolean {
  return sameAddress(cert.address, address);
}

/** Thrown for envelopes nested inside envelopes. */
export function rejectNestedSealed(content: Uint8Array): void {
  if (content.length >= 2 && content[0] === WIRE_VERSION && content[1] === WIRE_TYPE.sealedSender) {
    throw new MalformedError('ERR_UNEXPECTED_TYPE', 'sealed sender inside sealed sender');
  }
}
