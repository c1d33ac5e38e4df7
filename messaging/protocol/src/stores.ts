/**
 * The storage interfaces a caller provides to the session manager (Sesame rev. 2 §2: user and
 * device records; X3DH §3.2: prekeys), and in-memory implementations for tests and examples.
 *
 * Stores hold immutable values: the manager never mutates what it stored or loaded, and writes a
 * record only after the operation that produced it succeeded (a failed decryption writes
 * nothing). A persistent store can keep records as bytes with `encodeDeviceRecord` /
 * `encodeSenderKeyRecord`; `InMemory*` stores built with `{ serialize: true }` do exactly that, so
 * the tests also prove that the encodings lose nothing.
 * @module
 */
import { type Address, addressKey } from './address.ts';
import { equalBytes, toHex } from './bytes.ts';
import type { IdentityKeyPair } from './keys.ts';
import {
  type DeviceRecord,
  decodeDeviceRecord,
  decodeSenderKeyRecord,
  encodeDeviceRecord,
  encodeSenderKeyRecord,
} from './records.ts';
import type { SenderKeyRecord } from './sender-keys.ts';
import type { KemPreKey, OneTimePreKey, SignedPreKey } from './x3dh.ts';

/** This device: its address, registration id and identity key pair. */
export interface LocalDevice {
  readonly address: Address;
  readonly registrationId: number;
  readonly identity: IdentityKeyPair;
}

/** What pinning an identity key found. */
export type IdentityChange = 'new' | 'unchanged' | 'changed';

/** The local identity and the identity keys pinned for remote devices. */
export interface IdentityStore {
  getLocalDevice(): Promise<LocalDevice>;
  /** The identity key pinned for a remote device. */
  loadIdentity(address: Address): Promise<Uint8Array | undefined>;
  /** Pins a key for a remote device and reports whether it is new, the same, or a change. */
  saveIdentity(address: Address, identityKey: Uint8Array): Promise<IdentityChange>;
}

/** Sesame device records. */
export interface SessionStore {
  loadDevice(address: Address): Promise<DeviceRecord | undefined>;
  storeDevice(address: Address, record: DeviceRecord): Promise<void>;
  /** Device ids of an account that have a record. */
  listDevices(account: string): Promise<number[]>;
}

/** The local device's prekeys (private halves). */
export interface PreKeyStore {
  loadSignedPreKey(id: number): Promise<SignedPreKey | undefined>;
  loadOneTimePreKey(id: number): Promise<OneTimePreKey | undefined>;
  /** Deletes a one-time prekey after its first successful use (X3DH §3.4). */
  removeOneTimePreKey(id: number): Promise<void>;
  loadKemPreKey(id: number): Promise<KemPreKey | undefined>;
  /** Deletes a one-time KEM prekey after use; last-resort keys are kept. */
  removeKemPreKey(id: number): Promise<void>;
}

/** Sender-key records, per sender device and group. */
export interface SenderKeyStore {
  loadSenderKey(sender: Address, groupId: Uint8Array): Promise<SenderKeyRecord | undefined>;
  storeSenderKey(sender: Address, groupId: Uint8Array, record: SenderKeyRecord): Promise<void>;
}

/** In-memory {@link IdentityStore}. */
export class InMemoryIdentityStore implements IdentityStore {
  private readonly local: LocalDevice;
  private readonly pinned = new Map<string, Uint8Array>();
  constructor(local: LocalDevice) {
    this.local = local;
  }
  getLocalDevice(): Promise<LocalDevice> {
    return Promise.resolve(this.local);
  }
  loadIdentity(address: Address): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.pinned.get(addressKey(address)));
  }
  saveIdentity(address: Address, identityKey: Uint8Array): Promise<IdentityChange> {
    const k = addressKey(address);
    const old = this.pinned.get(k);
    this.pinned.set(k, identityKey.slice());
    if (old === undefined) return Promise.resolve('new');
    return Promise.resolve(equalBytes(old, identityKey) ? 'unchanged' : 'changed');
  }
}

