/**
 * Two directly connected sessions (no manager): Alice initiates from Bob's bundle, Bob accepts
 * her first message and replies once, so both sides hold sending and receiving chains.
 * @module
 */
import {
  type IdentityKeyPair,
  type RatchetLimits,
  type SessionFeatures,
  type SessionState,
  acceptSession,
  createOneTimePreKeys,
  createSignedPreKey,
  decodePreKeyMessage,
  decodeRatchetMessage,
  decryptSession,
  encodeDeviceRecord,
  EMPTY_DEVICE_RECORD,
  encryptSession,
  generateIdentityKeyPair,
  initiateSession,
  utf8,
} from '../../src/index.ts';

/** A two-party conversation with its current states. */
export interface Pair {
  alice: SessionState;
  bob: SessionState;
  readonly aliceId: IdentityKeyPair;
  readonly bobId: IdentityKeyPair;
}

/** Establishes a pair with one message each way. */
export function makePair(features: SessionFeatures = { headerEncryption: false }): Pair {
  const aliceId = generateIdentityKeyPair();
  const bobId = generateIdentityKeyPair();
  const spk = createSignedPreKey(bobId, 1, 0);
  const [opk] = createOneTimePreKeys(10, 1);
  if (opk === undefined) throw new Error('no opk');
  let alice = initiateSession({
    identity: aliceId,
    localRegistrationId: 1,
    bundle: {
      address: { account: 'bob', device: 1 },
      registrationId: 2,
      identityKey: bobId.publicKey,
      signedPreKey: { id: 1, publicKey: spk.keyPair.publicKey, signature: spk.signature },
      oneTimePreKey: { id: opk.id, publicKey: opk.keyPair.publicKey },
      kemPreKey: undefined,
    },
    features,
    now: 0,
  });
  const first = encryptSession(alice, utf8('hello bob'));
  alice = first.session;
  const pm = decodePreKeyMessage(first.message);
  let bob = acceptSession({
    identity: bobId,
    localRegistrationId: 2,
    message: pm,
    signedPreKey: spk.keyPair,
    oneTimePreKey: opk.keyPair,
    now: 0,
  });
  bob = decryptSession(bob, pm.message, 0, undefined, pm.prefix).session;
  const reply = encryptSession(bob, utf8('hello alice'));
  bob = reply.session;
  alice = decryptSession(alice, decodeRatchetMessage(reply.message), 0).session;
  return { alice, bob, aliceId, bobId };
}

/** Encrypts from one side; returns the wire bytes. */
export function send(p: Pair, fromAlice: boolean, text: string): Uint8Array {
  const r = encryptSession(fromAlice ? p.alice : p.bob, utf8(text));
  if (fromAlice) p.alice = r.session;
  else p.bob = r.session;
  return r.message;
}

/** Decrypts on one side; commits the new state only on success; returns the text. */
export function receive(
  p: Pair,
  atAlice: boolean,
  bytes: Uint8Array,
  now = 0,
  limits?: RatchetLimits,
): string {
  const r = decryptSession(atAlice ? p.alice : p.bob, decodeRatchetMessage(bytes), now, limits);
  if (atAlice) p.alice = r.session;
  else p.bob = r.session;
  return new TextDecoder().decode(r.plaintext);
}

/** A canonical byte snapshot of a session (to prove a failure changed nothing). */
export function snapshot(s: SessionState): string {
  return Buffer.from(encodeDeviceRecord({ ...EMPTY_DEVICE_RECORD, active: s })).toString('hex');
}
