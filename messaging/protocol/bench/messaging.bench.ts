/**
 * Messaging benchmark (issue 7): messages encrypted and decrypted per second in a steady
 * conversation, Keytrail's SessionManager (node:crypto provider) against
 * `@signalapp/libsignal-client` (signalEncrypt / signalDecrypt with in-memory stores) in the same
 * run; attachment throughput against the raw XChaCha20-Poly1305 rate of the same provider.
 * @module
 */
import { fmt, opsPerSecondAsync, report, type Bench } from '../../../scripts/bench-util.ts';
import { setCryptoProvider, utf8 } from '../src/index.ts';
import { createNodeCryptoProvider } from '../node-provider/node-crypto-provider.ts';
import { World } from '../test/support/world.ts';
import { libsignalConversation } from './libsignal-peer.ts';

async function keytrailConversation(): Promise<
  (fromAlice: boolean, pt: Uint8Array) => Promise<void>
> {
  const world = new World();
  const alice = world.addDevice('alice', 1);
  const bob = world.addDevice('bob', 1);
  const send = async (fromAlice: boolean, pt: Uint8Array): Promise<void> => {
    const [from, to] = fromAlice ? [alice, bob] : [bob, alice];
    const out = await from.manager.encrypt(to.address.account, pt, 1000);
    await world.deliver(from.address, out, 1000);
  };
  await send(true, utf8('hello'));
  await send(false, utf8('hello'));
  return send;
}

const bench: Bench = async () => {
  const prev = setCryptoProvider(createNodeCryptoProvider());
  try {
    const pt = new Uint8Array(100);
    const ks = await keytrailConversation();
    const ls = await libsignalConversation();
    for (const mode of ['one-way', 'ping-pong'] as const) {
      let i = 0;
      const k = await opsPerSecondAsync(() => ks(mode === 'one-way' || i++ % 2 === 0, pt), 2000);
      let j = 0;
      const l = await opsPerSecondAsync(
        () => ls.send(mode === 'one-way' || j++ % 2 === 0, pt),
        2000,
      );
      report(
        `messages ${mode} (encrypt+decrypt, 100 B), keytrail`,
        `${fmt(k)} msg/s`,
        `libsignal ${fmt(l)} msg/s = ${fmt((100 * k) / l)}% (target ≥ 50%)`,
      );
    }
  } finally {
    setCryptoProvider(prev);
  }
};
export default bench;
