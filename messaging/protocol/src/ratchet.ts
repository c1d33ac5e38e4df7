/**
 * The Double Ratchet (Signal specification rev. 1, 2016-11-20), §3 and §4 (header encryption),
 * with §5.2's recommended KDFs and Keytrail's AEAD in place of AES-CBC + HMAC:
 *
 * - `KDF_RK(rk, dh)`  = HKDF-SHA256(salt = rk, ikm = dh, info = `Keytrail_Ratchet_v1`, 64 B);
 *   with header encryption `Keytrail_Ratchet_HE_v1`, 96 B (the third key is the next header key);
 * - `KDF_CK(ck)`      = (HMAC-SHA256(ck, 0x02), HMAC-SHA256(ck, 0x01));
 * - `ENCRYPT(mk, pt, ad)`: key ‖ nonce = HKDF-SHA256(salt = 32 zero bytes, ikm = mk,
 *   info = `Keytrail_MessageKeys_v1`, 56 B), then XChaCha20-Poly1305(key, nonce, pt,
 *   ad = IK_sender ‖ IK_receiver ‖ [prekey-message prefix] ‖ message header bytes);
 * - `HENCRYPT(hk, header)`: XChaCha20-Poly1305(hk, random 24-byte nonce, header,
 *   ad = IK_sender ‖ IK_receiver ‖ version ‖ type). A header key encrypts many headers, so the
 *   nonce is random (192 bits) rather than derived.
 *
 * States are immutable: {@link ratchetEncrypt} and {@link ratchetDecrypt} return a new state and
 * never touch the old one, so a failed decryption (bad tag, replay, skip bound) leaves the
 * caller's state exactly as it was (§3.5 "if an exception is raised … discard any changes").
 *
 * Bounds (§6.4): at most `maxSkip` message keys are derived per chain step; at most
 * `maxSkippedKeys` skipped keys are stored (oldest evicted first); a stored key expires after
 * `skippedKeyMaxAgeMs`. The last `maxPreviousChains` receiving chains are remembered so that a
 * replay into an old chain is reported as `ERR_DUPLICATE_MESSAGE`.
 * @module
 */
import { open, seal } from './aead.ts';
import { concatBytes, equalBytes, toHex } from './bytes.ts';
import { Reader, WIRE_TYPE, WIRE_VERSION, Writer, decodeStrict } from './codec.ts';
import { MalformedError, StateError, VerificationError } from './errors.ts';
import { kdfChainKey, kdfRootKey, messageKeyMaterial } from './kdf.ts';
import { checkX25519PublicKey, dh, generateKeyPair, type KeyPair } from './keys.ts';
import { getCryptoProvider } from './provider.ts';

/** Limits on skipped message keys (Double Ratchet §6.4; libsignal `consts.rs`). */
export interface RatchetLimits {
  /** Most message keys derived in one chain to reach a message (`MAX_SKIP`). */
  readonly maxSkip: number;
  /** Most skipped message keys stored per session; the oldest are evicted first. */
  readonly maxSkippedKeys: number;
  /** Age after which a stored skipped key is deleted, in milliseconds. */
  readonly skippedKeyMaxAgeMs: number;
  /** Receiving chains remembered to recognise replays into old chains. */
  readonly maxPreviousChains: number;
}

/** Defaults: libsignal's `MAX_MESSAGE_KEYS` 2,000 and `MAX_RECEIVER_CHAINS` 5; 30-day expiry. */
export const DEFAULT_RATCHET_LIMITS: RatchetLimits = Object.freeze({
  maxSkip: 2000,
  maxSkippedKeys: 2000,
  skippedKeyMaxAgeMs: 30 * 24 * 3600 * 1000,
  maxPreviousChains: 5,
});

/** Largest ratchet-message ciphertext accepted (plaintext is bounded by the content layer). */
export const MAX_RATCHET_CIPHERTEXT: number = 128 * 1024;

/** A message key kept for a message that has not arrived yet. */
export interface SkippedKey {
  readonly messageKey: Uint8Array;
  /** When it was derived (the caller's clock, milliseconds). */
  readonly createdAt: number;
}

