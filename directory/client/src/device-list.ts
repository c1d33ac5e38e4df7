/**
 * The value Keytrail keeps per account version: its device list, in one canonical binary
 * encoding (TLS presentation language, as `@keytrail/core`'s encoding module), so that the
 * commitment, the device signature over an update and every client agree byte for byte.
 *
 * ```
 * enum { device(1), recovery(2), admin(3) } AuthorizationKind;
 *
 * struct {
 *   opaque device_id<1..64>;        // ASCII, ^[A-Za-z0-9._-]{1,64}$
 *   opaque identity_key[32];        // Ed25519 public key
 *   opaque x25519_key<0..32>;       // empty, or a 32-byte X25519 public key
 *   uint64 added_at_ms;             // when this device was added
 *   AuthorizationKind added_by;     // how the change that added it was authorised (uint8)
 * } Device;
 *
 * struct {
 *   uint8  format = 1;
 *   Device devices<0..2^16-1>;      // sorted by device_id (bytewise), ids unique, ≤ 64 devices
 * } DeviceList;
 *
 * struct {                          // what an existing device signs (Ed25519) to change a list
 *   opaque context[30] = "keytrail/device-list-update/v1";
 *   AccountLabel label;             // see account.ts
 *   uint32 version;                 // the version the new list will have
 *   opaque device_list<0..2^32-1>;  // the DeviceList encoding
 * } DeviceListUpdate;
 * ```
 * @module
 */
import { encoding, bytes, MalformedError, KtError } from '@keytrail/core';
import { accountLabel, type AccountRef } from './account.ts';
import { ClientError } from './errors.ts';

/** How the change that added a device was authorised. */
export type AuthorizationKind = 'device' | 'recovery' | 'admin';

/** One device of an account. */
export interface Device {
  /** Stable id of the device within the account. */
  readonly id: string;
  /** Ed25519 identity public key (32 bytes). */
  readonly identityKey: Uint8Array;
  /** X25519 public key where separate from the identity key (32 bytes), or absent. */
  readonly x25519Key?: Uint8Array | undefined;
  /** When the device was added, in milliseconds since the Unix epoch. */
  readonly addedAt: number;
  /** How the change that added it was authorised. */
  readonly addedBy: AuthorizationKind;
}

/** An account's device list (one version of its value). */
export type DeviceList = readonly Device[];

/** Format byte of {@link encodeDeviceList}. */
export const DEVICE_LIST_FORMAT = 1;
/** Most devices an account may have. */
export const MAX_DEVICES = 64;
/** A device id: 1–64 characters of `A-Za-z0-9._-`. */
export const DEVICE_ID_PATTERN = '^[A-Za-z0-9._\\-]{1,64}$';
const DEVICE_ID_RE = new RegExp(DEVICE_ID_PATTERN);
const KINDS: readonly AuthorizationKind[] = ['device', 'recovery', 'admin'];
const UPDATE_CONTEXT = bytes.utf8('keytrail/device-list-update/v1');

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Checks a device list: valid ids, unique, at most {@link MAX_DEVICES}, key sizes, times.
 * @returns a problem description, or undefined when the list is valid.
 */
export function checkDeviceList(list: DeviceList): string | undefined {
  if (list.length > MAX_DEVICES) return `at most ${MAX_DEVICES} devices`;
  const seen = new Set<string>();
  for (const d of list) {
    if (!DEVICE_ID_RE.test(d.id)) return 'a device id is not valid';
    if (seen.has(d.id)) return 'device ids must be unique';
    seen.add(d.id);
    if (d.identityKey.length !== 32) return 'an identity key is not 32 bytes';
    if (d.x25519Key !== undefined && d.x25519Key.length !== 32)
      return 'an X25519 key is not 32 bytes';
    if (!Number.isSafeInteger(d.addedAt) || d.addedAt < 0) return 'addedAt is not a valid time';
    if (!KINDS.includes(d.addedBy)) return 'addedBy is not a known authorisation kind';
  }
  return undefined;
}

