/**
 * Multi-device session management after Sesame (Signal, rev. 2, 2017-04-14), with the key
 * directory as the source of device lists:
 *
 * - a message to an account is encrypted for every device the directory lists for it and for
 *   the sender's own other devices (§3.1); a device that lacks an active session gets a new one
 *   from a prekey bundle whose identity key and registration id must match the directory entry
 *   (a contradiction is an {@link InconsistencyError} carrying the bundle);
 * - devices no longer listed are marked stale: nothing more is encrypted to them and, after
 *   `staleGraceMs`, nothing more is accepted from them (§3.2);
 * - each device record keeps one active and up to `maxArchivedSessions` inactive sessions;
 *   decryption tries the active session first, then the inactive ones, and promotes the one that
 *   works, which resolves simultaneous initiation (§3.3);
 * - when a peer's messages cannot be decrypted, a signed, rate-limited reset request makes the
 *   peer archive its session and start a new one (`reset.ts`); a per-device feature floor stops
 *   any new session from being weaker than an earlier one;
 * - sealed sender (`sealed-sender.ts`) and Sender Keys groups (`sender-keys.ts`) are layered on
 *   the same records and stores.
 *
 * Every operation on a device record runs under a per-device lock and writes the record only
 * after it succeeded; a failed decryption writes nothing (libsignal stores work the same way).
 * @module
 */
import { type Address, addressKey, checkAddress, sameAddress } from './address.ts';
import { equalBytes, toHex } from './bytes.ts';
import { WIRE_TYPE } from './codec.ts';
import { type Content, decodeContent, encodeContent } from './content.ts';
import {
  InconsistencyError,
  MalformedError,
  MessagingError,
  StateError,
  VerificationError,
  type MessagingErrorCode,
} from './errors.ts';
import { DEFAULT_RATCHET_LIMITS, type RatchetLimits, decodeRatchetMessage } from './ratchet.ts';
import { type DeviceRecord, EMPTY_DEVICE_RECORD, type FeatureFloor } from './records.ts';
import { createResetRequest, decodeResetRequest, verifyResetRequest } from './reset.ts';
import {
  type DeviceList,
  type DirectoryDevice,
  type SenderCertificate,
  openSealedSender,
  rejectNestedSealed,
  sealSender,
  verifySenderCertificate,
} from './sealed-sender.ts';
import {
  decodeGroupMessage,
  decodeSenderKeyDistribution,
  encodeSenderKeyDistribution,
  groupDecrypt,
  groupEncrypt,
  processSenderKeyDistribution,
  rotateSenderKey,
  senderKeyDistribution,
} from './sender-keys.ts';
import {
  type SessionState,
  acceptSession,
  decodePreKeyMessage,
  decryptSession,
  encryptSession,
  initiateSession,
  isPairwiseType,
  peekWireType,
} from './session.ts';
import type {
  IdentityStore,
  LocalDevice,
  PreKeyStore,
  SenderKeyStore,
  SessionStore,
} from './stores.ts';
import { type Kem, type SessionFeatures, decodePreKeyBundle, verifyPreKeyBundle } from './x3dh.ts';

/** Limits of the session manager (ratchet limits plus Sesame's). */
export interface ManagerLimits extends RatchetLimits {
  /** Inactive sessions kept per device (libsignal `ARCHIVED_STATES_MAX_LENGTH` 40). */
  readonly maxArchivedSessions: number;
  /** Minimum time between two reset requests to, or two honoured resets from, one device. */
  readonly resetIntervalMs: number;
  /** How long messages from a device are still accepted after it left the directory. */
  readonly staleGraceMs: number;
  /** An initiated session never answered is replaced after this age (libsignal: 30 days). */
  readonly maxUnacknowledgedAgeMs: number;
}

/** Default limits. */
export const DEFAULT_MANAGER_LIMITS: ManagerLimits = Object.freeze({
  ...DEFAULT_RATCHET_LIMITS,
  maxArchivedSessions: 40,
  resetIntervalMs: 5 * 60 * 1000,
  staleGraceMs: 0,
  maxUnacknowledgedAgeMs: 30 * 24 * 3600 * 1000,
});