/** Header-encryption keys (§4): HKs, HKr, NHKs, NHKr. */
export interface HeaderKeys {
  readonly sending: Uint8Array | undefined;
  readonly receiving: Uint8Array | undefined;
  readonly nextSending: Uint8Array;
  readonly nextReceiving: Uint8Array;
}

/** The Double Ratchet state of one session (§3.2), immutable. */
export interface RatchetState {
  /** The local Ed25519 identity key (bound into every message's associated data). */
  readonly localIdentityKey: Uint8Array;
  /** The remote Ed25519 identity key. */
  readonly remoteIdentityKey: Uint8Array;
  /** RK. */
  readonly rootKey: Uint8Array;
  /** DHs. */
  readonly sendingKeyPair: KeyPair;
  /** DHr. */
  readonly remoteRatchetKey: Uint8Array | undefined;
  /** CKs. */
  readonly sendingChainKey: Uint8Array | undefined;
  /** CKr. */
  readonly receivingChainKey: Uint8Array | undefined;
  /** Ns. */
  readonly sendCount: number;
  /** Nr. */
  readonly receiveCount: number;
  /** PN. */
  readonly previousSendCount: number;
  /**
   * MKSKIPPED: keyed by `hex(ratchet key or header key):n`, in insertion order (oldest first).
   */
  readonly skipped: ReadonlyMap<string, SkippedKey>;
  /** Earlier DHr values (or HKr values with header encryption), newest first. */
  readonly previousChains: readonly Uint8Array[];
  /** Present when header encryption is on. */
  readonly headerKeys: HeaderKeys | undefined;
}

/** A message header (§3.1): the sender's ratchet key, PN and N. */
export interface MessageHeader {
  readonly ratchetKey: Uint8Array;
  readonly previousCount: number;
  readonly count: number;
}

const HEADER_SIZE = 40;
const ENCRYPTED_HEADER_SIZE = 24 + HEADER_SIZE + 16;

/** A parsed ratchet message: either a plaintext header or an encrypted one. */
export interface RatchetMessage {
  /** The bytes that the body's associated data covers (version, type and the header field). */
  readonly prefix: Uint8Array;
  /** The header, when not encrypted. */
  readonly header: MessageHeader | undefined;
  /** nonce ‖ ciphertext ‖ tag of the header, when encrypted. */
  readonly encryptedHeader: Uint8Array | undefined;
  /** ciphertext ‖ tag of the body. */
  readonly ciphertext: Uint8Array;
}

function encodeHeader(h: MessageHeader): Uint8Array {
  return new Writer(HEADER_SIZE).fixed(h.ratchetKey, 32).u32(h.previousCount).u32(h.count).finish();
}

function decodeHeader(bytes: Uint8Array): MessageHeader {
  return decodeStrict(bytes, HEADER_SIZE, (r) => {
    const ratchetKey = checkX25519PublicKey(r.fixed(32));
    return { ratchetKey, previousCount: r.u32(), count: r.u32() };
  });
}

/**
 * Parses a ratchet message (wire types `ratchetMessage` 0x03 and
 * `ratchetMessageEncryptedHeader` 0x04).
 * @throws MalformedError `ERR_ENCODING_*`, `ERR_UNSUPPORTED_VERSION`, `ERR_UNEXPECTED_TYPE`, `ERR_KEY_*`
 */
export function decodeRatchetMessage(bytes: Uint8Array): RatchetMessage {
  return decodeStrict(bytes, MAX_RATCHET_CIPHERTEXT + 128, (r: Reader) => {
    const version = r.u8();
    if (version !== WIRE_VERSION) {
      throw new MalformedError('ERR_UNSUPPORTED_VERSION', `unsupported wire version ${version}`);
    }
    const type = r.u8();
    if (type === WIRE_TYPE.ratchetMessage) {
      const header = decodeHeader(r.fixed(HEADER_SIZE));
      const prefix = bytes.slice(0, r.offset);
      const ciphertext = r.opaque32(MAX_RATCHET_CIPHERTEXT);
      return { prefix, header, encryptedHeader: undefined, ciphertext };
    }
    if (type === WIRE_TYPE.ratchetMessageEncryptedHeader) {
      const encryptedHeader = r.fixed(ENCRYPTED_HEADER_SIZE);
      const prefix = bytes.slice(0, r.offset);
      const ciphertext = r.opaque32(MAX_RATCHET_CIPHERTEXT);
      return { prefix, header: undefined, encryptedHeader, ciphertext };
    }
    throw new MalformedError('ERR_UNEXPECTED_TYPE', `not a ratchet message: type ${type}`);
  });
}

