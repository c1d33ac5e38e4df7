/**
 * The `@signalapp/libsignal-client` side of the messaging benchmark: two parties with in-memory
 * stores (records kept as objects, as Signal-Desktop's cache does), a PQXDH session (libsignal
 * requires a Kyber prekey), and the same steady conversation as Keytrail's side
 * (`signalEncrypt` / `signalDecrypt`, the SessionCipher API).
 * @module
 */
import * as S from '@signalapp/libsignal-client';

class SessionStore extends S.SessionStore {
  private readonly m = new Map<string, S.SessionRecord>();
  saveSession(a: S.ProtocolAddress, r: S.SessionRecord): Promise<void> {
    this.m.set(a.toString(), r);
    return Promise.resolve();
  }
  getSession(a: S.ProtocolAddress): Promise<S.SessionRecord | null> {
    return Promise.resolve(this.m.get(a.toString()) ?? null);
  }
  getExistingSessions(as: S.ProtocolAddress[]): Promise<S.SessionRecord[]> {
    return Promise.resolve(as.flatMap((a) => this.m.get(a.toString()) ?? []));
  }
}

class IdentityStore extends S.IdentityKeyStore {
  private readonly m = new Map<string, S.PublicKey>();
  private readonly key: S.PrivateKey;
  private readonly reg: number;
  constructor(key: S.PrivateKey, reg: number) {
    super();
    this.key = key;
    this.reg = reg;
  }
  getIdentityKey(): Promise<S.PrivateKey> {
    return Promise.resolve(this.key);
  }
  getLocalRegistrationId(): Promise<number> {
    return Promise.resolve(this.reg);
  }
  saveIdentity(a: S.ProtocolAddress, k: S.PublicKey): Promise<S.IdentityChange> {
    this.m.set(a.toString(), k);
    return Promise.resolve(S.IdentityChange.NewOrUnchanged);
  }
  isTrustedIdentity(): Promise<boolean> {
    return Promise.resolve(true);
  }
  getIdentity(a: S.ProtocolAddress): Promise<S.PublicKey | null> {
    return Promise.resolve(this.m.get(a.toString()) ?? null);
  }
}

class PreKeys extends S.PreKeyStore {
  readonly m = new Map<number, S.PreKeyRecord>();
  savePreKey(i: number, r: S.PreKeyRecord): Promise<void> {
    this.m.set(i, r);
    return Promise.resolve();
  }
  getPreKey(i: number): Promise<S.PreKeyRecord> {
    const r = this.m.get(i);
    return r === undefined ? Promise.reject(new Error('no prekey')) : Promise.resolve(r);
  }
  removePreKey(i: number): Promise<void> {
    this.m.delete(i);
    return Promise.resolve();
  }
}

class SignedPreKeys extends S.SignedPreKeyStore {
  readonly m = new Map<number, S.SignedPreKeyRecord>();
  saveSignedPreKey(i: number, r: S.SignedPreKeyRecord): Promise<void> {
    this.m.set(i, r);
    return Promise.resolve();
  }
  getSignedPreKey(i: number): Promise<S.SignedPreKeyRecord> {
    const r = this.m.get(i);
    return r === undefined ? Promise.reject(new Error('no signed prekey')) : Promise.resolve(r);
  }
}

class KyberPreKeys extends S.KyberPreKeyStore {
  readonly m = new Map<number, S.KyberPreKeyRecord>();
  saveKyberPreKey(i: number, r: S.KyberPreKeyRecord): Promise<void> {
    this.m.set(i, r);
    return Promise.resolve();
  }
  getKyberPreKey(i: number): Promise<S.KyberPreKeyRecord> {
    const r = this.m.get(i);
    return r === undefined ? Promise.reject(new Error('no kyber prekey')) : Promise.resolve(r);
  }
  markKyberPreKeyUsed(): Promise<void> {
    return Promise.resolve();
  }
}

const PREKEY_TYPE: number = S.CiphertextMessageType.PreKey;

interface Party {
  readonly address: S.ProtocolAddress;
  readonly sessions: SessionStore;
  readonly identity: IdentityStore;
  readonly preKeys: PreKeys;
  readonly signed: SignedPreKeys;
  readonly kyber: KyberPreKeys;
}

function party(name: string, reg: number, key: S.PrivateKey): Party {
  return {
    address: S.ProtocolAddress.new(name, 1),
    sessions: new SessionStore(),
    identity: new IdentityStore(key, reg),
    preKeys: new PreKeys(),
    signed: new SignedPreKeys(),
    kyber: new KyberPreKeys(),
  };
}

/** A libsignal conversation between two parties with an established session. */
export interface LibsignalConversation {
  /** Encrypts in one party and decrypts in the other; returns the plaintext. */
  send(fromAlice: boolean, plaintext: Uint8Array<ArrayBuffer>): Promise<Uint8Array>;
}

/** Sets up Alice and Bob and exchanges one message each way. */
export async function libsignalConversation(): Promise<LibsignalConversation> {
  const aliceKey = S.PrivateKey.generate();
  const bobKey = S.PrivateKey.generate();
  const alice = party('alice', 1, aliceKey);
  const bob = party('bob', 2, bobKey);
  const spk = S.PrivateKey.generate();
  const spkSig = bobKey.sign(spk.getPublicKey().serialize());
  await bob.signed.saveSignedPreKey(
    1,
    S.SignedPreKeyRecord.new(1, Date.now(), spk.getPublicKey(), spk, spkSig),
  );
  const opk = S.PrivateKey.generate();
  await bob.preKeys.savePreKey(1, S.PreKeyRecord.new(1, opk.getPublicKey(), opk));
  const kem = S.KEMKeyPair.generate();
  const kemSig = bobKey.sign(kem.getPublicKey().serialize());
  await bob.kyber.saveKyberPreKey(1, S.KyberPreKeyRecord.new(1, Date.now(), kem, kemSig));
  const bundle = S.PreKeyBundle.new(
    2,
    1,
    1,
    opk.getPublicKey(),
    1,
    spk.getPublicKey(),
    spkSig,
    bobKey.getPublicKey(),
    1,
    kem.getPublicKey(),
    kemSig,
  );
  await S.processPreKeyBundle(bundle, bob.address, alice.address, alice.sessions, alice.identity);
  const send = async (fromAlice: boolean, pt: Uint8Array<ArrayBuffer>): Promise<Uint8Array> => {
    const [from, to] = fromAlice ? [alice, bob] : [bob, alice];
    const c = await S.signalEncrypt(pt, to.address, from.address, from.sessions, from.identity);
    const wire = c.serialize();
    if (c.type() === PREKEY_TYPE) {
      return S.signalDecryptPreKey(
        S.PreKeySignalMessage.deserialize(wire),
        from.address,
        to.address,
        to.sessions,
        to.identity,
        to.preKeys,
        to.signed,
        to.kyber,
      );
    }
    return S.signalDecrypt(
      S.SignalMessage.deserialize(wire),
      from.address,
      to.address,
      to.sessions,
      to.identity,
    );
  };
  await send(true, new Uint8Array(8));
  await send(false, new Uint8Array(8));
  return { send };
}
