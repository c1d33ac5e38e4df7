/**
 * The golden-transcript scenario: full sessions run end to end with a deterministic random
 * generator and fixed clocks, every wire object recorded as hex. `test/vectors/record-golden.ts`
 * ran it once to write `test/vectors/golden-transcripts.json`; `golden.test.ts` runs it again on
 * both crypto providers and compares byte for byte, so any change to a format, a label, a KDF or
 * the order of operations shows up as a diff.
 * @module
 */
import { sha256 } from '@noble/hashes/sha2.js';
import {
  type CryptoProvider,
  type OutgoingMessage,
  LABELS,
  WIRE_VERSION,
  createSenderCertificate,
  encodeAttachmentPointer,
  encryptAttachment,
  fromUtf8,
  utf8,
} from '../../src/index.ts';
import { hx, seeded, withProvider } from './helpers.ts';
import { TEST_KEM } from './test-kem.ts';
import { World } from './world.ts';

/** One recorded message. */
export interface RecordedMessage {
  readonly from: string;
  readonly to: string;
  readonly kind: string;
  readonly body: string;
  readonly received: string;
}

const T0 = 1_750_000_000_000;

function name(a: { account: string; device: number }): string {
  return `${a.account}/${a.device}`;
}

/** Runs the scenario with `provider` and the fixed seed; returns the transcript. */
export function recordTranscript(provider: CryptoProvider): Promise<Record<string, unknown>> {
  return withProvider(seeded(provider, 'keytrail golden transcript v1'), async () => {
    const w = new World();
    const log: RecordedMessage[] = [];
    const deliver = async (
      from: { account: string; device: number },
      out: readonly OutgoingMessage[],
      now: number,
      order?: number[],
    ) => {
      const idx = order ?? out.map((_, i) => i);
      for (const i of idx) {
        const m = out[i]!;
        const r = await w
          .device(m.address)
          .manager.receive(m.body, now, m.kind === 'sealed' ? {} : { sender: from });
        const received =
          r.kind === 'data' || r.kind === 'group'
            ? `${r.kind}:${fromUtf8(r.body)}`
            : r.kind === 'reset'
              ? `reset:${r.accepted}`
              : `${r.kind}:${fromUtf8(r.groupId)}`;
        log.push({
          from: name(from),
          to: name(m.address),
          kind: m.kind,
          body: hx(m.body),
          received,
        });
      }
    };
    const alice = w.addDevice('alice', 1);
    const bob = w.addDevice('bob', 1);
    const carol = w.addDevice('carol', 1, { features: { headerEncryption: true } });
    const dave = w.addDevice('dave', 1);
    const erin1 = w.addDevice('erin', 1);
    w.addDevice('erin', 2);
    const frank = w.addDevice('frank', 1);
    const pq1 = w.addDevice('pq', 1, { kem: TEST_KEM });
    const pq2 = w.addDevice('pq', 2, { kem: TEST_KEM });
    const bundle = hx(await w.fetchBundle(bob.address));

    // 1. Plain headers, out-of-order first messages, both directions.
    const m1 = await alice.manager.encrypt('bob', utf8('m1: hello bob'), T0);
    const m2 = await alice.manager.encrypt('bob', utf8('m2: second, delivered first'), T0 + 1);
    await deliver(alice.address, m2, T0 + 2);
    await deliver(alice.address, m1, T0 + 3);
    await deliver(
      bob.address,
      await bob.manager.encrypt('alice', utf8('m3: hi alice'), T0 + 4),
      T0 + 4,
    );
    await deliver(alice.address, await alice.manager.encrypt('bob', utf8('m4'), T0 + 5), T0 + 5);
    await deliver(bob.address, await bob.manager.encrypt('alice', utf8('m5'), T0 + 6), T0 + 6);
    await deliver(bob.address, await bob.manager.encrypt('alice', utf8('m6'), T0 + 7), T0 + 7);

    // 2. Header encryption.
    await deliver(carol.address, await carol.manager.encrypt('dave', utf8('he1'), T0 + 8), T0 + 8);
    await deliver(dave.address, await dave.manager.encrypt('carol', utf8('he2'), T0 + 9), T0 + 9);
    await deliver(
      carol.address,
      await carol.manager.encrypt('dave', utf8('he3'), T0 + 10),
      T0 + 10,
    );

    // 3. Multi-device fan-out (erin's second device gets a copy).
    await deliver(
      erin1.address,
      await erin1.manager.encrypt('frank', utf8('md1'), T0 + 11),
      T0 + 11,
    );
    await deliver(
      frank.address,
      await frank.manager.encrypt('erin', utf8('md2'), T0 + 12),
      T0 + 12,
    );

    // 4. Sealed sender.
    const cert = createSenderCertificate(alice.local.identity, alice.address, T0 + 86_400_000);
    await deliver(
      alice.address,
      await alice.manager.encrypt('bob', utf8('sealed'), T0 + 13, { sealed: cert }),
      T0 + 13,
    );

    // 5. Sender Keys group: distribution, two messages, a removal (rotation).
    const g = utf8('golden-group');
    const r1 = await alice.manager.groupEncrypt(g, ['bob', 'frank'], utf8('g1'), T0 + 14);
    await deliver(alice.address, r1.distributions, T0 + 14);
    await deliver(alice.address, r1.messages, T0 + 14);
    const r2 = await alice.manager.groupEncrypt(g, ['bob', 'frank'], utf8('g2'), T0 + 15);
    await deliver(alice.address, r2.messages, T0 + 15);
    const r3 = await alice.manager.groupEncrypt(g, ['bob'], utf8('g3 without frank'), T0 + 16);
    await deliver(alice.address, r3.distributions, T0 + 16);
    await deliver(alice.address, r3.messages, T0 + 16);

    // 6. A reset request and the fresh session after it.
    const reset = await bob.manager.createResetRequest(alice.address, undefined, T0 + 17);
    const accepted = await alice.manager.processResetRequest(bob.address, reset, T0 + 17);
    await deliver(
      alice.address,
      await alice.manager.encrypt('bob', utf8('after reset'), T0 + 18),
      T0 + 18,
    );

    // 7. A KEM-augmented session (test KEM in the PQXDH slot).
    await deliver(pq1.address, await pq1.manager.encrypt('pq', utf8('kem'), T0 + 19), T0 + 19);
    await deliver(
      pq2.address,
      await pq2.manager.encrypt('pq', utf8('kem reply'), T0 + 20),
      T0 + 20,
    );

    // 8. Attachments: a small one in full, a three-chunk one by digest.
    const small = encryptAttachment([utf8('a small attachment')]);
    const smallCt: Uint8Array[] = [];
    for await (const p of small.stream) smallCt.push(p);
    const bigPt = new Uint8Array(600 * 1024).map((_, i) => (i * 31) & 0xff);
    const big = encryptAttachment([bigPt.subarray(0, 100_000), bigPt.subarray(100_000)]);
    const h = sha256.create();
    let bigSize = 0;
    for await (const p of big.stream) {
      h.update(p);
      bigSize += p.length;
    }

    return {
      wireVersion: WIRE_VERSION,
      labels: LABELS,
      bobBundle: bundle,
      messages: log,
      resetRequest: hx(reset),
      resetAccepted: accepted,
      senderCertificate: hx(cert.encoded),
      attachments: {
        small: {
          ciphertext: smallCt.map(hx).join(''),
          pointer: hx(encodeAttachmentPointer(await small.pointer)),
        },
        big: {
          ciphertextSha256: hx(h.digest()),
          size: bigSize,
          pointer: hx(encodeAttachmentPointer(await big.pointer)),
        },
      },
    };
  });
}