/** Parameters shared by both sides' initial states. */
interface InitCommon {
  readonly localIdentityKey: Uint8Array;
  readonly remoteIdentityKey: Uint8Array;
  /** SK from X3DH. */
  readonly sharedSecret: Uint8Array;
  /** Header keys from X3DH (shared HKa, shared NHKb) when header encryption is on. */
  readonly headerKeys?: { readonly a: Uint8Array; readonly nextB: Uint8Array } | undefined;
}

/**
 * Alice's initial state (§3.3 `RatchetInitAlice`, §4 `RatchetInitAliceHE`): a fresh DHs, the
 * first sending chain from DH(DHs, Bob's signed prekey).
 */
export function initRatchetAlice(
  params: InitCommon & { readonly remoteRatchetKey: Uint8Array },
): RatchetState {
  checkX25519PublicKey(params.remoteRatchetKey);
  const sendingKeyPair = generateKeyPair();
  const he = params.headerKeys !== undefined;
  const step = kdfRootKey(
    params.sharedSecret,
    dh(sendingKeyPair.privateKey, params.remoteRatchetKey),
    he,
  );
  return {
    localIdentityKey: params.localIdentityKey,
    remoteIdentityKey: params.remoteIdentityKey,
    rootKey: step.rootKey,
    sendingKeyPair,
    remoteRatchetKey: params.remoteRatchetKey,
    sendingChainKey: step.chainKey,
    receivingChainKey: undefined,
    sendCount: 0,
    receiveCount: 0,
    previousSendCount: 0,
    skipped: new Map(),
    previousChains: [],
    headerKeys:
      params.headerKeys === undefined || step.nextHeaderKey === undefined
        ? undefined
        : {
            sending: params.headerKeys.a,
            receiving: undefined,
            nextSending: step.nextHeaderKey,
            nextReceiving: params.headerKeys.nextB,
          },
  };
}

/**
 * Bob's initial state (§3.3 `RatchetInitBob`, §4 `RatchetInitBobHE`): DHs is his signed prekey
 * pair, RK = SK, no chains until Alice's first message arrives.
 */
export function initRatchetBob(
  params: InitCommon & { readonly ratchetKeyPair: KeyPair },
): RatchetState {
  return {
    localIdentityKey: params.localIdentityKey,
    remoteIdentityKey: params.remoteIdentityKey,
    rootKey: params.sharedSecret,
    sendingKeyPair: params.ratchetKeyPair,
    remoteRatchetKey: undefined,
    sendingChainKey: undefined,
    receivingChainKey: undefined,
    sendCount: 0,
    receiveCount: 0,
    previousSendCount: 0,
    skipped: new Map(),
    previousChains: [],
    headerKeys:
      params.headerKeys === undefined
        ? undefined
        : {
            sending: undefined,
            receiving: undefined,
            nextSending: params.headerKeys.nextB,
            nextReceiving: params.headerKeys.a,
          },
  };
}

function identityAd(state: RatchetState, sending: boolean): Uint8Array {
  return sending
    ? concatBytes(state.localIdentityKey, state.remoteIdentityKey)
    : concatBytes(state.remoteIdentityKey, state.localIdentityKey);
}

/**
 * `RatchetEncrypt` (§3.4 / §4): derives the next sending message key and returns the encoded
 * message with the new state. `extraAd` is bound into the body's associated data (the prekey
 * message prefix while a session is unacknowledged).
 * @throws StateError `ERR_NO_SENDING_CHAIN` before the first message from the other side arrived
 *   (Bob cannot send first)
 */
