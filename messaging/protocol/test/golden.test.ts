/**
 * Golden transcripts: the recorded sessions are recomputed from the same seed on both crypto
 * providers and must match byte for byte (formats, labels, KDFs and the order of random draws).
 * @module
 */
import { describe, expect, it } from 'vitest';
import golden from './vectors/golden-transcripts.json' with { type: 'json' };
import { PROVIDERS } from './support/helpers.ts';
import { recordTranscript } from './support/transcript.ts';

const { $comment: _comment, source: _source, recordedWith: _with, ...expected } = golden;

describe.each(PROVIDERS)('golden transcripts on the $name provider', ({ provider }) => {
  it('recomputes every recorded byte', async () => {
    const actual = await recordTranscript(provider);
    expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
    // Message by message first, for a readable diff.
    const msgs = actual.messages as typeof expected.messages;
    expect(msgs).toHaveLength(expected.messages.length);
    msgs.forEach((m, i) => {
      expect(m, `message ${i}`).toEqual(expected.messages[i]);
    });
    expect(actual).toEqual(expected);
  });
});

describe('the recorded transcript', () => {
  it('covers every message kind and decrypted to what was sent', () => {
    const kinds = new Set(expected.messages.map((m) => m.kind));
    expect([...kinds].sort()).toEqual(['group', 'message', 'prekey', 'sealed']);
    expect(expected.messages.map((m) => m.received)).toContain('data:m2: second, delivered first');
    expect(expected.messages.filter((m) => m.received.startsWith('group:'))).toHaveLength(5);
    expect(expected.resetAccepted).toBe(true);
    // Header-encrypted messages (type 0x04) are in it.
    expect(expected.messages.some((m) => m.body.startsWith('0104'))).toBe(true);
  });
});
