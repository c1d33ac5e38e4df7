/**
 * A stand-in KEM for tests of the PQXDH slot: DHKEM over X25519 (RFC 9180 §4.1 without its
 * labelled KDF). It is not post-quantum; it exercises the framing, the KDF input and the prekey
 * handling exactly as ML-KEM would.
 * @module
 */
import { type Kem, generateKeyPair, getCryptoProvider } from '../../src/index.ts';

/** The test KEM (registry id 0xff01, private use). */
export const TEST_KEM: Kem = {
  id: 0xff01,
  name: 'TEST-DHKEM-X25519',
  generateKeyPair() {
    const kp = generateKeyPair();
    return { publicKey: kp.publicKey, secretKey: kp.privateKey };
  },
  encapsulate(publicKey) {
    const e = generateKeyPair();
    return {
      ciphertext: e.publicKey,
      sharedSecret: getCryptoProvider().x25519(e.privateKey, publicKey),
    };
  },
  decapsulate(secretKey, ciphertext) {
    return getCryptoProvider().x25519(secretKey, ciphertext);
  },
};
