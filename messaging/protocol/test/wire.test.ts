/**
 * Strict decoding of every wire format (truncation, trailing bytes, version and type bytes, size
 * limits, round trips) and key validation (low-order, high-bit, non-canonical and torsioned
 * X25519 keys; small-order and torsioned Ed25519 keys; strict signatures on both providers).
 * @module
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  type CryptoProvider,
  MalformedError,
  MessagingError,
  NOBLE_PROVIDER,
  canonicalizeX25519PublicKey,
  checkIdentityKey,
  checkX25519PrimeOrder,
  checkX25519PublicKey,
  createResetRequest,
  createSenderCertificate,
  decodeAttachmentPointer,
  decodeContent,
  decodeDeviceRecord,
  decodeGroupMessage,
  decodePreKeyBundle,
  decodePreKeyMessage,
  decodeRatchetMessage,
  decodeResetRequest,
  decodeSenderCertificate,
  decodeSenderKeyDistribution,
  decodeSenderKeyRecord,
  encodeAttachmentPointer,
  encodeContent,
  encodeDeviceRecord,
  encodeSenderKeyDistribution,
  encodeSenderKeyRecord,
  EMPTY_DEVICE_RECORD,
  generateIdentityKeyPair,
  generateKeyPair,
  groupEncrypt,
  openSealedSender,
  rotateSenderKey,
  sealSender,
  senderKeyDistribution,
  setCryptoProvider,
  utf8,
} from '../src/index.ts';
import { NODE_PROVIDER, expectCode, expectCodeSync, h } from './support/helpers.ts';
import { dh } from '../src/keys.ts';
import { makePair, send } from './support/pair.ts';
import { World } from './support/world.ts';

let prev: CryptoProvider;
beforeAll(() => {
  prev = setCryptoProvider(NODE_PROVIDER);
});
afterAll(() => {
  setCryptoProvider(prev);
});

const P = 2n ** 255n - 19n;
const le = (n: bigint): Uint8Array => {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
};
const fromLe = (b: Uint8Array): bigint => b.reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n);
const inv = (x: bigint): bigint => {
  let r = 1n;
  let b = x % P;
  let e = P - 2n;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return r;
};

/** u(P + T2) for the order-2 point T2 = (0, −1): u ↦ 1/u; same X25519 outputs, other bytes. */
function torsioned(u: Uint8Array): Uint8Array {
  return le(inv(fromLe(u)));
}

interface WireCase {
  readonly name: string;
  readonly bytes: () => Uint8Array;
  readonly decode: (b: Uint8Array) => unknown;
  /** Whether appending a byte is caught as trailing data (false when the last field is a length-prefixed body whose length then disagrees). */
  readonly trailing?: boolean;
}

async function cases(): Promise<WireCase[]> {
  const w = new World();
  const a = w.addDevice('alice', 1);
  const b = w.addDevice('bob', 1);
  const pair = makePair();
  const he = makePair({ headerEncryption: true });
  const cert = createSenderCertificate(a.local.identity, a.address, 10 ** 13);
  const own = rotateSenderKey(utf8('g'));
  const bundle = await w.fetchBundle(b.address);
  const prekey = (await a.manager.encrypt('bob', utf8('x'), 0)).find(
    (m) => m.address.account === 'bob',
  )!.body;
  return [
    { name: 'prekey bundle', bytes: () => bundle, decode: decodePreKeyBundle },
    // The inner message is length-prefixed last: an extra byte makes that length disagree.
    { name: 'prekey message', bytes: () => prekey, decode: decodePreKeyMessage },
    { name: 'ratchet message', bytes: () => send(pair, true, 'x'), decode: decodeRatchetMessage },
    {
      name: 'ratchet message, encrypted header',
      bytes: () => send(he, true, 'x'),
      decode: decodeRatchetMessage,
    },
    {
      name: 'reset request',
      bytes: () =>
        createResetRequest({
          identity: a.local.identity,
          requester: a.address,
          target: b.address,
          timestamp: 5,
          ratchetKey: generateKeyPair().publicKey,
        }),
      decode: decodeResetRequest,
    },
    {
      name: 'sender certificate',
      bytes: () => cert.encoded,
      decode: (x) => decodeSenderCertificate(x, 0),
    },
    {
      name: 'sealed sender envelope',
      bytes: () =>
        sealSender({
          sender: a.local.identity,
          certificate: cert,
          recipientIdentityKey: b.local.identity.publicKey,
          content: utf8('x'),
        }),
      decode: (x) => openSealedSender(x, b.local.identity, 0),
    },
    {
      name: 'group message',
      bytes: () => groupEncrypt(own, utf8('x')).message,
      decode: decodeGroupMessage,
    },
    {
      name: 'sender-key distribution',
      bytes: () => encodeSenderKeyDistribution(senderKeyDistribution(own)),
      decode: decodeSenderKeyDistribution,
    },
    // Padding follows the body: an extra byte is a padding error.
    {
      name: 'content',
      bytes: () => encodeContent({ kind: 'data', body: utf8('hello') }),
      decode: decodeContent,
      trailing: false,
    },
    {
      name: 'attachment pointer',
      bytes: () =>
        encodeAttachmentPointer({
          key: new Uint8Array(32),
          digest: new Uint8Array(32),
          plaintextSize: 0,
          ciphertextSize: 35,
        }),
      decode: decodeAttachmentPointer,
    },
    {
      name: 'device record',
      bytes: () =>
        encodeDeviceRecord({ ...EMPTY_DEVICE_RECORD, active: pair.alice, archived: [he.bob] }),
      decode: decodeDeviceRecord,
    },
    {
      name: 'sender-key record',
      bytes: () => encodeSenderKeyRecord(own),
      decode: decodeSenderKeyRecord,
    },
  ];
}