/** Everything the manager needs from its host. */
export interface SessionManagerConfig {
  readonly identities: IdentityStore;
  readonly sessions: SessionStore;
  readonly preKeys: PreKeyStore;
  readonly senderKeys: SenderKeyStore;
  /**
   * The account's device list, as verified against the key directory (inclusion proof, consistent
   * checkpoint, witness quorum). The manager trusts it; callers should cache it.
   */
  readonly directory: (account: string) => Promise<DeviceList>;
  /** Fetches a device's prekey bundle from the relay (encoded, wire type 0x01). */
  readonly fetchBundle: (address: Address) => Promise<Uint8Array>;
  /** Features of sessions this device starts (default: no header encryption). */
  readonly features?: SessionFeatures;
  /** A KEM for PQXDH-style sessions, used when the peer's bundle offers the same KEM. */
  readonly kem?: Kem;
  readonly limits?: Partial<ManagerLimits>;
  /**
   * Called to deliver an automatic reset request after a peer's message could not be
   * decrypted (rate-limited). Without it, no reset is sent automatically.
   */
  readonly sendResetRequest?: (to: Address, request: Uint8Array) => Promise<void>;
  /** Called when the directory shows a new identity key for a device already known. */
  readonly onIdentityChange?: (address: Address) => void;
}

/** One encrypted message for one device, ready for the relay. */
export interface OutgoingMessage {
  readonly address: Address;
  readonly registrationId: number;
  /** `prekey` / `message`: pairwise; `group`: a Sender Keys message; `sealed`: any of them sealed. */
  readonly kind: 'prekey' | 'message' | 'group' | 'sealed';
  readonly body: Uint8Array;
}

/** Options of the encrypting calls. */
export interface EncryptOptions {
  /** Seal every message with this certificate (sealed sender). */
  readonly sealed?: SenderCertificate;
}

/** What {@link SessionManager.receive} yields. */
export type Received =
  | {
      readonly kind: 'data';
      readonly sender: Address;
      readonly sealed: boolean;
      readonly body: Uint8Array;
    }
  | {
      readonly kind: 'group';
      readonly sender: Address;
      readonly sealed: boolean;
      readonly groupId: Uint8Array;
      readonly body: Uint8Array;
    }
  | {
      readonly kind: 'sender-key-distribution';
      readonly sender: Address;
      readonly sealed: boolean;
      readonly groupId: Uint8Array;
    }
  | {
      readonly kind: 'reset';
      readonly sender: Address;
      readonly sealed: boolean;
      readonly accepted: boolean;
    };

/** The result of a group send. */
export interface GroupSendResult {
  /** Sender-key distributions for devices that lack the current chain (send these first). */
  readonly distributions: readonly OutgoingMessage[];
  /** The group message, one entry per member device (the same bytes unless sealed). */
  readonly messages: readonly OutgoingMessage[];
}

interface Target {
  readonly address: Address;
  readonly entry: DirectoryDevice;
}

const RESETTABLE: ReadonlySet<MessagingErrorCode> = new Set<MessagingErrorCode>([
  'ERR_DECRYPTION_FAILED',
  'ERR_HEADER_DECRYPTION_FAILED',
  'ERR_NO_SESSION',
  'ERR_PREKEY_NOT_FOUND',
]);