/**
 * The canonical encoding of a device list (devices sorted by id).
 * @throws RangeError if the list is not valid ({@link checkDeviceList}).
 */
export function encodeDeviceList(list: DeviceList): Uint8Array {
  const problem = checkDeviceList(list);
  if (problem !== undefined) throw new RangeError(`encodeDeviceList: ${problem}`);
  const sorted = [...list].sort((a, b) => compareIds(a.id, b.id));
  const inner = new encoding.Writer();
  for (const d of sorted) {
    inner
      .opaque8(bytes.utf8(d.id))
      .fixed(d.identityKey, 32)
      .opaque8(d.x25519Key ?? new Uint8Array(0))
      .u64(d.addedAt)
      .u8(KINDS.indexOf(d.addedBy) + 1);
  }
  return new encoding.Writer().u8(DEVICE_LIST_FORMAT).opaque16(inner.finish()).finish();
}

function malformed(message: string, cause?: unknown): ClientError {
  return new ClientError('ERR_VALUE_MALFORMED', message, cause === undefined ? {} : { cause });
}

/**
 * Strictly decodes a device list: it must be the canonical encoding (re-encoding gives the
 * same bytes), so one list has exactly one accepted encoding.
 * @throws ClientError `ERR_VALUE_MALFORMED`
 */
export function decodeDeviceList(data: Uint8Array): Device[] {
  try {
    const r = new encoding.Reader(data);
    if (r.u8() !== DEVICE_LIST_FORMAT) throw malformed('unknown device list format');
    const inner = new encoding.Reader(r.opaque16());
    r.end();
    const out: Device[] = [];
    while (inner.remaining > 0) {
      const id = bytes.fromUtf8(inner.opaque8({ min: 1, max: 64 }));
      const identityKey = inner.fixed(32);
      const x = inner.opaque8({ max: 32 });
      if (x.length !== 0 && x.length !== 32) throw malformed('an X25519 key is not 32 bytes');
      const addedAt = inner.u64Number();
      const kind = KINDS[inner.u8() - 1];
      if (kind === undefined) throw malformed('unknown authorisation kind');
      out.push({
        id,
        identityKey,
        ...(x.length === 32 ? { x25519Key: x } : {}),
        addedAt,
        addedBy: kind,
      });
      if (out.length > MAX_DEVICES) throw malformed('too many devices');
    }
    const problem = checkDeviceList(out);
    if (problem !== undefined) throw malformed(problem);
    if (!bytes.equalBytes(encodeDeviceList(out), data))
      throw malformed('not the canonical encoding');
    return out;
  } catch (err) {
    if (err instanceof ClientError) throw err;
    if (err instanceof MalformedError || err instanceof KtError) {
      throw malformed('device list does not decode', err);
    }
    throw err;
  }
}

/**
 * The message an existing device signs (Ed25519) to authorise `list` as `version` of the
 * account.
 * @throws RangeError if the account or list is not valid.
 */
export function deviceListUpdateMessage(
  ref: AccountRef,
  version: number,
  list: DeviceList,
): Uint8Array {
  return new encoding.Writer()
    .bytes(UPDATE_CONTEXT)
    .bytes(accountLabel(ref))
    .u32(version)
    .opaque32(encodeDeviceList(list))
    .finish();
}

const OWNER_READ_CONTEXT = bytes.utf8('keytrail/owner-read/v1');

/**
 * The message a device of the account signs (Ed25519) to read the account's history, sent as
 * `Authorization: KT-Device <device id> <timestamp ms> <base64 signature>`. The directory
 * accepts timestamps within a few minutes of its clock.
 * @throws RangeError if the account is not valid.
 */
export function ownerReadMessage(ref: AccountRef, timestampMs: number): Uint8Array {
  return new encoding.Writer()
    .bytes(OWNER_READ_CONTEXT)
    .bytes(accountLabel(ref))
    .u64(timestampMs)
    .finish();
}
