/**
 * Child process for `attachment-offload.test.ts`: runs an attachment round trip on each offload
 * of the Node provider (the native addon, then JavaScript worker threads) and never closes
 * either. The process must still exit by itself, as soon as its work is done.
 * @module
 */
import { decryptAttachment, encryptAttachment, setCryptoProvider } from '../../src/index.ts';
import { createNodeCryptoProvider } from '../../node-provider/node-crypto-provider.ts';

const modes: string[] = [];
for (const attachmentNative of [true, false]) {
  const provider = createNodeCryptoProvider({ attachmentNative });
  if (provider.chunkOffload === undefined) throw new Error('no attachment offload');
  setCryptoProvider(provider);
  const pt = new Uint8Array(5 * 256 * 1024 + 7).map((_, i) => i & 0xff);
  const { stream, pointer } = encryptAttachment([pt]);
  const parts: Uint8Array[] = [];
  for await (const part of stream) parts.push(part);
  let i = 0;
  for await (const chunk of decryptAttachment(parts, await pointer)) {
    for (const b of chunk) if (b !== (i++ & 0xff)) throw new Error('round trip differs');
  }
  if (i !== pt.length) throw new Error('round trip length differs');
  modes.push(provider.attachments.mode);
}
console.log(`round trip ok: ${modes.join(', ')}`);