/** Serialises async work per key (one device record is never modified concurrently). */
class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    try {
      return await next;
    } finally {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

function archiveActive(rec: DeviceRecord, max: number): DeviceRecord {
  if (rec.active === undefined) return rec;
  return { ...rec, active: undefined, archived: [rec.active, ...rec.archived].slice(0, max) };
}

function raiseFloor(floor: FeatureFloor, s: SessionState): FeatureFloor {
  return {
    headerEncryption: floor.headerEncryption || s.features.headerEncryption,
    kem: floor.kem || s.kemId !== 0,
  };
}

function belowFloor(floor: FeatureFloor, features: SessionFeatures, kemId: number): boolean {
  return (floor.headerEncryption && !features.headerEncryption) || (floor.kem && kemId === 0);
}

/**
 * The session manager: the API the relay client and the apps build on.
 *
 * @example
 * ```ts
 * const manager = new SessionManager({ identities, sessions, preKeys, senderKeys,
 *   directory: (account) => verifiedDeviceList(account),
 *   fetchBundle: (address) => relay.fetchBundle(address) });
 * const out = await manager.encrypt('bob@example.org', utf8('hi'), Date.now());
 * for (const m of out) await relay.send(m.address, m.registrationId, m.body);
 * // on the other side:
 * const received = await manager.receive(body, Date.now(), { sender });
 * ```
 */
export class SessionManager {
  private readonly cfg: SessionManagerConfig;
  private readonly limits: ManagerLimits;
  private readonly mutex = new KeyedMutex();

  constructor(config: SessionManagerConfig) {
    this.cfg = config;
    this.limits = { ...DEFAULT_MANAGER_LIMITS, ...config.limits };
  }

  private local(): Promise<LocalDevice> {
    return this.cfg.identities.getLocalDevice();
  }

  private async deviceList(account: string): Promise<DeviceList> {
    const list = await this.cfg.directory(account);
    if (list.account !== account) throw new TypeError('directory returned another account');
    return list;
  }

  /**
   * Marks the account's devices that the directory no longer lists as stale (and un-marks
   * listed ones). Call it when the directory reports a change; sends do it themselves.
   */
  async refreshDevices(account: string, now: number): Promise<DeviceList> {
    const list = await this.deviceList(account);
    const listed = new Set(list.devices.map((d) => d.device));
    for (const device of await this.cfg.sessions.listDevices(account)) {
      const address = { account, device };
      await this.mutex.run(addressKey(address), async () => {
        const rec = await this.cfg.sessions.loadDevice(address);
        if (rec === undefined) return;
        if (!listed.has(device) && rec.staleSince === undefined) {
          await this.cfg.sessions.storeDevice(address, { ...rec, staleSince: now });
        } else if (listed.has(device) && rec.staleSince !== undefined) {
          await this.cfg.sessions.storeDevice(address, { ...rec, staleSince: undefined });
        }
      });
    }
    return list;
  }

  private async targets(
    accounts: readonly string[],
    local: LocalDevice,
    now: number,
  ): Promise<Target[]> {
    const out: Target[] = [];
    const seen = new Set<string>();
    for (const account of [...accounts, local.address.account]) {
      if (seen.has(account)) continue;
      seen.add(account);
      const list = await this.refreshDevices(account, now);
      for (const entry of list.devices) {
        const address = checkAddress({ account, device: entry.device });
        if (sameAddress(address, local.address)) continue;
        out.push({ address, entry });
      }
    }
    return out;
  }

  /**
   * Encrypts `plaintext` for every device of `account` and the sender's own other devices.
   * @throws InconsistencyError `ERR_BUNDLE_IDENTITY_MISMATCH` when the relay's bundle contradicts
   *   the directory
   * @throws VerificationError `ERR_SIGNATURE_INVALID` for a bundle with a bad prekey signature
   * @throws StateError `ERR_SESSION_DOWNGRADE`
   */
  async encrypt(
    account: string,
    plaintext: Uint8Array,
    now: number,
    options: EncryptOptions = {},
  ): Promise<OutgoingMessage[]> {
    const local = await this.local();
    const content = encodeContent({ kind: 'data', body: plaintext });
    const out: OutgoingMessage[] = [];
    for (const t of await this.targets([account], local, now)) {
      out.push(await this.encryptTo(t, content, local, now, options));
    }
    return out;
  }

  private async encryptTo(
    t: Target,
    content: Uint8Array,
    local: LocalDevice,
    now: number,
    options: EncryptOptions,
  ): Promise<OutgoingMessage> {
    const { address, entry } = t;
    const { kind, message } = await this.mutex.run(addressKey(address), async () => {
      let rec = (await this.cfg.sessions.loadDevice(address)) ?? EMPTY_DEVICE_RECORD;
      const change = await this.cfg.identities.saveIdentity(address, entry.identityKey);
      if (change === 'changed') {
        // Sessions with the old identity key are dead: drop them now (even if starting the new
        // session fails below), keep the floor.
        rec = { ...rec, active: undefined, archived: [] };
        await this.cfg.sessions.storeDevice(address, rec);
        this.cfg.onIdentityChange?.(address);
      }
      let session = rec.active;
      if (
        session !== undefined &&
        (!equalBytes(session.ratchet.remoteIdentityKey, entry.identityKey) ||
          session.remoteRegistrationId !== entry.registrationId ||
          (session.pendingPreKey !== undefined &&
            now - session.createdAt > this.limits.maxUnacknowledgedAgeMs))
      ) {
        rec = archiveActive(rec, this.limits.maxArchivedSessions);
        session = undefined;
      }
      if (session === undefined) {
        session = await this.startSession(address, entry, rec.floor, local, now);
        rec = {
          ...archiveActive(rec, this.limits.maxArchivedSessions),
          active: session,
          floor: raiseFloor(rec.floor, session),
        };
      }
      const r = encryptSession(session, content);
      // Persist the advanced sending chain before the ciphertext leaves (pitfall 7).
      await this.cfg.sessions.storeDevice(address, { ...rec, active: r.session });
      return r;
    });
    if (options.sealed !== undefined) {
      const body = sealSender({
        sender: local.identity,
        certificate: options.sealed,
        recipientIdentityKey: entry.identityKey,
        content: message,
      });
      return { address, registrationId: entry.registrationId, kind: 'sealed', body };
    }
    return { address, registrationId: entry.registrationId, kind, body: message };
  }

  private async startSession(
    address: Address,
    entry: DirectoryDevice,
    floor: FeatureFloor,
    local: LocalDevice,
    now: number,
  ): Promise<SessionState> {
    const bytes = await this.cfg.fetchBundle(address);
    const bundle = decodePreKeyBundle(bytes);
    if (
      !sameAddress(bundle.address, address) ||
      !equalBytes(bundle.identityKey, entry.identityKey) ||
      bundle.registrationId !== entry.registrationId
    ) {
      throw new InconsistencyError(
        'ERR_BUNDLE_IDENTITY_MISMATCH',
        'prekey bundle contradicts the directory',
        {
          artifacts: [bytes],
          details: {
            account: address.account,
            device: address.device,
            directoryIdentityKey: toHex(entry.identityKey),
            directoryRegistrationId: entry.registrationId,
          },
        },
      );
    }
    verifyPreKeyBundle(bundle);
    const features: SessionFeatures = {
      headerEncryption: (this.cfg.features?.headerEncryption ?? false) || floor.headerEncryption,
    };
    const kem = this.cfg.kem;
    const useKem = kem !== undefined && bundle.kemPreKey?.kemId === kem.id;
    if (floor.kem && !useKem) {
      throw new StateError(
        'ERR_SESSION_DOWNGRADE',
        'bundle offers no KEM but earlier sessions used one',
      );
    }
    return initiateSession({
      identity: local.identity,
      localRegistrationId: local.registrationId,
      bundle: useKem ? bundle : { ...bundle, kemPreKey: undefined },
      features,
      kem: useKem ? kem : undefined,
      now,
    });
  }

  /**
   * Decrypts anything addressed to this device: a sealed-sender envelope (the sender comes from
   * its certificate, checked against the directory), or a pairwise, group or reset message from
   * `options.sender` (as the relay authenticated it).
   * @throws MessagingError subclasses with the codes of the layer that failed
   */
  async receive(
    bytes: Uint8Array,
    now: number,
    options: { sender?: Address } = {},
  ): Promise<Received> {
    const type = peekWireType(bytes);
    if (type === WIRE_TYPE.sealedSender) {
      const local = await this.local();
      const opened = openSealedSender(bytes, local.identity, now);
      rejectNestedSealed(opened.content);
      const sender = opened.certificate.address;
      const entry = verifySenderCertificate(
        opened.certificate,
        await this.deviceList(sender.account),
      );
      if (options.sender !== undefined && !sameAddress(options.sender, sender)) {
        throw new VerificationError(
          'ERR_SENDER_MISMATCH',
          'transport sender differs from certificate',
        );
      }
      return this.dispatch(sender, opened.content, now, entry);
    }
    if (options.sender === undefined)
      throw new TypeError('receive: sender required for unsealed messages');
    return this.dispatch(checkAddress(options.sender), bytes, now, undefined);
  }

  private async dispatch(
    sender: Address,
    bytes: Uint8Array,
    now: number,
    entry: DirectoryDevice | undefined,
  ): Promise<Received> {
    const sealed = entry !== undefined;
    const type = peekWireType(bytes);
    if (isPairwiseType(type)) {
      let content: Content;
      try {
        content = await this.decryptPairwise(sender, bytes, now, entry);
      } catch (e) {
        await this.autoReset(sender, bytes, now, e);
        throw e;
      }
      if (content.kind === 'data') return { kind: 'data', sender, sealed, body: content.body };
      const d = decodeSenderKeyDistribution(content.body);
      await this.mutex.run(`sk/${addressKey(sender)}/${toHex(d.groupId)}`, async () => {
        const rec = await this.cfg.senderKeys.loadSenderKey(sender, d.groupId);
        await this.cfg.senderKeys.storeSenderKey(
          sender,
          d.groupId,
          processSenderKeyDistribution(rec, d),
        );
      });
      return { kind: 'sender-key-distribution', sender, sealed, groupId: d.groupId };
    }
    if (type === WIRE_TYPE.resetRequest) {
      const accepted = await this.processResetRequest(sender, bytes, now);
      return { kind: 'reset', sender, sealed, accepted };
    }
    if (type === WIRE_TYPE.groupMessage) {
      const { groupId, body } = await this.decryptGroup(sender, bytes, now);
      return { kind: 'group', sender, sealed, groupId, body };
    }
    throw new MalformedError('ERR_UNEXPECTED_TYPE', `cannot receive wire type ${type}`);
  }

  private checkNotStale(rec: DeviceRecord | undefined, now: number): void {
    if (rec?.staleSince !== undefined && now - rec.staleSince >= this.limits.staleGraceMs) {
      throw new StateError('ERR_DEVICE_STALE', 'device was removed from the directory');
    }
  }

  private async decryptPairwise(
    sender: Address,
    bytes: Uint8Array,
    now: number,
    sealedEntry: DirectoryDevice | undefined,
  ): Promise<Content> {
    return this.mutex.run(addressKey(sender), async () => {
      const stored = await this.cfg.sessions.loadDevice(sender);
      let rec = stored ?? EMPTY_DEVICE_RECORD;
      if (peekWireType(bytes) === WIRE_TYPE.preKeyMessage) {
        // The directory decides here (a device listed again is no longer stale).
        rec = { ...rec, staleSince: undefined };
        const pm = decodePreKeyMessage(bytes);
        const entry =
          sealedEntry ??
          (await this.deviceList(sender.account)).devices.find((d) => d.device === sender.device);
        if (entry === undefined)
          throw new StateError('ERR_DEVICE_UNKNOWN', 'device not in directory');
        if (
          !equalBytes(entry.identityKey, pm.identityKey) ||
          entry.registrationId !== pm.registrationId
        ) {
          throw new VerificationError(
            'ERR_UNTRUSTED_IDENTITY',
            'identity differs from the directory',
          );
        }
        const sessions = rec.active === undefined ? rec.archived : [rec.active, ...rec.archived];
        const i = sessions.findIndex(
          (s) =>
            equalBytes(s.baseKey, pm.initiation.baseKey) &&
            equalBytes(s.ratchet.remoteIdentityKey, pm.identityKey),
        );
        const existing = sessions[i];
        if (existing !== undefined) {
          // A repeated (or replayed) initial message: decrypt within the session it created.
          const r = decryptSession(existing, pm.message, now, this.limits, pm.prefix);
          const content = decodeContent(r.plaintext);
          await this.cfg.sessions.storeDevice(sender, this.promote(rec, sessions, i, r.session));
          return content;
        }
        const kemId = pm.initiation.kem?.kemId ?? 0;
        if (belowFloor(rec.floor, pm.initiation.features, kemId)) {
          throw new StateError('ERR_SESSION_DOWNGRADE', 'new session weaker than earlier ones');
        }
        const local = await this.local();
        const spk = await this.cfg.preKeys.loadSignedPreKey(pm.initiation.signedPreKeyId);
        if (spk === undefined)
          throw new StateError('ERR_PREKEY_NOT_FOUND', 'unknown signed prekey');
        const opkId = pm.initiation.oneTimePreKeyId;
        const opk =
          opkId === undefined ? undefined : await this.cfg.preKeys.loadOneTimePreKey(opkId);
        if (opkId !== undefined && opk === undefined) {
          throw new StateError('ERR_PREKEY_NOT_FOUND', 'one-time prekey already used or unknown');
        }
        let kem: { kem: Kem; secretKey: Uint8Array } | undefined;
        if (pm.initiation.kem !== undefined) {
          const k = await this.cfg.preKeys.loadKemPreKey(pm.initiation.kem.preKeyId);
          if (k === undefined) throw new StateError('ERR_PREKEY_NOT_FOUND', 'unknown KEM prekey');
          if (this.cfg.kem?.id !== k.kemId || k.kemId !== pm.initiation.kem.kemId) {
            throw new MalformedError('ERR_KEM_UNSUPPORTED', 'KEM not supported');
          }
          kem = { kem: this.cfg.kem, secretKey: k.secretKey };
        }
        const session = acceptSession({
          identity: local.identity,
          localRegistrationId: local.registrationId,
          message: pm,
          signedPreKey: spk.keyPair,
          oneTimePreKey: opk?.keyPair,
          kem,
          now,
        });
        const r = decryptSession(session, pm.message, now, this.limits, pm.prefix);
        const content = decodeContent(r.plaintext);
        if ((await this.cfg.identities.saveIdentity(sender, pm.identityKey)) === 'changed') {
          // The directory vouches for the new key: sessions with the old one are dead.
          rec = { ...rec, active: undefined, archived: [] };
          this.cfg.onIdentityChange?.(sender);
        }
        await this.cfg.sessions.storeDevice(sender, {
          ...archiveActive(rec, this.limits.maxArchivedSessions),
          active: r.session,
          floor: raiseFloor(rec.floor, session),
        });
        if (opkId !== undefined) await this.cfg.preKeys.removeOneTimePreKey(opkId);
        if (pm.initiation.kem !== undefined)
          await this.cfg.preKeys.removeKemPreKey(pm.initiation.kem.preKeyId);
        return content;
      }
      this.checkNotStale(stored, now);
      const msg = decodeRatchetMessage(bytes);
      const sessions = rec.active === undefined ? rec.archived : [rec.active, ...rec.archived];
      if (sessions.length === 0) {
        throw new StateError('ERR_NO_SESSION', 'no session with this device');
      }
      let firstError: unknown;
      for (let i = 0; i < sessions.length; i++) {
        const s = sessions[i];
        if (s === undefined) continue;
        let r: { session: SessionState; plaintext: Uint8Array };
        try {
          r = decryptSession(s, msg, now, this.limits);
        } catch (e) {
          firstError ??= e;
          // A replay in the active session is final: older sessions cannot hold its key.
          if (i === 0 && e instanceof StateError && e.code === 'ERR_DUPLICATE_MESSAGE') throw e;
          if (!(e instanceof MessagingError) || e instanceof MalformedError) throw e;
          continue;
        }
        if (
          sealedEntry !== undefined &&
          !equalBytes(s.ratchet.remoteIdentityKey, sealedEntry.identityKey)
        ) {
          throw new VerificationError(
            'ERR_SENDER_MISMATCH',
            'session identity differs from certificate',
          );
        }
        const content = decodeContent(r.plaintext);
        await this.cfg.sessions.storeDevice(sender, this.promote(rec, sessions, i, r.session));
        return content;
      }
      throw firstError;
    });
  }

  private promote(
    rec: DeviceRecord,
    sessions: readonly SessionState[],
    index: number,
    updated: SessionState,
  ): DeviceRecord {
    const others = sessions.filter((_, j) => j !== index);
    return {
      ...rec,
      active: updated,
      archived: others.slice(0, this.limits.maxArchivedSessions),
      floor: raiseFloor(rec.floor, updated),
    };
  }

  private async autoReset(
    sender: Address,
    failed: Uint8Array,
    now: number,
    error: unknown,
  ): Promise<void> {
    const send = this.cfg.sendResetRequest;
    if (send === undefined || !(error instanceof MessagingError) || !RESETTABLE.has(error.code))
      return;
    let request: Uint8Array;
    try {
      request = await this.createResetRequest(sender, failed, now);
    } catch (e) {
      if (e instanceof StateError && e.code === 'ERR_RESET_RATE_LIMITED') return;
      throw e;
    }
    await send(sender, request);
  }

  /**
   * Creates a signed reset request for a device whose messages fail to decrypt (rate-limited per
   * device). `failedMessage` lets the peer check that the request concerns its current session.
   * @throws StateError `ERR_RESET_RATE_LIMITED`
   */
  async createResetRequest(
    target: Address,
    failedMessage: Uint8Array | undefined,
    now: number,
  ): Promise<Uint8Array> {
    const local = await this.local();
    return this.mutex.run(addressKey(target), async () => {
      const rec = (await this.cfg.sessions.loadDevice(target)) ?? EMPTY_DEVICE_RECORD;
      if (
        rec.resetRequestedAt !== undefined &&
        now - rec.resetRequestedAt < this.limits.resetIntervalMs
      ) {
        throw new StateError('ERR_RESET_RATE_LIMITED', 'reset requested too recently');
      }
      const request = createResetRequest({
        identity: local.identity,
        requester: local.address,
        target,
        timestamp: now,
        ratchetKey: failedMessage === undefined ? undefined : ratchetKeyOf(failedMessage),
      });
      await this.cfg.sessions.storeDevice(target, { ...rec, resetRequestedAt: now });
      return request;
    });
  }

  /**
   * Handles a reset request from `sender`: verifies it against the directory, and archives the
   * current session so that the next send starts a fresh one. Returns whether it reset.
   * @throws VerificationError `ERR_RESET_INVALID`
   * @throws StateError `ERR_RESET_STALE` (replayed), `ERR_RESET_RATE_LIMITED`, `ERR_DEVICE_UNKNOWN`
   */
  async processResetRequest(sender: Address, bytes: Uint8Array, now: number): Promise<boolean> {
    const local = await this.local();
    const req = decodeResetRequest(bytes);
    if (!sameAddress(req.requester, sender) || !sameAddress(req.target, local.address)) {
      throw new VerificationError('ERR_RESET_INVALID', 'reset request for other devices');
    }
    const entry = (await this.deviceList(sender.account)).devices.find(
      (d) => d.device === sender.device,
    );
    if (entry === undefined) throw new StateError('ERR_DEVICE_UNKNOWN', 'device not in directory');
    verifyResetRequest(req, entry.identityKey);
    return this.mutex.run(addressKey(sender), async () => {
      const rec = (await this.cfg.sessions.loadDevice(sender)) ?? EMPTY_DEVICE_RECORD;
      if (req.timestamp <= rec.lastResetTimestamp) {
        throw new StateError('ERR_RESET_STALE', 'reset request replayed or out of date');
      }
      if (
        rec.resetAcceptedAt !== undefined &&
        now - rec.resetAcceptedAt < this.limits.resetIntervalMs
      ) {
        throw new StateError('ERR_RESET_RATE_LIMITED', 'reset honoured too recently');
      }
      const active = rec.active;
      const matches =
        active !== undefined &&
        (req.ratchetKey === undefined ||
          equalBytes(req.ratchetKey, active.ratchet.sendingKeyPair.publicKey));
      if (!matches) {
        await this.cfg.sessions.storeDevice(sender, { ...rec, lastResetTimestamp: req.timestamp });
        return false;
      }
      await this.cfg.sessions.storeDevice(sender, {
        ...archiveActive(rec, this.limits.maxArchivedSessions),
        resetAcceptedAt: now,
        lastResetTimestamp: req.timestamp,
      });
      return true;
    });
  }

  /** Seals any wire message for one device (for example a reset request). */
  async seal(
    to: Address,
    message: Uint8Array,
    certificate: SenderCertificate,
  ): Promise<OutgoingMessage> {
    const local = await this.local();
    const entry = (await this.deviceList(to.account)).devices.find((d) => d.device === to.device);
    if (entry === undefined) throw new StateError('ERR_DEVICE_UNKNOWN', 'device not in directory');
    const body = sealSender({
      sender: local.identity,
      certificate,
      recipientIdentityKey: entry.identityKey,
      content: message,
    });
    return { address: to, registrationId: entry.registrationId, kind: 'sealed', body };
  }

  /**
   * Sends to a group with Sender Keys: distributes this device's chain over pairwise sessions to
   * member devices that lack it, rotating first if a device that held it is no longer a member,
   * then encrypts and signs one group message.
   */
  async groupEncrypt(
    groupId: Uint8Array,
    memberAccounts: readonly string[],
    plaintext: Uint8Array,
    now: number,
    options: EncryptOptions = {},
  ): Promise<GroupSendResult> {
    const local = await this.local();
    const targets = await this.targets(memberAccounts, local, now);
    const keys = new Set(targets.map((t) => addressKey(t.address)));
    return this.mutex.run(`sk/${addressKey(local.address)}/${toHex(groupId)}`, async () => {
      let rec = await this.cfg.senderKeys.loadSenderKey(local.address, groupId);
      if (rec?.states[0]?.signingSeed === undefined || rec.sharedWith.some((k) => !keys.has(k))) {
        rec = rotateSenderKey(groupId);
      }
      const distributions: OutgoingMessage[] = [];
      const missing = targets.filter(
        (t) => !(rec?.sharedWith ?? []).includes(addressKey(t.address)),
      );
      if (missing.length > 0) {
        const skdm = encodeContent({
          kind: 'sender-key-distribution',
          body: encodeSenderKeyDistribution(senderKeyDistribution(rec)),
        });
        for (const t of missing)
          distributions.push(await this.encryptTo(t, skdm, local, now, options));
        rec = {
          ...rec,
          sharedWith: [...rec.sharedWith, ...missing.map((t) => addressKey(t.address))],
        };
      }
      const enc = groupEncrypt(rec, encodeContent({ kind: 'data', body: plaintext }));
      await this.cfg.senderKeys.storeSenderKey(local.address, groupId, enc.record);
      const cert = options.sealed;
      const messages = targets.map((t): OutgoingMessage => {
        if (cert === undefined) {
          return {
            address: t.address,
            registrationId: t.entry.registrationId,
            kind: 'group',
            body: enc.message,
          };
        }
        const body = sealSender({
          sender: local.identity,
          certificate: cert,
          recipientIdentityKey: t.entry.identityKey,
          content: enc.message,
        });
        return { address: t.address, registrationId: t.entry.registrationId, kind: 'sealed', body };
      });
      return { distributions, messages };
    });
  }

  private async decryptGroup(
    sender: Address,
    bytes: Uint8Array,
    now: number,
  ): Promise<{ groupId: Uint8Array; body: Uint8Array }> {
    const gm = decodeGroupMessage(bytes);
    this.checkNotStale(await this.cfg.sessions.loadDevice(sender), now);
    return this.mutex.run(`sk/${addressKey(sender)}/${toHex(gm.groupId)}`, async () => {
      const rec = await this.cfg.senderKeys.loadSenderKey(sender, gm.groupId);
      const r = groupDecrypt(rec, gm, now, this.limits);
      const content = decodeContent(r.plaintext);
      if (content.kind !== 'data')
        throw new MalformedError('ERR_UNEXPECTED_TYPE', 'group content kind');
      await this.cfg.senderKeys.storeSenderKey(sender, gm.groupId, r.record);
      return { groupId: gm.groupId, body: content.body };
    });
  }
}

function ratchetKeyOf(message: Uint8Array): Uint8Array | undefined {
  try {
    const type = peekWireType(message);
    const inner =
      type === WIRE_TYPE.preKeyMessage
        ? decodePreKeyMessage(message).message
        : decodeRatchetMessage(message);
    return inner.header?.ratchetKey;
  } catch {
    return undefined;
  }
}