export function ratchetEncrypt(
  state: RatchetState,
  plaintext: Uint8Array,
  extraAd: Uint8Array = new Uint8Array(0),
): { state: RatchetState; message: Uint8Array } {
  if (state.sendingChainKey === undefined) {
    throw new StateError('ERR_NO_SENDING_CHAIN', 'no sending chain yet');
  }
  if (state.sendCount >= 0xffffffff)
    throw new StateError('ERR_NO_SENDING_CHAIN', 'chain exhausted');
  const { chainKey, messageKey } = kdfChainKey(state.sendingChainKey);
  const header = encodeHeader({
    ratchetKey: state.sendingKeyPair.publicKey,
    previousCount: state.previousSendCount,
    count: state.sendCount,
  });
  const idAd = identityAd(state, true);
  let prefix: Uint8Array;
  if (state.headerKeys === undefined) {
    prefix = concatBytes(Uint8Array.of(WIRE_VERSION, WIRE_TYPE.ratchetMessage), header);
  } else {
    const hk = state.headerKeys.sending;
    if (hk === undefined) throw new StateError('ERR_NO_SENDING_CHAIN', 'no sending header key');
    const typeBytes = Uint8Array.of(WIRE_VERSION, WIRE_TYPE.ratchetMessageEncryptedHeader);
    const nonce = getCryptoProvider().randomBytes(24);
    const encHeader = seal(hk, nonce, header, concatBytes(idAd, typeBytes));
    prefix = concatBytes(typeBytes, nonce, encHeader);
  }
  const { key, nonce } = messageKeyMaterial(messageKey);
  const ciphertext = seal(key, nonce, plaintext, concatBytes(idAd, extraAd, prefix));
  const message = new Writer(prefix.length + 4 + ciphertext.length)
    .bytes(prefix)
    .opaque32(ciphertext)
    .finish();
  return {
    state: { ...state, sendingChainKey: chainKey, sendCount: state.sendCount + 1 },
    message,
  };
}

/** A mutable working copy used inside one decryption and thrown away on failure. */
interface Draft {
  rootKey: Uint8Array;
  sendingKeyPair: KeyPair;
  remoteRatchetKey: Uint8Array | undefined;
  sendingChainKey: Uint8Array | undefined;
  receivingChainKey: Uint8Array | undefined;
  sendCount: number;
  receiveCount: number;
  previousSendCount: number;
  skipped: Map<string, SkippedKey> | ReadonlyMap<string, SkippedKey>;
  skippedCopied: boolean;
  previousChains: readonly Uint8Array[];
  headerKeys: HeaderKeys | undefined;
}

function skippedId(key: Uint8Array, n: number): string {
  return `${toHex(key)}:${n}`;
}

function writableSkipped(d: Draft): Map<string, SkippedKey> {
  if (!d.skippedCopied) {
    d.skipped = new Map(d.skipped);
    d.skippedCopied = true;
  }
  return d.skipped as Map<string, SkippedKey>;
}

/** `SkipMessageKeys` (§3.5) on the current receiving chain, bounded by `maxSkip`. */
function skipMessageKeys(d: Draft, until: number, now: number, limits: RatchetLimits): void {
  if (d.receivingChainKey === undefined || until <= d.receiveCount) return;
  // `until` is attacker-controlled: bound the work before deriving anything.
  if (until - d.receiveCount > limits.maxSkip) {
    throw new StateError('ERR_TOO_MANY_SKIPPED', 'message too far ahead in its chain');
  }
  const idKey = d.headerKeys === undefined ? d.remoteRatchetKey : d.headerKeys.receiving;
  if (idKey === undefined) return;
  const skipped = writableSkipped(d);
  let ck = d.receivingChainKey;
  while (d.receiveCount < until) {
    const next = kdfChainKey(ck);
    skipped.set(skippedId(idKey, d.receiveCount), { messageKey: next.messageKey, createdAt: now });
    ck = next.chainKey;
    d.receiveCount++;
  }
  d.receivingChainKey = ck;
  // Evict the oldest keys beyond the storage bound (Map iteration is insertion order).
  while (skipped.size > limits.maxSkippedKeys) {
    const first = skipped.keys().next();
    if (first.done === true) break;
    skipped.delete(first.value);
  }
}