describe('strict decoding of every wire format', () => {
  let all: WireCase[] = [];
  beforeAll(async () => {
    all = await cases();
  });

  it('round-trips and rejects every truncation, a changed version or type, and trailing bytes', () => {
    expect(all.length).toBe(13);
    for (const c of all) {
      const bytes = c.bytes();
      expect(bytes.length, c.name).toBeGreaterThan(2);
      expect(() => c.decode(bytes), c.name).not.toThrow();
      for (let n = 0; n < bytes.length; n++) {
        expect(() => c.decode(bytes.subarray(0, n)), `${c.name} cut at ${n}`).toThrow(
          MalformedError,
        );
      }
      const v = bytes.slice();
      v[0] = 2;
      expectCodeSync(() => c.decode(v), 'ERR_UNSUPPORTED_VERSION');
      const t = bytes.slice();
      t[1] = 0x7f;
      expectCodeSync(() => c.decode(t), 'ERR_UNEXPECTED_TYPE');
      const more = new Uint8Array(bytes.length + 1);
      more.set(bytes);
      if (c.trailing === false) expect(() => c.decode(more), c.name).toThrow(MalformedError);
      else {
        let code = '';
        try {
          c.decode(more);
        } catch (e) {
          code = e instanceof MessagingError ? e.code : String(e);
        }
        expect(code, c.name).toBe('ERR_ENCODING_TRAILING_BYTES');
      }
    }
  });

  it('refuses objects above their size limits before parsing', () => {
    expectCodeSync(
      () => decodeRatchetMessage(new Uint8Array(300 * 1024)),
      'ERR_ENCODING_TOO_LARGE',
    );
    expectCodeSync(() => decodePreKeyBundle(new Uint8Array(10_000)), 'ERR_ENCODING_TOO_LARGE');
    expectCodeSync(() => decodeContent(new Uint8Array(200 * 1024)), 'ERR_ENCODING_TOO_LARGE');
    // A length prefix larger than the field's limit.
    const m = send(makePair(), true, 'x');
    const big = m.slice();
    new DataView(big.buffer).setUint32(42, 0xffffffff);
    expectCodeSync(() => decodeRatchetMessage(big), 'ERR_ENCODING_TOO_LARGE');
  });

  it('content padding is canonical', () => {
    const c = encodeContent({ kind: 'data', body: utf8('pad me') });
    expect(c.length % 64).toBe(0);
    const nz = c.slice();
    nz[c.length - 1] = 1;
    expectCodeSync(() => decodeContent(nz), 'ERR_PADDING_INVALID');
    const extra = new Uint8Array(c.length + 64);
    extra.set(c);
    expectCodeSync(() => decodeContent(extra), 'ERR_PADDING_INVALID');
    const kind = c.slice();
    kind[2] = 9;
    expectCodeSync(() => decodeContent(kind), 'ERR_UNEXPECTED_TYPE');
  });

  it('arbitrary bytes never escape as untyped errors (fuzz)', () => {
    const decoders = [
      decodePreKeyBundle,
      decodePreKeyMessage,
      decodeRatchetMessage,
      decodeResetRequest,
      decodeGroupMessage,
      decodeSenderKeyDistribution,
      decodeContent,
      decodeAttachmentPointer,
      decodeDeviceRecord,
      decodeSenderKeyRecord,
    ];
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.nat({ max: 12 }),
        fc.boolean(),
        (bytes, type, valid) => {
          const b = bytes.slice();
          if (valid && b.length >= 2) {
            b[0] = 1;
            b[1] = type;
          }
          for (const d of decoders) {
            try {
              d(b);
            } catch (e) {
              expect(e).toBeInstanceOf(MessagingError);
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('key validation', () => {
  const LOW_ORDER = [
    '0000000000000000000000000000000000000000000000000000000000000000',
    '0100000000000000000000000000000000000000000000000000000000000000',
    'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
    '5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157',
    'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  ];

  it.each(LOW_ORDER)('rejects the low-order X25519 point %s', (hex) => {
    expectCodeSync(() => checkX25519PublicKey(h(hex)), 'ERR_KEY_LOW_ORDER');
    // The provider would give an all-zero secret (or throw) for it.
    const k = generateKeyPair().privateKey;
    let out: Uint8Array | undefined;
    try {
      out = NOBLE_PROVIDER.x25519(k, h(hex));
    } catch {
      out = undefined;
    }
    expect(out === undefined || out.every((x) => x === 0)).toBe(true);
  });

  it('dh() refuses an all-zero shared secret on both providers', async () => {
    for (const provider of [NOBLE_PROVIDER, NODE_PROVIDER]) {
      const prevP = setCryptoProvider(provider);
      try {
        for (const hex of LOW_ORDER)
          expectCodeSync(() => dh(generateKeyPair().privateKey, h(hex)), 'ERR_KEY_LOW_ORDER');
      } finally {
        setCryptoProvider(prevP);
      }
    }
    await Promise.resolve();
  });

  it('rejects high-bit and unreduced encodings; canonicalisation maps them to the same key', () => {
    const k = generateKeyPair().publicKey;
    const high = k.slice();
    high[31]! |= 0x80;
    expectCodeSync(() => checkX25519PublicKey(high), 'ERR_KEY_NONCANONICAL');
    expect(canonicalizeX25519PublicKey(high)).toEqual(k);
    const unreduced = le(P + 9n);
    expectCodeSync(() => checkX25519PublicKey(unreduced), 'ERR_KEY_NONCANONICAL');
    expect(canonicalizeX25519PublicKey(unreduced)).toEqual(le(9n));
    expectCodeSync(() => checkX25519PublicKey(new Uint8Array(31)), 'ERR_KEY_INVALID');
    // u = p + 1 reduces to the low-order point 1.
    expectCodeSync(
      () => checkX25519PublicKey(canonicalizeX25519PublicKey(le(P + 1n))),
      'ERR_KEY_LOW_ORDER',
    );
  });

  it('a torsioned base key has the same X25519 outputs but is refused', () => {
    const e = generateKeyPair();
    const t = torsioned(e.publicKey);
    const k = generateKeyPair();
    expect(NOBLE_PROVIDER.x25519(k.privateKey, t)).toEqual(
      NOBLE_PROVIDER.x25519(k.privateKey, e.publicKey),
    );
    expect(checkX25519PublicKey(t)).toBe(t);
    expect(checkX25519PrimeOrder(e.publicKey)).toBe(e.publicKey);
    expectCodeSync(() => checkX25519PrimeOrder(t), 'ERR_KEY_LOW_ORDER');
    // A point on the twist is not on the curve at all.
    expectCodeSync(() => checkX25519PrimeOrder(le(2n)), 'ERR_KEY_INVALID');
  });

  it('Bob refuses a prekey message whose base key is torsioned (libsignal test_bob_rejects_torsioned_basekey)', async () => {
    const w = new World();
    const a = w.addDevice('alice', 1);
    const b = w.addDevice('bob', 1);
    const [m] = await a.manager.encrypt('bob', utf8('x'), 0);
    const pm = decodePreKeyMessage(m!.body);
    const off = m!.body.indexOf(pm.initiation.baseKey[0]!, 10);
    expect(m!.body.subarray(off, off + 32)).toEqual(pm.initiation.baseKey);
    const bad = m!.body.slice();
    bad.set(torsioned(pm.initiation.baseKey), off);
    await expectCode(() => b.manager.receive(bad, 0, { sender: a.address }), 'ERR_KEY_LOW_ORDER');
    // The high-bit variant is refused at decoding.
    const high = m!.body.slice();
    high[off + 31]! |= 0x80;
    await expectCode(
      () => b.manager.receive(high, 0, { sender: a.address }),
      'ERR_KEY_NONCANONICAL',
    );
    // The untouched message is fine.
    expect((await b.manager.receive(m!.body, 0, { sender: a.address })).kind).toBe('data');
  });

  it('identity keys must be canonical, of large order and torsion-free', () => {
    expect(checkIdentityKey(generateIdentityKeyPair().publicKey)).toBeDefined();
    // The identity point and the order-2 point.
    expectCodeSync(
      () => checkIdentityKey(h('0100000000000000000000000000000000000000000000000000000000000000')),
      'ERR_KEY_LOW_ORDER',
    );
    expectCodeSync(
      () => checkIdentityKey(h('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')),
      'ERR_KEY_LOW_ORDER',
    );
    // A valid key plus the order-2 point: mixed order.
    const pub = ed25519.Point.fromBytes(generateIdentityKeyPair().publicKey);
    const t2 = ed25519.Point.fromBytes(
      h('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'),
    );
    expectCodeSync(() => checkIdentityKey(pub.add(t2).toBytes()), 'ERR_KEY_LOW_ORDER');
    // y = p (non-canonical) and a y with no x.
    expectCodeSync(() => checkIdentityKey(le(P)), 'ERR_KEY_INVALID');
    expectCodeSync(() => checkIdentityKey(le(2n)), 'ERR_KEY_INVALID');
  });
});

describe('strict Ed25519 on both providers', () => {
  const L = 2n ** 252n + 27742317777372353535851937790883648493n;

  it('refuses S ≥ L (malleated signature) and non-canonical R', () => {
    const id = generateIdentityKeyPair();
    const msg = utf8('strict');
    const sig = NOBLE_PROVIDER.ed25519Sign(id.seed, msg);
    const s = fromLe(sig.subarray(32));
    const malleated = sig.slice();
    malleated.set(le(s + L), 32);
    const nonCanonicalR = sig.slice();
    nonCanonicalR.set(le((fromLe(sig.subarray(0, 32)) & ((1n << 255n) - 1n)) | (P + 1n)), 0);
    for (const p of [NOBLE_PROVIDER, NODE_PROVIDER]) {
      expect(p.ed25519Verify(sig, msg, id.publicKey), p.name).toBe(true);
      expect(p.ed25519Verify(malleated, msg, id.publicKey), p.name).toBe(false);
      expect(p.ed25519Verify(nonCanonicalR, msg, id.publicKey), p.name).toBe(false);
      expect(p.ed25519Verify(sig.subarray(0, 63), msg, id.publicKey), p.name).toBe(false);
    }
  });

  it('node and noble agree on random and mutated signatures (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ maxLength: 64 }),
        fc.nat({ max: 63 }),
        fc.integer({ min: 0, max: 255 }),
        (seed, msg, pos, x) => {
          const pub = NOBLE_PROVIDER.ed25519PublicKey(seed);
          expect(NODE_PROVIDER.ed25519PublicKey(seed)).toEqual(pub);
          const sig = NODE_PROVIDER.ed25519Sign(seed, msg);
          expect(sig).toEqual(NOBLE_PROVIDER.ed25519Sign(seed, msg));
          const bad = sig.slice();
          bad[pos]! ^= x;
          expect(NODE_PROVIDER.ed25519Verify(bad, msg, pub)).toBe(
            NOBLE_PROVIDER.ed25519Verify(bad, msg, pub),
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  it('node and noble agree on X25519, HMAC, SHA-256 and XChaCha20-Poly1305 (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 24, maxLength: 24 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 40 }),
        (k, n, pt, ad) => {
          const pub = NOBLE_PROVIDER.x25519PublicKey(generateKeyPair().privateKey);
          expect(NODE_PROVIDER.x25519PublicKey(k)).toEqual(NOBLE_PROVIDER.x25519PublicKey(k));
          expect(NODE_PROVIDER.x25519(k, pub)).toEqual(NOBLE_PROVIDER.x25519(k, pub));
          expect(NODE_PROVIDER.hmacSha256(k, pt)).toEqual(NOBLE_PROVIDER.hmacSha256(k, pt));
          expect(NODE_PROVIDER.sha256(pt)).toEqual(NOBLE_PROVIDER.sha256(pt));
          const sealed = NODE_PROVIDER.xchacha20poly1305Seal(k, n, pt, ad);
          expect(sealed).toEqual(NOBLE_PROVIDER.xchacha20poly1305Seal(k, n, pt, ad));
          expect(NOBLE_PROVIDER.xchacha20poly1305Open(k, n, sealed, ad)).toEqual(pt);
          const bad = sealed.slice();
          bad[0]! ^= 1;
          expect(NODE_PROVIDER.xchacha20poly1305Open(k, n, bad, ad)).toBeUndefined();
        },
      ),
      { numRuns: 100 },
    );
  });
});
