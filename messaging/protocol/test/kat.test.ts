/**
 * Known-answer tests from test/vectors/crypto.json (RFC 5869, RFC 7748, RFC 8032, the XChaCha
 * draft, libsignal's X3DH/chain-step/safety-number tests), run on both crypto providers.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { ed25519 } from '@noble/curves/ed25519.js';
import vectors from './vectors/crypto.json' with { type: 'json' };
import {
  canonicalizeX25519PublicKey,
  checkX25519PublicKey,
  deriveX3dhSecret,
  getCryptoProvider,
  hkdf,
  hkdfExpand,
  hkdfExtract,
  identityKeyPairFromSeed,
  kdfChainKey,
  kdfRootKey,
  open,
  safetyNumber,
  seal,
  utf8,
} from '../src/index.ts';
import { hchacha20 } from '../node-provider/node-crypto-provider.ts';
import { PROVIDERS, expectCodeSync, h, hx, withProvider } from './support/helpers.ts';

const dr = vectors.signal_double_ratchet;

describe.each(PROVIDERS)('known answers on the $name provider', ({ provider }) => {
  const run = (fn: () => void) => () => withProvider(provider, fn);

  it.each(vectors.hkdf_sha256)('$name', (v) =>
    withProvider(provider, () => {
      const prk = hkdfExtract(h(v.salt), h(v.ikm));
      expect(hx(prk)).toBe(v.prk);
      expect(hx(hkdfExpand(prk, h(v.info), v.L))).toBe(v.okm);
      expect(hx(hkdf(h(v.ikm), h(v.salt), h(v.info), v.L))).toBe(v.okm);
    }),
  );

  it(
    'RFC 7748 §5.2 scalar multiplication; the high-bit vector is rejected on the wire',
    run(() => {
      const [v1, v2] = vectors.x25519.scalar_mult;
      expect(hx(getCryptoProvider().x25519(h(v1!.scalar), h(v1!.u)))).toBe(v1!.output_u);
      // Vector 2's u has the top bit set: the raw function masks it (RFC 7748 §5) ...
      expect(hx(getCryptoProvider().x25519(h(v2!.scalar), h(v2!.u)))).toBe(v2!.output_u);
      // ... but Keytrail accepts only the canonical encoding, which gives the same result.
      expectCodeSync(() => checkX25519PublicKey(h(v2!.u)), 'ERR_KEY_NONCANONICAL');
      const canonical = canonicalizeX25519PublicKey(h(v2!.u));
      expect(checkX25519PublicKey(canonical)).toBe(canonical);
      expect(hx(getCryptoProvider().x25519(h(v2!.scalar), canonical))).toBe(v2!.output_u);
    }),
  );

  it(
    'RFC 7748 §5.2 iterated X25519: 1 and 1,000 iterations',
    run(() => {
      const it = vectors.x25519.iterated;
      let k = h(it.start_k);
      let u = h(it.start_k);
      for (let i = 1; i <= 1000; i++) {
        const next = getCryptoProvider().x25519(k, u);
        u = k;
        k = next;
        if (i === 1) expect(hx(k)).toBe(it.after_1);
      }
      expect(hx(k)).toBe(it.after_1000);
    }),
  );

  it(
    'RFC 7748 §6.1 Diffie-Hellman',
    run(() => {
      const v = vectors.x25519.diffie_hellman;
      const p = getCryptoProvider();
      expect(hx(p.x25519PublicKey(h(v.alice_private)))).toBe(v.alice_public);
      expect(hx(p.x25519PublicKey(h(v.bob_private)))).toBe(v.bob_public);
      expect(hx(p.x25519(h(v.alice_private), h(v.bob_public)))).toBe(v.shared);
      expect(hx(p.x25519(h(v.bob_private), h(v.alice_public)))).toBe(v.shared);
    }),
  );

  it.each(vectors.ed25519)('$name: sign, strict verify, one-bit changes fail', (v) =>
    withProvider(provider, () => {
      const p = getCryptoProvider();
      expect(hx(p.ed25519PublicKey(h(v.secret_key)))).toBe(v.public_key);
      const sig = p.ed25519Sign(h(v.secret_key), h(v.message));
      expect(hx(sig)).toBe(v.signature);
      expect(p.ed25519Verify(sig, h(v.message), h(v.public_key))).toBe(true);
      for (const bit of [0, 100, 255, 256, 511]) {
        const bad = sig.slice();
        bad[bit >> 3]! ^= 1 << (bit & 7);
        expect(p.ed25519Verify(bad, h(v.message), h(v.public_key))).toBe(false);
      }
    }),
  );

  it(
    'Ed25519 → X25519 identity key conversion (noble toMontgomery KAT)',
    run(() => {
      const v = vectors.ed25519_to_x25519;
      const id = identityKeyPairFromSeed(h(v.ed25519_secret));
      expect(hx(id.dhPrivateKey)).toBe(v.x25519_secret);
      expect(hx(id.dhPublicKey)).toBe(v.x25519_public);
      expect(hx(getCryptoProvider().x25519PublicKey(id.dhPrivateKey))).toBe(v.x25519_public);
    }),
  );

  it.each(vectors.xchacha20poly1305)('$name (seal and open)', (v) =>
    withProvider(provider, () => {
      const sealed = seal(h(v.key), h(v.nonce), h(v.plaintext), h(v.aad));
      expect(hx(sealed)).toBe(v.ciphertext + v.tag);
      expect(hx(open(h(v.key), h(v.nonce), sealed, h(v.aad)))).toBe(v.plaintext);
      const bad = sealed.slice();
      bad[0]! ^= 1;
      expectCodeSync(() => open(h(v.key), h(v.nonce), bad, h(v.aad)), 'ERR_DECRYPTION_FAILED');
    }),
  );

  it(
    "Signal X3DH → root and chain key (libsignal test_ratcheting_session_as_bob, info 'WhisperText')",
    run(() => {
      const v = dr.x3dh_session_init_no_opk;
      const raw = (k: string) => h(k).subarray(1); // strip libsignal's 0x05 type byte
      const p = getCryptoProvider();
      const dh1 = p.x25519(h(v.alice_identity_private), raw(v.bob_signed_prekey_public));
      const dh2 = p.x25519(h(v.alice_base_private), raw(v.bob_identity_public));
      const dh3 = p.x25519(h(v.alice_base_private), raw(v.bob_signed_prekey_public));
      // Bob computes the same three values from his side.
      expect(hx(p.x25519(h(v.bob_signed_prekey_private), raw(v.alice_identity_public)))).toBe(
        hx(dh1),
      );
      expect(hx(p.x25519(h(v.bob_identity_private), raw(v.alice_base_public)))).toBe(hx(dh2));
      const okm = deriveX3dhSecret([dh1, dh2, dh3], undefined, utf8('WhisperText'), 64);
      expect(hx(okm.subarray(0, 32))).toBe(v.derived.root_key);
      expect(hx(okm.subarray(32))).toBe(v.expected_chain_key);
    }),
  );

  it(
    'Signal chain step: KDF_CK and the WhisperMessageKeys expansion (libsignal test_chain_key_derivation)',
    run(() => {
      const v = dr.chain_key_step;
      const { chainKey, messageKey } = kdfChainKey(h(v.chain_key));
      expect(hx(messageKey)).toBe(v.derived.message_key_seed);
      expect(hx(chainKey)).toBe(v.next_chain_key);
      const keys = hkdf(messageKey, new Uint8Array(0), utf8('WhisperMessageKeys'), 80);
      expect(hx(keys.subarray(0, 32))).toBe(v.cipher_key);
      expect(hx(keys.subarray(32, 64))).toBe(v.mac_key);
      expect(hx(keys.subarray(64))).toBe(v.derived.iv);
    }),
  );

  it(
    'KDF_RK is RFC 5869 HKDF, not the legacy HKDFv2 (libsignal-protocol-java RootKeyTest)',
    run(() => {
      const v = dr.root_key_step_legacy_hkdf_v2;
      const dh = getCryptoProvider().x25519(h(v.alice_private), h(v.bob_public).subarray(1));
      expect(hx(dh)).toBe(v.derived_rfc5869.dh);
      const okm = hkdf(dh, h(v.root_key_seed), utf8('WhisperRatchet'), 64);
      expect(hx(okm.subarray(0, 32))).toBe(v.derived_rfc5869.next_root_key);
      expect(hx(okm.subarray(32))).toBe(v.derived_rfc5869.next_chain_key);
      expect(hx(okm.subarray(0, 32))).not.toBe(v.next_root_key);
      // Keytrail's own KDF_RK is the same construction under its own label.
      const kt = kdfRootKey(h(v.root_key_seed), dh, false);
      expect(hx(kt.rootKey)).toBe(
        hx(hkdf(dh, h(v.root_key_seed), utf8('Keytrail_Ratchet_v1'), 64).subarray(0, 32)),
      );
    }),
  );

  it(
    'HChaCha20 (draft §2.2.1) through the node provider construction',
    run(() => {
      const v = vectors.hchacha20;
      expect(hx(hchacha20(h(v.key), h(v.nonce16)))).toBe(v.subkey);
    }),
  );
});

describe('safety numbers', () => {
  it('Signal fingerprint v1 displayable (libsignal fingerprint_test_v1)', () => {
    const v = vectors.signal_safety_number;
    const a = { stableId: v.alice_stable_id, key: h(v.alice_identity) };
    const b = { stableId: v.bob_stable_id, key: h(v.bob_identity) };
    expect(safetyNumber(a, b, v.iterations)).toBe(v.displayable);
    expect(safetyNumber(b, a, v.iterations)).toBe(v.displayable);
    expect(safetyNumber(a, { ...b, key: h(v.alice_identity) }, v.iterations)).not.toBe(
      v.displayable,
    );
  });

  it('the vector public key is on the curve (sanity of the copied data)', () => {
    expect(() => ed25519.Point.fromBytes(h(vectors.ed25519[0]!.public_key))).not.toThrow();
  });
});