/** `DHRatchet` (§3.5) / `DHRatchetHE` (§4). */
function dhRatchetStep(d: Draft, header: MessageHeader, limits: RatchetLimits): void {
  const he = d.headerKeys !== undefined;
  const retired = he ? d.headerKeys?.receiving : d.remoteRatchetKey;
  if (retired !== undefined) {
    d.previousChains = [retired, ...d.previousChains].slice(0, limits.maxPreviousChains);
  }
  d.previousSendCount = d.sendCount;
  d.sendCount = 0;
  d.receiveCount = 0;
  d.remoteRatchetKey = header.ratchetKey;
  const r1 = kdfRootKey(d.rootKey, dh(d.sendingKeyPair.privateKey, header.ratchetKey), he);
  d.receivingChainKey = r1.chainKey;
  d.sendingKeyPair = generateKeyPair();
  const r2 = kdfRootKey(r1.rootKey, dh(d.sendingKeyPair.privateKey, header.ratchetKey), he);
  d.rootKey = r2.rootKey;
  d.sendingChainKey = r2.chainKey;
  if (
    d.headerKeys !== undefined &&
    r1.nextHeaderKey !== undefined &&
    r2.nextHeaderKey !== undefined
  ) {
    d.headerKeys = {
      sending: d.headerKeys.nextSending,
      receiving: d.headerKeys.nextReceiving,
      nextReceiving: r1.nextHeaderKey,
      nextSending: r2.nextHeaderKey,
    };
  }
}

function purgeExpired(d: Draft, now: number, limits: RatchetLimits): void {
  if (d.skipped.size === 0) return;
  const cutoff = now - limits.skippedKeyMaxAgeMs;
  const first = d.skipped.values().next();
  if (first.done === true || first.value.createdAt >= cutoff) return;
  const skipped = writableSkipped(d);
  for (const [id, k] of skipped) {
    if (k.createdAt < cutoff) skipped.delete(id);
  }
}

function tryOpenHeader(
  hk: Uint8Array | undefined,
  msg: RatchetMessage,
  idAd: Uint8Array,
): MessageHeader | undefined {
  if (hk === undefined || msg.encryptedHeader === undefined) return undefined;
  const pt = getCryptoProvider().xchacha20poly1305Open(
    hk,
    msg.encryptedHeader.subarray(0, 24),
    msg.encryptedHeader.subarray(24),
    concatBytes(idAd, msg.prefix.subarray(0, 2)),
  );
  return pt === undefined ? undefined : decodeHeader(pt);
}

/**
 * `RatchetDecrypt` (§3.5 / §4 `RatchetDecryptHE`). Returns the plaintext and the new state; on
 * any failure it throws and the given state is untouched.
 * @throws VerificationError `ERR_DECRYPTION_FAILED`, `ERR_HEADER_DECRYPTION_FAILED`,
 *   `ERR_KEY_LOW_ORDER`
 * @throws StateError `ERR_DUPLICATE_MESSAGE` (a replay, or a message whose key expired),
 *   `ERR_TOO_MANY_SKIPPED`
 * @throws MalformedError `ERR_KEY_*` for a bad ratchet key in the header
 */
