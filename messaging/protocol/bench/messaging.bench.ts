/**
 * Messaging benchmark (issue 7), every figure beside a baseline measured in the same run:
 *
 * - messages encrypted and decrypted per second in a steady conversation: Keytrail's
 *   `SessionManager` on the `node:crypto` provider against `@signalapp/libsignal-client`
 *   (`signalEncrypt` / `signalDecrypt`, in-memory stores), one direction and alternating
 *   (every message then carries a DH ratchet step); target ≥ 50 % of libsignal;
 * - attachment throughput against the raw AEAD rate, measured in a child process
 *   (`attachment-rates.ts`, which says why).
 * @module
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fmt, opsPerSecondAsync, report, type Bench } from '../../../scripts/bench-util.ts';
import { NOBLE_PROVIDER, setCryptoProvider, utf8 } from '../src/index.ts';
import { createNodeCryptoProvider } from '../node-provider/node-crypto-provider.ts';
import { World } from '../test/support/world.ts';
import { libsignalConversation } from './libsignal-peer.ts';
import { interleaved } from './measure.ts';

type Send = (fromAlice: boolean, pt: Uint8Array) => Promise<void>;

async function keytrailConversation(serialize: boolean): Promise<Send> {
  const world = new World();
  const alice = world.addDevice('alice', 1, { serialize });
  const bob = world.addDevice('bob', 1, { serialize });
  let now = 1_700_000_000_000;
  const send: Send = async (fromAlice, pt) => {
    const [from, to] = fromAlice ? [alice, bob] : [bob, alice];
    const out = await from.manager.encrypt(to.address.account, pt, now++);
    await world.deliver(from.address, out, now);
  };
  await send(true, utf8('hello'));
  await send(false, utf8('hello'));
  return send;
}

async function messageRate(
  send: Send,
  mode: 'one-way' | 'ping-pong',
  pt: Uint8Array,
  ms: number,
): Promise<number> {
  let i = 0;
  return opsPerSecondAsync(() => send(mode === 'one-way' || i++ % 2 === 0, pt), ms);
}

const bench: Bench = async () => {
  const node = createNodeCryptoProvider();
  const prev = setCryptoProvider(node);
  try {
    const pt = new Uint8Array(100);
    const keytrail = await keytrailConversation(false);
    const serialised = await keytrailConversation(true);
    const libsignal = await libsignalConversation();
    const ls: Send = async (fromAlice, m) => {
      await libsignal.send(fromAlice, m as Uint8Array<ArrayBuffer>);
    };
    // Warm up (JIT tiers) before measuring: relays and clients are long-running processes.
    // About 20,000 messages bring the JavaScript side to its optimised tier on a loaded machine.
    for (const send of [ls, keytrail, serialised]) await messageRate(send, 'one-way', pt, 3000);
    for (const send of [ls, keytrail, serialised]) await messageRate(send, 'ping-pong', pt, 1500);
    for (const mode of ['one-way', 'ping-pong'] as const) {
      const [l = 0, k = 0, s = 0] = await interleaved(
        [ls, keytrail, serialised].map((send) => () => messageRate(send, mode, pt, 1000)),
        3,
      );
      report(
        `messages ${mode}, encrypt+decrypt 100 B, keytrail (node)`,
        `${fmt(k)} msg/s`,
        `libsignal ${fmt(l)} msg/s = ${fmt((100 * k) / l)}% (target ≥ 50%)`,
      );
      report(
        `messages ${mode}, keytrail, records serialised each write`,
        `${fmt(s)} msg/s`,
        `libsignal ${fmt(l)} msg/s = ${fmt((100 * s) / l)}%`,
      );
    }
    setCryptoProvider(NOBLE_PROVIDER);
    const nobleConv = await keytrailConversation(false);
    await messageRate(nobleConv, 'ping-pong', pt, 1000);
    const nk = await messageRate(nobleConv, 'one-way', pt, 1500);
    const np = await messageRate(nobleConv, 'ping-pong', pt, 1500);
    report(
      'messages one-way / ping-pong, keytrail (noble, browsers)',
      `${fmt(nk)} / ${fmt(np)} msg/s`,
    );
  } finally {
    setCryptoProvider(prev);
  }
  await node.close();
  await attachmentRates();
};

/**
 * Runs `attachment-rates.ts` in a child process that loads only messaging-core. libsignal's
 * native module, loaded here for the message comparison, changes this process's memory
 * behaviour (`perf stat`: three times the page faults) and costs the multi-threaded attachment
 * path about a third of its rate; Keytrail processes never load it. The child measures its own
 * raw AEAD baseline (higher there than in this process, so the ratio is not flattered).
 */
async function attachmentRates(): Promise<void> {
  const script = fileURLToPath(new URL('./attachment-rates.ts', import.meta.url));
  const child = spawn(process.execPath, [...process.execArgv, '--expose-gc', script], {
    stdio: 'inherit',
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', resolve);
  });
  if (code !== 0) throw new Error(`attachment benchmark exited with ${code}`);
}
export default bench;
