/**
 * Storage records and their canonical encodings (wire types `deviceRecord` 0x10 and
 * `senderKeyRecord` 0x11), so that a caller's store can persist them as opaque bytes.
 *
 * A {@link DeviceRecord} is Sesame's DeviceRecord (rev. 2 §2): the active session with one remote
 * device, the inactive sessions kept for trial decryption (newest first), whether the device is
 * stale, the feature floor that no later session with the device may go below, and the
 * bookkeeping that rate-limits session resets.
 *
 * The encodings contain private keys and chain keys: store them like any other secret.
 * @module
 */
import { fromHex, toHex } from './bytes.ts';
import { type Reader, Writer, decodeStrict } from './codec.ts';
import { MalformedError } from './errors.ts';
import type { RatchetState, SkippedKey } from './ratchet.ts';
import type { SenderKeyRecord, SenderKeyState } from './sender-keys.ts';
import type { SessionState } from './session.ts';
import { decodeFeatures, encodeFeatures } from './x3dh.ts';

/** The weakest parameters a new session with a device may have (monotonic). */
export interface FeatureFloor {
  readonly headerEncryption: boolean;
  readonly kem: boolean;
}

/** Sesame's per-device record. */
export interface DeviceRecord {
  readonly active: SessionState | undefined;
  /** Inactive sessions, newest first. */
  readonly archived: readonly SessionState[];
  /** When the device was first seen missing from the directory's device list. */
  readonly staleSince: number | undefined;
  readonly floor: FeatureFloor;
  /** When this device last sent the remote device a reset request. */
  readonly resetRequestedAt: number | undefined;
  /** When this device last honoured a reset request from the remote device. */
  readonly resetAcceptedAt: number | undefined;
  /** The newest reset-request timestamp honoured (older ones are replays). */
  readonly lastResetTimestamp: number;
}

/** A record with no sessions. */
export const EMPTY_DEVICE_RECORD: DeviceRecord = Object.freeze({
  active: undefined,
  archived: [],
  staleSince: undefined,
  floor: { headerEncryption: false, kem: false },
  resetRequestedAt: undefined,
  resetAcceptedAt: undefined,
  lastResetTimestamp: 0,
});

/** Largest encoded record accepted. */
export const MAX_RECORD_SIZE: number = 16 * 1024 * 1024;

function optFixed(w: Writer, b: Uint8Array | undefined, n: number): void {
  if (b === undefined) w.u8(0);
  else w.u8(1).fixed(b, n);
}

function readOptFixed(r: Reader, n: number): Uint8Array | undefined {
  return r.bool() ? r.fixed(n) : undefined;
}

function optU64(w: Writer, v: number | undefined): void {
  if (v === undefined) w.u8(0);
  else w.u8(1).u64(v);
}

function readOptU64(r: Reader): number | undefined {
  return r.bool() ? r.u64() : undefined;
}

function writeRatchet(w: Writer, s: RatchetState): void {
  w.fixed(s.localIdentityKey, 32)
    .fixed(s.remoteIdentityKey, 32)
    .fixed(s.rootKey, 32)
    .fixed(s.sendingKeyPair.privateKey, 32)
    .fixed(s.sendingKeyPair.publicKey, 32);
  optFixed(w, s.remoteRatchetKey, 32);
  optFixed(w, s.sendingChainKey, 32);
  optFixed(w, s.receivingChainKey, 32);
  w.u32(s.sendCount).u32(s.receiveCount).u32(s.previousSendCount);
  if (s.headerKeys === undefined) w.u8(0);
  else {
    w.u8(1);
    optFixed(w, s.headerKeys.sending, 32);
    optFixed(w, s.headerKeys.receiving, 32);
    w.fixed(s.headerKeys.nextSending, 32).fixed(s.headerKeys.nextReceiving, 32);
  }
  w.u8(s.previousChains.length);
  for (const k of s.previousChains) w.fixed(k, 32);
  w.u32(s.skipped.size);
  for (const [id, k] of s.skipped) {
    const colon = id.indexOf(':');
    w.fixed(fromHex(id.slice(0, colon)), 32)
      .u32(Number(id.slice(colon + 1)))
      .fixed(k.messageKey, 32)
      .u64(k.createdAt);
  }
}

function readRatchet(r: Reader): RatchetState {
  const localIdentityKey = r.fixed(32);
  const remoteIdentityKey = r.fixed(32);
  const rootKey = r.fixed(32);
  const sendingKeyPair = { privateKey: r.fixed(32), publicKey: r.fixed(32) };
  const remoteRatchetKey = readOptFixed(r, 32);
  const sendingChainKey = readOptFixed(r, 32);
  const receivingChainKey = readOptFixed(r, 32);
  const sendCount = r.u32();
  const receiveCount = r.u32();
  const previousSendCount = r.u32();
  const headerKeys = r.bool()
    ? {
        sending: readOptFixed(r, 32),
        receiving: readOptFixed(r, 32),
        nextSending: r.fixed(32),
        nextReceiving: r.fixed(32),
      }
    : undefined;
  const previousChains: Uint8Array[] = [];
  for (let n = r.u8(); n > 0; n--) previousChains.push(r.fixed(32));
  const skipped = new Map<string, SkippedKey>();
  const count = r.u32();
  if (count * 76 > r.remaining)
    throw new MalformedError('ERR_ENCODING_MALFORMED', 'input too short');
  for (let i = 0; i < count; i++) {
    const key = r.fixed(32);
    const n = r.u32();
    skipped.set(`${toHex(key)}:${n}`, { messageKey: r.fixed(32), createdAt: r.u64() });
  }
  return {
    localIdentityKey,
    remoteIdentityKey,
    rootKey,
    sendingKeyPair,
    remoteRatchetKey,
    sendingChainKey,
    receivingChainKey,
    sendCount,
    receiveCount,
    previousSendCount,
    skipped,
    previousChains,
    headerKeys,
  };
}