export function ratchetDecrypt(
  state: RatchetState,
  message: RatchetMessage,
  now: number,
  limits: RatchetLimits = DEFAULT_RATCHET_LIMITS,
  extraAd: Uint8Array = new Uint8Array(0),
): { state: RatchetState; plaintext: Uint8Array } {
  if ((state.headerKeys === undefined) !== (message.header !== undefined)) {
    throw new VerificationError('ERR_DECRYPTION_FAILED', 'header encryption mode mismatch');
  }
  const d: Draft = {
    rootKey: state.rootKey,
    sendingKeyPair: state.sendingKeyPair,
    remoteRatchetKey: state.remoteRatchetKey,
    sendingChainKey: state.sendingChainKey,
    receivingChainKey: state.receivingChainKey,
    sendCount: state.sendCount,
    receiveCount: state.receiveCount,
    previousSendCount: state.previousSendCount,
    skipped: state.skipped,
    skippedCopied: false,
    previousChains: state.previousChains,
    headerKeys: state.headerKeys,
  };
  purgeExpired(d, now, limits);
  const idAd = identityAd(state, false);
  const bodyAd = concatBytes(idAd, extraAd, message.prefix);
  const openBody = (messageKey: Uint8Array): Uint8Array => {
    const { key, nonce } = messageKeyMaterial(messageKey);
    return open(key, nonce, message.ciphertext, bodyAd);
  };
  const finish = (plaintext: Uint8Array): { state: RatchetState; plaintext: Uint8Array } => ({
    plaintext,
    state: {
      localIdentityKey: state.localIdentityKey,
      remoteIdentityKey: state.remoteIdentityKey,
      rootKey: d.rootKey,
      sendingKeyPair: d.sendingKeyPair,
      remoteRatchetKey: d.remoteRatchetKey,
      sendingChainKey: d.sendingChainKey,
      receivingChainKey: d.receivingChainKey,
      sendCount: d.sendCount,
      receiveCount: d.receiveCount,
      previousSendCount: d.previousSendCount,
      skipped: d.skipped,
      previousChains: d.previousChains,
      headerKeys: d.headerKeys,
    },
  });
  const useSkipped = (id: string): { state: RatchetState; plaintext: Uint8Array } | undefined => {
    const k = d.skipped.get(id);
    if (k === undefined) return undefined;
    const plaintext = openBody(k.messageKey);
    writableSkipped(d).delete(id);
    return finish(plaintext);
  };

  let header: MessageHeader;
  if (message.header !== undefined) {
    header = message.header;
    const hit = useSkipped(skippedId(header.ratchetKey, header.count));
    if (hit !== undefined) return hit;
    if (d.remoteRatchetKey === undefined || !equalBytes(header.ratchetKey, d.remoteRatchetKey)) {
      if (d.previousChains.some((k) => equalBytes(k, header.ratchetKey))) {
        throw new StateError('ERR_DUPLICATE_MESSAGE', 'message from an old chain already used');
      }
      skipMessageKeys(d, header.previousCount, now, limits);
      dhRatchetStep(d, header, limits);
    }
  } else {
    const hks = d.headerKeys;
    if (hks === undefined) throw new VerificationError('ERR_DECRYPTION_FAILED', 'no header keys');
    // Skipped keys are grouped by header key: one trial decryption per distinct key.
    const tried = new Set<string>();
    for (const id of d.skipped.keys()) {
      const hkHex = id.slice(0, id.indexOf(':'));
      if (tried.has(hkHex)) continue;
      tried.add(hkHex);
      const hk = hexKey(hkHex);
      const h = tryOpenHeader(hk, message, idAd);
      if (h !== undefined) {
        const hit = useSkipped(skippedId(hk, h.count));
        if (hit !== undefined) return hit;
      }
    }
    const current = tryOpenHeader(hks.receiving, message, idAd);
    if (current !== undefined) {
      header = current;
    } else {
      const next = tryOpenHeader(hks.nextReceiving, message, idAd);
      if (next === undefined) {
        if (d.previousChains.some((hk) => tryOpenHeader(hk, message, idAd) !== undefined)) {
          throw new StateError('ERR_DUPLICATE_MESSAGE', 'message from an old chain already used');
        }
        throw new VerificationError(
          'ERR_HEADER_DECRYPTION_FAILED',
          'no header key opens the header',
        );
      }
      header = next;
      skipMessageKeys(d, header.previousCount, now, limits);
      dhRatchetStep(d, header, limits);
    }
  }
  if (header.count < d.receiveCount) {
    throw new StateError('ERR_DUPLICATE_MESSAGE', 'message key already used');
  }
  skipMessageKeys(d, header.count, now, limits);
  if (d.receivingChainKey === undefined) {
    throw new VerificationError('ERR_DECRYPTION_FAILED', 'no receiving chain');
  }
  const { chainKey, messageKey } = kdfChainKey(d.receivingChainKey);
  const plaintext = openBody(messageKey);
  d.receivingChainKey = chainKey;
  d.receiveCount++;
  return finish(plaintext);
}

function hexKey(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