/** In-memory {@link SessionStore}; with `serialize` it stores encoded bytes. */
export class InMemorySessionStore implements SessionStore {
  private readonly records = new Map<string, DeviceRecord | Uint8Array>();
  private readonly serialize: boolean;
  /** Number of writes (tests use it to show that failures write nothing). */
  writes = 0;
  constructor(options: { serialize?: boolean } = {}) {
    this.serialize = options.serialize ?? false;
  }
  loadDevice(address: Address): Promise<DeviceRecord | undefined> {
    const v = this.records.get(addressKey(address));
    if (v === undefined) return Promise.resolve(undefined);
    return Promise.resolve(v instanceof Uint8Array ? decodeDeviceRecord(v) : v);
  }
  storeDevice(address: Address, record: DeviceRecord): Promise<void> {
    this.writes++;
    this.records.set(addressKey(address), this.serialize ? encodeDeviceRecord(record) : record);
    return Promise.resolve();
  }
  listDevices(account: string): Promise<number[]> {
    const out: number[] = [];
    for (const k of this.records.keys()) {
      const colon = k.indexOf(':');
      if (k.slice(colon + 1) === account) out.push(Number(k.slice(0, colon)));
    }
    return Promise.resolve(out.sort((a, b) => a - b));
  }
  /** Forgets everything (a device that lost its state, in tests). */
  clear(): void {
    this.records.clear();
  }
  /** The stored bytes of a record (encoding it if the store keeps objects), for tests. */
  snapshot(address: Address): Uint8Array | undefined {
    const v = this.records.get(addressKey(address));
    if (v === undefined) return undefined;
    return v instanceof Uint8Array ? v.slice() : encodeDeviceRecord(v);
  }
}

/** In-memory {@link PreKeyStore}. */
export class InMemoryPreKeyStore implements PreKeyStore {
  readonly signed: Map<number, SignedPreKey> = new Map();
  readonly oneTime: Map<number, OneTimePreKey> = new Map();
  readonly kem: Map<number, KemPreKey> = new Map();
  loadSignedPreKey(id: number): Promise<SignedPreKey | undefined> {
    return Promise.resolve(this.signed.get(id));
  }
  loadOneTimePreKey(id: number): Promise<OneTimePreKey | undefined> {
    return Promise.resolve(this.oneTime.get(id));
  }
  removeOneTimePreKey(id: number): Promise<void> {
    this.oneTime.delete(id);
    return Promise.resolve();
  }
  loadKemPreKey(id: number): Promise<KemPreKey | undefined> {
    return Promise.resolve(this.kem.get(id));
  }
  removeKemPreKey(id: number): Promise<void> {
    const k = this.kem.get(id);
    if (k !== undefined && !k.lastResort) this.kem.delete(id);
    return Promise.resolve();
  }
}

/** In-memory {@link SenderKeyStore}; with `serialize` it stores encoded bytes. */
export class InMemorySenderKeyStore implements SenderKeyStore {
  private readonly records = new Map<string, SenderKeyRecord | Uint8Array>();
  private readonly serialize: boolean;
  constructor(options: { serialize?: boolean } = {}) {
    this.serialize = options.serialize ?? false;
  }
  loadSenderKey(sender: Address, groupId: Uint8Array): Promise<SenderKeyRecord | undefined> {
    const v = this.records.get(`${addressKey(sender)}/${toHex(groupId)}`);
    if (v === undefined) return Promise.resolve(undefined);
    return Promise.resolve(v instanceof Uint8Array ? decodeSenderKeyRecord(v) : v);
  }
  storeSenderKey(sender: Address, groupId: Uint8Array, record: SenderKeyRecord): Promise<void> {
    this.records.set(
      `${addressKey(sender)}/${toHex(groupId)}`,
      this.serialize ? encodeSenderKeyRecord(record) : record,
    );
    return Promise.resolve();
  }
}
