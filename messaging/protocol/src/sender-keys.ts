/**
 * Sender Keys for groups (libsignal `sender_keys.rs` / `group_cipher.rs`, the construction
 * WhatsApp's whitepaper describes), with Keytrail's AEAD:
 *
 * - each member device keeps, per group, a chain (id, iteration, chain key) and an Ed25519
 *   signing key, and sends them to every other member device in a sender-key distribution inside
 *   the pairwise sessions (so distributions are authenticated and replay-protected);
 * - message i: seed = HMAC(ck_i, 0x01), ck_{i+1} = HMAC(ck_i, 0x02); key ‖ nonce =
 *   HKDF(salt = zero, ikm = seed, `Keytrail_GroupMessageKeys_v1`, 56); XChaCha20-Poly1305 with the
 *   message prefix (version, type, group id, chain id, iteration) as associated data;
 * - every message is signed with the sender's signing key over `Keytrail_GroupMessage_v1` ‖ all
 *   preceding bytes, and receivers verify before decrypting;
 * - removing a member makes the sender start a new chain (new id, chain key and signing key)
 *   distributed to the remaining members only: Sender Keys has no post-compromise security, so
 *   this rotation is what locks removed members out of future messages.
 *
 * Receivers keep at most {@link MAX_SENDER_KEY_STATES} chains per sender and group, bound forward
 * jumps and stored skipped keys as the pairwise ratchet does, and return new state values.
 * @module
 */
import { open, seal } from './aead.ts';
import { toHex } from './bytes.ts';
import { type Reader, Writer, decodeStrict } from './codec.ts';
import { MalformedError, StateError } from './errors.ts';
import { LABELS, kdfChainKey, messageKeyMaterial, signatureInput } from './kdf.ts';
import { checkIdentityKey, verifySignature } from './keys.ts';
import { getCryptoProvider } from './provider.ts';
import { DEFAULT_RATCHET_LIMITS, type RatchetLimits, type SkippedKey } from './ratchet.ts';

/** Chains kept per sender and group (libsignal `MAX_SENDER_KEY_STATES`). */
export const MAX_SENDER_KEY_STATES: number = 5;

/** Longest group id in bytes. */
export const MAX_GROUP_ID: number = 64;

/** Largest group-message ciphertext. */
export const MAX_GROUP_CIPHERTEXT: number = 128 * 1024;

/** One sender chain. */
export interface SenderKeyState {
  readonly chainId: number;
  /** The next iteration to send or expect. */
  readonly iteration: number;
  readonly chainKey: Uint8Array;
  readonly signingPublicKey: Uint8Array;
  /** The signing seed: present only in the sender's own state. */
  readonly signingSeed: Uint8Array | undefined;
  /** Message keys of iterations skipped over, by iteration, oldest first. */
  readonly skipped: ReadonlyMap<number, SkippedKey>;
}

/** All chains of one sender in one group, newest first. */
export interface SenderKeyRecord {
  readonly groupId: Uint8Array;
  readonly states: readonly SenderKeyState[];
  /**
   * Sender's own record only: the devices (`addressKey`) that hold the current chain. A member
   * removed from this set triggers a rotation.
   */
  readonly sharedWith: readonly string[];
}

/** A sender-key distribution (wire type `senderKeyDistribution` 0x09). */
export interface SenderKeyDistribution {
  readonly groupId: Uint8Array;
  readonly chainId: number;
  readonly iteration: number;
  readonly chainKey: Uint8Array;
  readonly signingPublicKey: Uint8Array;
}

function checkGroupId(groupId: Uint8Array): Uint8Array {
  if (groupId.length === 0 || groupId.length > MAX_GROUP_ID) {
    throw new MalformedError('ERR_ENCODING_MALFORMED', 'group id must be 1-64 bytes');
  }
  return groupId;
}

/** A fresh chain for the local sender. */
export function createSenderKeyState(): SenderKeyState {
  const p = getCryptoProvider();
  const seed = p.randomBytes(32);
  const idBytes = p.randomBytes(4);
  const chainId = new DataView(idBytes.buffer, idBytes.byteOffset, 4).getUint32(0);
  return {
    chainId,
    iteration: 0,
    chainKey: p.randomBytes(32),
    signingPublicKey: p.ed25519PublicKey(seed),
    signingSeed: seed,
    skipped: new Map(),
  };
}

/** The distribution of the sender's current chain (to send over pairwise sessions). */
export function senderKeyDistribution(record: SenderKeyRecord): SenderKeyDistribution {
  const s = record.states[0];
  if (s === undefined) throw new StateError('ERR_NO_SENDER_KEY', 'no sender key state');
  return {
    groupId: record.groupId,
    chainId: s.chainId,
    iteration: s.iteration,
    chainKey: s.chainKey,
    signingPublicKey: s.signingPublicKey,
  };
}

