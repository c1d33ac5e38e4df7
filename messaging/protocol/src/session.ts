/**
 * Pairwise sessions: X3DH (`x3dh.ts`) followed by the Double Ratchet (`ratchet.ts`), as the X3DH
 * specification §3.3 and the Double Ratchet specification §7.1 combine them.
 *
 * The initiator (Alice) wraps every message in a prekey message until the first reply arrives
 * (X3DH §3.3: the initial message carries IK_A, EK_A and the prekey ids); the prekey fields form
 * the message's `prefix` and are bound into the ratchet message's associated data, so the relay
 * can change none of them. The responder recognises a repeated base key and decrypts within the
 * session it already has, so a replayed initial message is a duplicate rather than a new session.
 *
 * Sessions are immutable values; every function returns a new session.
 * @module
 */
import { type Reader, Writer, WIRE_TYPE, WIRE_VERSION, decodeStrict } from './codec.ts';
import { MalformedError } from './errors.ts';
import {
  type IdentityKeyPair,
  type KeyPair,
  checkIdentityKey,
  checkX25519PublicKey,
} from './keys.ts';
import {
  DEFAULT_RATCHET_LIMITS,
  MAX_RATCHET_CIPHERTEXT,
  type RatchetLimits,
  type RatchetMessage,
  type RatchetState,
  decodeRatchetMessage,
  initRatchetAlice,
  initRatchetBob,
  ratchetDecrypt,
  ratchetEncrypt,
} from './ratchet.ts';
import {
  type Kem,
  MAX_KEM_FIELD,
  type PreKeyBundle,
  type SessionFeatures,
  type X3dhInitiation,
  decodeFeatures,
  encodeFeatures,
  x3dhInitiate,
  x3dhRespond,
} from './x3dh.ts';

/** One pairwise session with one remote device. */
export interface SessionState {
  readonly ratchet: RatchetState;
  /** Alice's X3DH base key EK_A: identifies the session on both sides. */
  readonly baseKey: Uint8Array;
  readonly features: SessionFeatures;
  /** The KEM used in X3DH (0: none). */
  readonly kemId: number;
  readonly localRegistrationId: number;
  readonly remoteRegistrationId: number;
  /** Alice, until the first reply: the prekey-message prefix to repeat on every message. */
  readonly pendingPreKey: Uint8Array | undefined;
  /** When the session was created (milliseconds). */
  readonly createdAt: number;
}

/** A parsed prekey message (wire type `preKeyMessage` 0x02). */
export interface PreKeyMessage {
  /** Every byte before the inner message: bound into its associated data. */
  readonly prefix: Uint8Array;
  readonly registrationId: number;
  readonly identityKey: Uint8Array;
  readonly initiation: X3dhInitiation;
  readonly message: RatchetMessage;
}

/** Largest prekey message. */
export const MAX_PREKEY_MESSAGE_SIZE: number = MAX_RATCHET_CIPHERTEXT + 256 + MAX_KEM_FIELD;

function encodePreKeyPrefix(
  registrationId: number,
  identityKey: Uint8Array,
  init: X3dhInitiation,
): Uint8Array {
  const w = new Writer(128)
    .header('preKeyMessage')
    .u8(encodeFeatures(init.features))
    .u32(registrationId)
    .u32(init.signedPreKeyId);
  if (init.oneTimePreKeyId === undefined) w.u8(0);
  else w.u8(1).u32(init.oneTimePreKeyId);
  w.fixed(init.baseKey, 32).fixed(identityKey, 32);
  if (init.kem === undefined) w.u16(0);
  else w.u16(init.kem.kemId).u32(init.kem.preKeyId).opaque16(init.kem.ciphertext);
  return w.finish();
}

/**
 * Decodes a prekey message strictly, including its inner ratchet message.
 * @throws MalformedError `ERR_ENCODING_*`, `ERR_KEY_*`, `ERR_UNSUPPORTED_VERSION`, `ERR_UNEXPECTED_TYPE`
 */
export function decodePreKeyMessage(bytes: Uint8Array): PreKeyMessage {
  return decodeStrict(bytes, MAX_PREKEY_MESSAGE_SIZE, (r: Reader) => {
    r.header('preKeyMessage');
    const features = decodeFeatures(r.u8());
    const registrationId = r.u32();
    const signedPreKeyId = r.u32();
    const oneTimePreKeyId = r.bool() ? r.u32() : undefined;
    const baseKey = checkX25519PublicKey(r.fixed(32));
    const identityKey = checkIdentityKey(r.fixed(32));
    const kemId = r.u16();
    const kem =
      kemId === 0 ? undefined : { kemId, preKeyId: r.u32(), ciphertext: r.opaque16(MAX_KEM_FIELD) };
    const prefix = bytes.slice(0, r.offset);
    const message = decodeRatchetMessage(r.opaque32(MAX_RATCHET_CIPHERTEXT + 128));
    return {
      prefix,
      registrationId,
      identityKey,
      initiation: { features, signedPreKeyId, oneTimePreKeyId, baseKey, kem },
      message,
    };
  });
}

/**
 * Starts a session as the initiator from a bundle whose signatures and directory binding the
 * caller has verified.
 */