function writeSession(w: Writer, s: SessionState): void {
  writeRatchet(w, s.ratchet);
  w.fixed(s.baseKey, 32)
    .u8(encodeFeatures(s.features))
    .u16(s.kemId)
    .u32(s.localRegistrationId)
    .u32(s.remoteRegistrationId);
  if (s.pendingPreKey === undefined) w.u8(0);
  else w.u8(1).opaque16(s.pendingPreKey);
  w.u64(s.createdAt);
}

function readSession(r: Reader): SessionState {
  const ratchet = readRatchet(r);
  return {
    ratchet,
    baseKey: r.fixed(32),
    features: decodeFeatures(r.u8()),
    kemId: r.u16(),
    localRegistrationId: r.u32(),
    remoteRegistrationId: r.u32(),
    pendingPreKey: r.bool() ? r.opaque16() : undefined,
    createdAt: r.u64(),
  };
}

/** Encodes a device record for storage. */
export function encodeDeviceRecord(rec: DeviceRecord): Uint8Array {
  const w = new Writer(1024).header('deviceRecord');
  if (rec.active === undefined) w.u8(0);
  else {
    w.u8(1);
    writeSession(w, rec.active);
  }
  w.u16(rec.archived.length);
  for (const s of rec.archived) writeSession(w, s);
  optU64(w, rec.staleSince);
  w.u8((rec.floor.headerEncryption ? 1 : 0) | (rec.floor.kem ? 2 : 0));
  optU64(w, rec.resetRequestedAt);
  optU64(w, rec.resetAcceptedAt);
  w.u64(rec.lastResetTimestamp);
  return w.finish();
}

/**
 * Decodes a stored device record.
 * @throws MalformedError `ERR_ENCODING_*`
 */
export function decodeDeviceRecord(bytes: Uint8Array): DeviceRecord {
  return decodeStrict(bytes, MAX_RECORD_SIZE, (r) => {
    r.header('deviceRecord');
    const active = r.bool() ? readSession(r) : undefined;
    const archived: SessionState[] = [];
    for (let n = r.u16(); n > 0; n--) archived.push(readSession(r));
    const staleSince = readOptU64(r);
    const f = r.u8();
    if ((f & ~3) !== 0) throw new MalformedError('ERR_ENCODING_MALFORMED', 'unknown floor bits');
    return {
      active,
      archived,
      staleSince,
      floor: { headerEncryption: (f & 1) !== 0, kem: (f & 2) !== 0 },
      resetRequestedAt: readOptU64(r),
      resetAcceptedAt: readOptU64(r),
      lastResetTimestamp: r.u64(),
    };
  });
}

function writeSenderKeyState(w: Writer, s: SenderKeyState): void {
  w.u32(s.chainId).u32(s.iteration).fixed(s.chainKey, 32).fixed(s.signingPublicKey, 32);
  optFixed(w, s.signingSeed, 32);
  w.u32(s.skipped.size);
  for (const [i, k] of s.skipped) w.u32(i).fixed(k.messageKey, 32).u64(k.createdAt);
}

function readSenderKeyState(r: Reader): SenderKeyState {
  const chainId = r.u32();
  const iteration = r.u32();
  const chainKey = r.fixed(32);
  const signingPublicKey = r.fixed(32);
  const signingSeed = readOptFixed(r, 32);
  const skipped = new Map<number, SkippedKey>();
  const count = r.u32();
  if (count * 44 > r.remaining)
    throw new MalformedError('ERR_ENCODING_MALFORMED', 'input too short');
  for (let i = 0; i < count; i++) {
    skipped.set(r.u32(), { messageKey: r.fixed(32), createdAt: r.u64() });
  }
  return { chainId, iteration, chainKey, signingPublicKey, signingSeed, skipped };
}

/** Encodes a sender-key record for storage. */
export function encodeSenderKeyRecord(rec: SenderKeyRecord): Uint8Array {
  const w = new Writer(512).header('senderKeyRecord').opaque8(rec.groupId).u8(rec.states.length);
  for (const s of rec.states) writeSenderKeyState(w, s);
  w.u16(rec.sharedWith.length);
  for (const a of rec.sharedWith) w.opaque16(new TextEncoder().encode(a));
  return w.finish();
}

/**
 * Decodes a stored sender-key record.
 * @throws MalformedError `ERR_ENCODING_*`
 */
export function decodeSenderKeyRecord(bytes: Uint8Array): SenderKeyRecord {
  return decodeStrict(bytes, MAX_RECORD_SIZE, (r) => {
    r.header('senderKeyRecord');
    const groupId = r.opaque8();
    const states: SenderKeyState[] = [];
    for (let n = r.u8(); n > 0; n--) states.push(readSenderKeyState(r));
    const sharedWith: string[] = [];
    for (let n = r.u16(); n > 0; n--) sharedWith.push(new TextDecoder().decode(r.opaque16()));
    return { groupId, states, sharedWith };
  });
}
