/**
 * Records `golden-transcripts.json` once (run from the repository root:
 * `node --conditions=@keytrail/source --import tsx messaging/protocol/test/vectors/record-golden.ts`).
 * Re-record only for a deliberate, versioned format change, and say so in the commit.
 * @module
 */
import { writeFileSync } from 'node:fs';
import { NOBLE_PROVIDER } from '../../src/index.ts';
import { recordTranscript } from '../support/transcript.ts';

const transcript = await recordTranscript(NOBLE_PROVIDER);
const out = {
  $comment:
    'Golden transcripts of full Keytrail messaging sessions (X3DH, Double Ratchet with and without header encryption, multi-device fan-out, sealed sender, Sender Keys with a rotation, a session reset, a KEM session, attachments), recorded once with a deterministic generator (SHA-256 counter mode over a fixed seed) and fixed clocks. golden.test.ts recomputes them on the noble and node:crypto providers and compares every byte.',
  source:
    'self-generated: messaging/protocol/test/support/transcript.ts (no published Double Ratchet message KAT exists)',
  recordedWith: NOBLE_PROVIDER.name,
  ...transcript,
};
writeFileSync(
  new URL('./golden-transcripts.json', import.meta.url),
  JSON.stringify(out, null, 1) + '\n',
);
console.log('wrote golden-transcripts.json');