export function initiateSession(params: {
  readonly identity: IdentityKeyPair;
  readonly localRegistrationId: number;
  readonly bundle: PreKeyBundle;
  readonly features: SessionFeatures;
  readonly kem?: Kem | undefined;
  readonly now: number;
}): SessionState {
  const { keys, initiation } = x3dhInitiate(
    params.identity,
    params.bundle,
    params.features,
    params.kem,
  );
  const ratchet = initRatchetAlice({
    localIdentityKey: params.identity.publicKey,
    remoteIdentityKey: params.bundle.identityKey,
    sharedSecret: keys.sharedSecret,
    headerKeys: params.features.headerEncryption ? keys.headerKeys : undefined,
    remoteRatchetKey: params.bundle.signedPreKey.publicKey,
  });
  return {
    ratchet,
    baseKey: initiation.baseKey,
    features: params.features,
    kemId: initiation.kem?.kemId ?? 0,
    localRegistrationId: params.localRegistrationId,
    remoteRegistrationId: params.bundle.registrationId,
    pendingPreKey: encodePreKeyPrefix(
      params.localRegistrationId,
      params.identity.publicKey,
      initiation,
    ),
    createdAt: params.now,
  };
}

/**
 * Creates the responder's session for a prekey message (before decrypting it: call
 * {@link decryptSession} next and keep the session only if that succeeds).
 * @throws MalformedError `ERR_KEY_*`, `ERR_KEM_UNSUPPORTED`
 */
export function acceptSession(params: {
  readonly identity: IdentityKeyPair;
  readonly localRegistrationId: number;
  readonly message: PreKeyMessage;
  readonly signedPreKey: KeyPair;
  readonly oneTimePreKey: KeyPair | undefined;
  readonly kem?: { readonly kem: Kem; readonly secretKey: Uint8Array } | undefined;
  readonly now: number;
}): SessionState {
  const { message } = params;
  const keys = x3dhRespond({
    identity: params.identity,
    signedPreKey: params.signedPreKey,
    oneTimePreKey: params.oneTimePreKey,
    remoteIdentityKey: message.identityKey,
    initiation: message.initiation,
    kem: params.kem,
  });
  const ratchet = initRatchetBob({
    localIdentityKey: params.identity.publicKey,
    remoteIdentityKey: message.identityKey,
    sharedSecret: keys.sharedSecret,
    headerKeys: message.initiation.features.headerEncryption ? keys.headerKeys : undefined,
    ratchetKeyPair: params.signedPreKey,
  });
  return {
    ratchet,
    baseKey: message.initiation.baseKey,
    features: message.initiation.features,
    kemId: message.initiation.kem?.kemId ?? 0,
    localRegistrationId: params.localRegistrationId,
    remoteRegistrationId: message.registrationId,
    pendingPreKey: undefined,
    createdAt: params.now,
  };
}

/** The kind of an encrypted pairwise message. */
export type PairwiseKind = 'prekey' | 'message';

/**
 * Encrypts with a session: a prekey message while the session is unacknowledged, else a ratchet
 * message.
 * @throws StateError `ERR_NO_SENDING_CHAIN`
 */
export function encryptSession(
  session: SessionState,
  plaintext: Uint8Array,
): { session: SessionState; kind: PairwiseKind; message: Uint8Array } {
  const pending = session.pendingPreKey;
  const { state, message } = ratchetEncrypt(session.ratchet, plaintext, pending);
  const next = { ...session, ratchet: state };
  if (pending === undefined) return { session: next, kind: 'message', message };
  const wire = new Writer(pending.length + 4 + message.length)
    .bytes(pending)
    .opaque32(message)
    .finish();
  return { session: next, kind: 'prekey', message: wire };
}

/**
 * Decrypts a ratchet message with a session. A successful decryption acknowledges the session
 * (the initiator stops sending prekey messages).
 * @throws see {@link ratchetDecrypt}
 */
export function decryptSession(
  session: SessionState,
  message: RatchetMessage,
  now: number,
  limits: RatchetLimits = DEFAULT_RATCHET_LIMITS,
  prefix?: Uint8Array,
): { session: SessionState; plaintext: Uint8Array } {
  const { state, plaintext } = ratchetDecrypt(session.ratchet, message, now, limits, prefix);
  return { session: { ...session, ratchet: state, pendingPreKey: undefined }, plaintext };
}

/** The wire type byte of a message (after checking the version byte). */
export function peekWireType(bytes: Uint8Array): number {
  if (bytes.length < 2) throw new MalformedError('ERR_ENCODING_MALFORMED', 'message too short');
  if (bytes[0] !== WIRE_VERSION) {
    throw new MalformedError(
      'ERR_UNSUPPORTED_VERSION',
      `unsupported wire version ${bytes[0] ?? 0}`,
    );
  }
  return bytes[1] ?? 0;
}

/** True for the wire types a pairwise session decrypts. */
export function isPairwiseType(type: number): boolean {
  return (
    type === WIRE_TYPE.preKeyMessage ||
    type === WIRE_TYPE.ratchetMessage ||
    type === WIRE_TYPE.ratchetMessageEncryptedHeader
  );
}
