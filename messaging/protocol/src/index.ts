/**
 * `@keytrail/messaging-core`: Keytrail's end-to-end encryption protocol as pure functions and
 * caller-provided stores, running unchanged in Node and browsers. Wire formats, KDF labels and
 * security properties: `messaging/PROTOCOL.md`.
 *
 * - X3DH (Signal rev. 1) with a KEM slot for PQXDH: `x3dh.ts`
 * - Double Ratchet (Signal rev. 1) with XChaCha20-Poly1305 and optional header encryption:
 *   `ratchet.ts`, `session.ts`
 * - Sesame multi-device sessions, stale devices, resets: `session-manager.ts`, `reset.ts`
 * - Sealed sender: `sealed-sender.ts`; Sender Keys groups: `sender-keys.ts`
 * - Streaming attachments: `attachments.ts`; safety numbers: `fingerprint.ts`
 * - The crypto seam (noble by default, `node:crypto` via `@keytrail/messaging-core/node`):
 *   `provider.ts`
 * @module
 */
export {
  type MessagingErrorCode,
  MessagingError,
  MalformedError,
  VerificationError,
  StateError,
  InconsistencyError,
  type InconsistencyEvidence,
} from './errors.ts';
export {
  type CryptoProvider,
  type ChunkOffload,
  type SealedChunk,
  type OpenedChunk,
  NOBLE_PROVIDER,
  setCryptoProvider,
  getCryptoProvider,
  withRandomSource,
} from './provider.ts';
export { toHex, fromHex, utf8, fromUtf8, concatBytes, equalBytes } from './bytes.ts';
export { WIRE_VERSION, WIRE_TYPE, type WireTypeName } from './codec.ts';
export {
  type Address,
  checkAddress,
  addressKey,
  sameAddress,
  MAX_ACCOUNT_LENGTH,
} from './address.ts';
export {
  LABELS,
  hkdf,
  hkdfExtract,
  hkdfExpand,
  kdfChainKey,
  kdfRootKey,
  messageKeyMaterial,
} from './kdf.ts';
export {
  type KeyPair,
  type IdentityKeyPair,
  checkX25519PublicKey,
  checkX25519PrimeOrder,
  canonicalizeX25519PublicKey,
  checkIdentityKey,
  identityDhPublicKey,
  generateKeyPair,
  keyPairFromPrivateKey,
  generateIdentityKeyPair,
  identityKeyPairFromSeed,
} from './keys.ts';
export { seal, open, AEAD_KEY_SIZE, AEAD_NONCE_SIZE, AEAD_TAG_SIZE } from './aead.ts';
export {
  type Kem,
  type SessionFeatures,
  type SignedPreKey,
  type OneTimePreKey,
  type KemPreKey,
  type PreKeyBundle,
  type X3dhKeys,
  type X3dhInitiation,
  createSignedPreKey,
  createOneTimePreKeys,
  createKemPreKey,
  encodePreKeyBundle,
  decodePreKeyBundle,
  verifyPreKeyBundle,
  deriveX3dhSecret,
  x3dhInitiate,
  x3dhRespond,
  generateRegistrationId,
  MAX_KEM_FIELD,
} from './x3dh.ts';
export {
  type RatchetLimits,
  type RatchetState,
  type RatchetMessage,
  type MessageHeader,
  type SkippedKey,
  type HeaderKeys,
  DEFAULT_RATCHET_LIMITS,
  initRatchetAlice,
  initRatchetBob,
  ratchetEncrypt,
  ratchetDecrypt,
  decodeRatchetMessage,
} from './ratchet.ts';
export {
  type SessionState,
  type PreKeyMessage,
  type PairwiseKind,
  initiateSession,
  acceptSession,
  encryptSession,
  decryptSession,
  decodePreKeyMessage,
} from './session.ts';
export {
  type Content,
  type ContentKind,
  encodeContent,
  decodeContent,
  MAX_CONTENT_BODY,
} from './content.ts';
export {
  type DeviceRecord,
  type FeatureFloor,
  EMPTY_DEVICE_RECORD,
  encodeDeviceRecord,
  decodeDeviceRecord,
  encodeSenderKeyRecord,
  decodeSenderKeyRecord,
} from './records.ts';
export {
  type LocalDevice,
  type IdentityChange,
  type IdentityStore,
  type SessionStore,
  type PreKeyStore,
  type SenderKeyStore,
  InMemoryIdentityStore,
  InMemorySessionStore,
  InMemoryPreKeyStore,
  InMemorySenderKeyStore,
} from './stores.ts';
export {
  type SenderCertificate,
  type DirectoryDevice,
  type DeviceList,
  type OpenedSealedSender,
  createSenderCertificate,
  decodeSenderCertificate,
  verifySenderCertificate,
  sealSender,
  openSealedSender,
} from './sealed-sender.ts';
export {
  type SenderKeyState,
  type SenderKeyRecord,
  type SenderKeyDistribution,
  type GroupMessage,
  MAX_SENDER_KEY_STATES,
  createSenderKeyState,
  senderKeyDistribution,
  encodeSenderKeyDistribution,
  decodeSenderKeyDistribution,
  processSenderKeyDistribution,
  decodeGroupMessage,
  groupEncrypt,
  groupDecrypt,
  rotateSenderKey,
} from './sender-keys.ts';
export {
  type ResetRequest,
  createResetRequest,
  decodeResetRequest,
  verifyResetRequest,
} from './reset.ts';
export {
  type ManagerLimits,
  type SessionManagerConfig,
  type OutgoingMessage,
  type EncryptOptions,
  type Received,
  type GroupSendResult,
  DEFAULT_MANAGER_LIMITS,
  SessionManager,
} from './session-manager.ts';
export {
  type AttachmentPointer,
  ATTACHMENT_CHUNK_SIZE,
  ATTACHMENT_HEADER_SIZE,
  AttachmentEncryptor,
  AttachmentDecryptor,
  encryptAttachment,
  decryptAttachment,
  encodeAttachmentPointer,
  decodeAttachmentPointer,
  ciphertextSizeOf,
} from './attachments.ts';
export {
  safetyNumber,
  fingerprintDigits,
  accountFingerprintKey,
  FINGERPRINT_ITERATIONS,
} from './fingerprint.ts';