/** Encodes a distribution. */
export function encodeSenderKeyDistribution(d: SenderKeyDistribution): Uint8Array {
  return new Writer(112)
    .header('senderKeyDistribution')
    .opaque8(checkGroupId(d.groupId))
    .u32(d.chainId)
    .u32(d.iteration)
    .fixed(d.chainKey, 32)
    .fixed(d.signingPublicKey, 32)
    .finish();
}

/**
 * Decodes a distribution strictly.
 * @throws MalformedError `ERR_ENCODING_*`, `ERR_KEY_*`
 */
export function decodeSenderKeyDistribution(bytes: Uint8Array): SenderKeyDistribution {
  return decodeStrict(bytes, 2 + 1 + MAX_GROUP_ID + 8 + 64, (r) => {
    r.header('senderKeyDistribution');
    return {
      groupId: checkGroupId(r.opaque8(MAX_GROUP_ID)),
      chainId: r.u32(),
      iteration: r.u32(),
      chainKey: r.fixed(32),
      signingPublicKey: checkIdentityKey(r.fixed(32)),
    };
  });
}

/**
 * Adds a received distribution to a sender's record. A chain id already present is left as it
 * is, so a replayed or repeated distribution can never wind a chain back to an earlier
 * iteration (which would re-open consumed message keys).
 */
export function processSenderKeyDistribution(
  record: SenderKeyRecord | undefined,
  d: SenderKeyDistribution,
): SenderKeyRecord {
  const states = record?.states ?? [];
  if (states.some((s) => s.chainId === d.chainId)) {
    return record ?? { groupId: d.groupId, states, sharedWith: [] };
  }
  const state: SenderKeyState = {
    chainId: d.chainId,
    iteration: d.iteration,
    chainKey: d.chainKey,
    signingPublicKey: d.signingPublicKey,
    signingSeed: undefined,
    skipped: new Map(),
  };
  return {
    groupId: d.groupId,
    states: [state, ...states].slice(0, MAX_SENDER_KEY_STATES),
    sharedWith: [],
  };
}

/** A parsed group message (wire type `groupMessage` 0x08). */
export interface GroupMessage {
  readonly groupId: Uint8Array;
  readonly chainId: number;
  readonly iteration: number;
  /** Version through iteration: the AEAD's associated data. */
  readonly prefix: Uint8Array;
  readonly ciphertext: Uint8Array;
  /** Every byte before the signature. */
  readonly signed: Uint8Array;
  readonly signature: Uint8Array;
}

/**
 * Decodes a group message strictly.
 * @throws MalformedError `ERR_ENCODING_*`, `ERR_UNSUPPORTED_VERSION`, `ERR_UNEXPECTED_TYPE`
 */
export function decodeGroupMessage(bytes: Uint8Array): GroupMessage {
  return decodeStrict(bytes, MAX_GROUP_CIPHERTEXT + 256, (r: Reader) => {
    r.header('groupMessage');
    const groupId = checkGroupId(r.opaque8(MAX_GROUP_ID));
    const chainId = r.u32();
    const iteration = r.u32();
    const prefix = bytes.slice(0, r.offset);
    const ciphertext = r.opaque32(MAX_GROUP_CIPHERTEXT);
    const signed = bytes.subarray(0, r.offset);
    const signature = r.fixed(64);
    return { groupId, chainId, iteration, prefix, ciphertext, signed, signature };
  });
}

/**
 * Encrypts and signs a group message with the sender's current chain.
 * @throws StateError `ERR_NO_SENDER_KEY`, `ERR_SENDER_KEY_EXHAUSTED`
 */
export function groupEncrypt(
  record: SenderKeyRecord,
  plaintext: Uint8Array,
): { record: SenderKeyRecord; message: Uint8Array } {
  const s = record.states[0];
  if (s?.signingSeed === undefined) {
    throw new StateError('ERR_NO_SENDER_KEY', 'no own sender key state');
  }
  if (s.iteration >= 0xffffffff)
    throw new StateError('ERR_SENDER_KEY_EXHAUSTED', 'chain exhausted');
  const { chainKey, messageKey } = kdfChainKey(s.chainKey);
  const prefix = new Writer(96)
    .header('groupMessage')
    .opaque8(record.groupId)
    .u32(s.chainId)
    .u32(s.iteration)
    .finish();
  const { key, nonce } = messageKeyMaterial(messageKey, LABELS.groupMessageKeys);
  const ciphertext = seal(key, nonce, plaintext, prefix);
  const signed = new Writer(prefix.length + 4 + ciphertext.length + 64)
    .bytes(prefix)
    .opaque32(ciphertext)
    .finish();
  const signature = getCryptoProvider().ed25519Sign(
    s.signingSeed,
    signatureInput(LABELS.groupMessage, signed),
  );
  const message = new Uint8Array(signed.length + 64);
  message.set(signed);
  message.set(signature, signed.length);
  const next: SenderKeyState = { ...s, chainKey, iteration: s.iteration + 1 };
  return { record: { ...record, states: [next, ...record.states.slice(1)] }, message };
}

