import { createNodeCryptoProvider } from './node-provider/node-crypto-provider.ts';
import { setCryptoProvider, encryptAttachment, decryptAttachment, getCryptoProvider, AttachmentEncryptor } from './src/index.ts';
import { opsPerSecond, opsPerSecondAsync } from '../../scripts/bench-util.ts';
const p = createNodeCryptoProvider(); setCryptoProvider(p);
const C = 256 * 1024, MIB = 1048576, SIZE = 8 * MIB;
const pt = p.randomBytes(SIZE); const key = p.randomBytes(32); const nonce = p.randomBytes(24); const ad = new Uint8Array(19);
const chunk = pt.subarray(0, C);
function* pieces(b: Uint8Array, n: number) { for (let o = 0; o < b.length; o += n) yield b.subarray(o, o + n); }
const syncP = { ...p, sha256Async: undefined };
for (let r = 0; r < 5; r++) {
  const raw = opsPerSecond(() => p.xchacha20poly1305Seal(key, nonce, chunk, ad), 700) * C / MIB;
  const a = await opsPerSecondAsync(async () => { const { stream, pointer } = encryptAttachment(pieces(pt, MIB)); for await (const _ of stream); await pointer; }, 700) * SIZE / MIB;
  setCryptoProvider(syncP as never);
  const s = await opsPerSecondAsync(async () => { const { stream, pointer } = encryptAttachment(pieces(pt, MIB)); for await (const _ of stream); await pointer; }, 700) * SIZE / MIB;
  setCryptoProvider(p);
  const raw2 = opsPerSecond(() => p.xchacha20poly1305Seal(key, nonce, chunk, ad), 700) * C / MIB;
  console.log(`raw ${raw.toFixed(0)}/${raw2.toFixed(0)} async ${a.toFixed(0)} (${(200*a/(raw+raw2)).toFixed(0)}%) sync ${s.toFixed(0)} (${(200*s/(raw+raw2)).toFixed(0)}%)`);
}
