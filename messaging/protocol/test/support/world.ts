/**
 * A small in-memory world for scenario tests and the benchmark: a key directory (account →
 * device list), a relay that serves prekey bundles (popping one-time prekeys) and delivers
 * messages, and devices each with their own stores and {@link SessionManager}. Nothing is
 * mocked: every byte goes through the real encoders and the real managers.
 * @module
 */
import {
  type Address,
  type DeviceList,
  type DirectoryDevice,
  type Kem,
  type LocalDevice,
  type OutgoingMessage,
  type Received,
  type SessionFeatures,
  type ManagerLimits,
  InMemoryIdentityStore,
  InMemoryPreKeyStore,
  InMemorySenderKeyStore,
  InMemorySessionStore,
  SessionManager,
  addressKey,
  createKemPreKey,
  createOneTimePreKeys,
  createSignedPreKey,
  encodePreKeyBundle,
  generateIdentityKeyPair,
  generateRegistrationId,
} from '../../src/index.ts';

/** One device in the world. */
export interface Device {
  readonly address: Address;
  readonly local: LocalDevice;
  readonly identities: InMemoryIdentityStore;
  readonly sessions: InMemorySessionStore;
  readonly preKeys: InMemoryPreKeyStore;
  readonly senderKeys: InMemorySenderKeyStore;
  readonly manager: SessionManager;
  /** Reset requests the manager asked to send. */
  readonly outbox: { to: Address; body: Uint8Array }[];
  /** Identity changes the manager reported. */
  readonly identityChanges: Address[];
}

/** Options for a new device. */
export interface DeviceOptions {
  readonly features?: SessionFeatures;
  readonly kem?: Kem;
  readonly oneTimePreKeys?: number;
  readonly serialize?: boolean;
  readonly limits?: Partial<ManagerLimits>;
}

/** The world. */
export class World {
  readonly directory = new Map<string, DirectoryDevice[]>();
  readonly devices = new Map<string, Device>();
  /** How many bundles the relay served, per device. */
  readonly bundleFetches = new Map<string, number>();
  private nextPreKeyId = 1;

  lookup(account: string): Promise<DeviceList> {
    return Promise.resolve({ account, devices: [...(this.directory.get(account) ?? [])] });
  }

  device(address: Address): Device {
    const d = this.devices.get(addressKey(address));
    if (d === undefined) throw new Error(`no device ${addressKey(address)}`);
    return d;
  }

  /** The relay's bundle endpoint: pops one one-time prekey (none when exhausted). */
  fetchBundle(address: Address): Promise<Uint8Array> {
    const d = this.device(address);
    this.bundleFetches.set(
      addressKey(address),
      (this.bundleFetches.get(addressKey(address)) ?? 0) + 1,
    );
    const spk = [...d.preKeys.signed.values()].at(-1);
    if (spk === undefined) throw new Error('no signed prekey');
    const opk = [...d.preKeys.oneTime.values()][0];
    const kem = [...d.preKeys.kem.values()][0];
    return Promise.resolve(
      encodePreKeyBundle({
        address,
        registrationId: d.local.registrationId,
        identityKey: d.local.identity.publicKey,
        signedPreKey: { id: spk.id, publicKey: spk.keyPair.publicKey, signature: spk.signature },
        oneTimePreKey:
          opk === undefined ? undefined : { id: opk.id, publicKey: opk.keyPair.publicKey },
        kemPreKey:
          kem === undefined
            ? undefined
            : { kemId: kem.kemId, id: kem.id, publicKey: kem.publicKey, signature: kem.signature },
      }),
    );
  }

  /** Registers a device: identity, prekeys, directory entry. */
  addDevice(account: string, device: number, options: DeviceOptions = {}): Device {
    const address = { account, device };
    const local: LocalDevice = {
      address,
      registrationId: generateRegistrationId(),
      identity: generateIdentityKeyPair(),
    };
    const identities = new InMemoryIdentityStore(local);
    const sessions = new InMemorySessionStore({ serialize: options.serialize ?? false });
    const preKeys = new InMemoryPreKeyStore();
    const senderKeys = new InMemorySenderKeyStore({ serialize: options.serialize ?? false });
    const spk = createSignedPreKey(local.identity, this.nextPreKeyId++, 0);
    preKeys.signed.set(spk.id, spk);
    for (const opk of createOneTimePreKeys(this.nextPreKeyId, options.oneTimePreKeys ?? 5)) {
      preKeys.oneTime.set(opk.id, opk);
    }
    this.nextPreKeyId += 100;
    if (options.kem !== undefined) {
      const k = createKemPreKey(local.identity, options.kem, this.nextPreKeyId++, true);
      preKeys.kem.set(k.id, k);
    }
    const outbox: { to: Address; body: Uint8Array }[] = [];
    const identityChanges: Address[] = [];
    const manager = new SessionManager({
      identities,
      sessions,
      preKeys,
      senderKeys,
      directory: (a) => this.lookup(a),
      fetchBundle: (a) => this.fetchBundle(a),
      ...(options.features === undefined ? {} : { features: options.features }),
      ...(options.kem === undefined ? {} : { kem: options.kem }),
      ...(options.limits === undefined ? {} : { limits: options.limits }),
      sendResetRequest: (to, body) => {
        outbox.push({ to, body });
        return Promise.resolve();
      },
      onIdentityChange: (a) => identityChanges.push(a),
    });
    const d: Device = {
      address,
      local,
      identities,
      sessions,
      preKeys,
      senderKeys,
      manager,
      outbox,
      identityChanges,
    };
    this.devices.set(addressKey(address), d);
    const list = this.directory.get(account) ?? [];
    this.directory.set(account, [
      ...list.filter((e) => e.device !== device),
      { device, identityKey: local.identity.publicKey, registrationId: local.registrationId },
    ]);
    return d;
  }

  /** Removes a device from the directory (the device itself keeps running). */
  removeDevice(address: Address): void {
    const list = this.directory.get(address.account) ?? [];
    this.directory.set(
      address.account,
      list.filter((e) => e.device !== address.device),
    );
  }

  /** Delivers messages; returns what each recipient received (errors rethrown). */
  async deliver(
    from: Address,
    messages: readonly OutgoingMessage[],
    now: number,
  ): Promise<Map<string, Received>> {
    const out = new Map<string, Received>();
    for (const m of messages) {
      const r = await this.device(m.address).manager.receive(m.body, now, { sender: from });
      out.set(addressKey(m.address), r);
    }
    return out;
  }
}