/**
 * Verifies and decrypts a group message with the sender's record; returns the new record.
 * @throws StateError `ERR_NO_SENDER_KEY` (unknown chain), `ERR_DUPLICATE_MESSAGE`,
 *   `ERR_TOO_MANY_SKIPPED`
 * @throws VerificationError `ERR_GROUP_SIGNATURE_INVALID`, `ERR_DECRYPTION_FAILED`
 */
export function groupDecrypt(
  record: SenderKeyRecord | undefined,
  message: GroupMessage,
  now: number,
  limits: RatchetLimits = DEFAULT_RATCHET_LIMITS,
): { record: SenderKeyRecord; plaintext: Uint8Array } {
  const index = record?.states.findIndex((s) => s.chainId === message.chainId) ?? -1;
  const s = index >= 0 ? record?.states[index] : undefined;
  if (record === undefined || s === undefined) {
    throw new StateError('ERR_NO_SENDER_KEY', 'no sender key for this chain');
  }
  if (toHex(record.groupId) !== toHex(message.groupId)) {
    throw new StateError('ERR_NO_SENDER_KEY', 'sender key belongs to another group');
  }
  verifySignature(
    s.signingPublicKey,
    signatureInput(LABELS.groupMessage, message.signed),
    message.signature,
    'ERR_GROUP_SIGNATURE_INVALID',
  );
  const cutoff = now - limits.skippedKeyMaxAgeMs;
  let skipped: Map<number, SkippedKey> | ReadonlyMap<number, SkippedKey> = s.skipped;
  const first = skipped.values().next();
  if (first.done !== true && first.value.createdAt < cutoff) {
    const m = new Map(skipped);
    for (const [i, k] of m) if (k.createdAt < cutoff) m.delete(i);
    skipped = m;
  }
  const openWith = (mk: Uint8Array): Uint8Array => {
    const { key, nonce } = messageKeyMaterial(mk, LABELS.groupMessageKeys);
    return open(key, nonce, message.ciphertext, message.prefix);
  };
  let next: SenderKeyState;
  let plaintext: Uint8Array;
  if (message.iteration < s.iteration) {
    const k = skipped.get(message.iteration);
    if (k === undefined) throw new StateError('ERR_DUPLICATE_MESSAGE', 'group message replayed');
    plaintext = openWith(k.messageKey);
    const m = new Map(skipped);
    m.delete(message.iteration);
    next = { ...s, skipped: m };
  } else {
    // The iteration is attacker-controlled (but signed): bound the derivation work.
    if (message.iteration - s.iteration > limits.maxSkip) {
      throw new StateError('ERR_TOO_MANY_SKIPPED', 'group message too far ahead');
    }
    let ck = s.chainKey;
    let m: Map<number, SkippedKey> | undefined;
    for (let i = s.iteration; i < message.iteration; i++) {
      const step = kdfChainKey(ck);
      m ??= new Map(skipped);
      m.set(i, { messageKey: step.messageKey, createdAt: now });
      ck = step.chainKey;
    }
    if (m !== undefined) {
      while (m.size > limits.maxSkippedKeys) {
        const oldest = m.keys().next();
        if (oldest.done === true) break;
        m.delete(oldest.value);
      }
      skipped = m;
    }
    const step = kdfChainKey(ck);
    plaintext = openWith(step.messageKey);
    next = { ...s, chainKey: step.chainKey, iteration: message.iteration + 1, skipped };
  }
  const states = record.states.slice();
  states[index] = next;
  return { record: { ...record, states }, plaintext };
}

/**
 * A fresh record for the local sender: a new chain id, chain key and signing key, shared with
 * nobody yet. Earlier own chains are dropped (the sender never decrypts its own messages).
 */
export function rotateSenderKey(groupId: Uint8Array): SenderKeyRecord {
  return { groupId: checkGroupId(groupId), states: [createSenderKeyState()], sharedWith: [] };
}
