import { readFileSync } from 'node:fs';
import { createPrivateKey, sign as nodeSign } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64, fromHex, toBase64, toHex, utf8 } from '../src/bytes.ts';
import { sha256 } from '../src/crypto.ts';
import { KtError, MalformedError, VerificationError } from '../src/errors.ts';
import {
  MAX_NOTE_SIZE,
  MAX_SIGNATURES,
  addSignatures,
  ed25519Signer,
  format,
  formatSignerKey,
  formatVerifierKey,
  generateKey,
  isValidName,
  keyId,
  open,
  parse,
  parseSignerKey,
  parseVerifierKey,
  sign,
  type NoteSignature,
  type Verifier,
} from '../src/signed-note.ts';

const tlog = JSON.parse(readFileSync(new URL('./vectors/tlog-c2sp.json', import.meta.url), 'utf8'));

function expectCode(fn: () => unknown, cls: typeof KtError, code: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${code}`).toBeInstanceOf(cls);
  expect((thrown as KtError).code).toBe(code);
}
/** The base64 part of a vkey (it may itself contain '+'). */
const keyB64 = (vkey: string): string => vkey.split('+').slice(2).join('+');
const malformed = (fn: () => unknown, code = 'ERR_NOTE_MALFORMED'): void => {
  expectCode(fn, MalformedError, code);
};

const go = tlog.signed_notes[0];
const peterVkey: string = go.vkeys[0];
const enochVkey: string = go.vkeys[1];
const peter = parseVerifierKey(peterVkey);
const enoch = parseVerifierKey(enochVkey);
const goNote: string = go.note;
const goText =
  "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const peterLine = goNote.split('\n').find((l) => l.startsWith('\u2014 PeterNeumann'))!;

describe('golang.org/x/mod/sumdb/note vectors (PeterNeumann / EnochRoot)', () => {
  it('parses the vkeys and computes their key IDs', () => {
    expect(peter.name).toBe('PeterNeumann');
    expect(peter.keyId).toBe(0xc74f20a3);
    expect(enoch.keyId).toBe(0xaf0cfe78);
    expect(formatVerifierKey(peter.name, peter.publicKey)).toBe(peterVkey);
    expect(keyId('PeterNeumann', 1, peter.publicKey)).toBe(0xc74f20a3);
  });

  it('opens with both keys, with Peter only, and rejects with neither', () => {
    const both = open(goNote, [peter, enoch]);
    expect(both.text).toBe(goText);
    expect(both.verified.map((s) => s.name)).toEqual(['PeterNeumann', 'EnochRoot']);
    expect(both.unverified).toEqual([]);
    const one = open(goNote, [peter]);
    expect(one.verified.map((s) => s.name)).toEqual(['PeterNeumann']);
    expect(one.unverified.map((s) => [s.name, s.keyId])).toEqual([['EnochRoot', 0xaf0cfe78]]);
    expectCode(() => open(goNote, []), VerificationError, 'ERR_NOTE_NO_VERIFIED_SIGNATURE');
    // Bytes in, same result.
    expect(open(utf8(goNote), [peter]).text).toBe(goText);
  });

  it('reproduces the signature line from the Go signer key (Ed25519 is deterministic)', () => {
    const signer = parseSignerKey(go.signer_private_key_go_format);
    expect(signer.name).toBe('PeterNeumann');
    expect(toHex(signer.publicKey)).toBe(toHex(peter.publicKey));
    const signed = sign(goText, [signer]);
    expect(signed).toBe(`${goText}\n${peterLine}\n`);
    const seed = fromBase64(go.signer_private_key_go_format.split('+').slice(4).join('+')).subarray(
      1,
    );
    expect(formatSignerKey('PeterNeumann', seed)).toBe(go.signer_private_key_go_format);
  });

  it('rejects the negative cases of note_test.go', () => {
    // note text only, no blank line or signature
    malformed(() => open(goText, [peter]));
    // 101 signatures
    const many = `${goText}\n${`${peterLine}\n`.repeat(101)}`;
    malformed(() => open(many, [peter]), 'ERR_NOTE_TOO_MANY_SIGNATURES');
    // 'ABCD' inserted at character 60 of Peter's signature line: still base64, bad signature
    const tampered = goNote.replace(
      peterLine,
      peterLine.slice(0, 60) + 'ABCD' + peterLine.slice(60),
    );
    expectCode(() => open(tampered, [peter]), VerificationError, 'ERR_NOTE_INVALID_SIGNATURE');
    // key name with a space
    malformed(() => open(goNote.replace('\u2014 PeterNeumann', '\u2014 Bad Name'), [peter]));
    // trailing non-signature line
    malformed(() => open(`${goNote}hello\n`, [peter]));
    malformed(() => open(`${goNote}hello`, [peter]));
    // leading 0x01 or 0xff byte
    malformed(() => open(`\u0001${goNote}`, [peter]));
    malformed(() => open(Uint8Array.from([0xff, ...utf8(goNote)]), [peter]));
    // vkey with the wrong key length; vkey with an unknown algorithm
    expectCode(
      () =>
        parseVerifierKey(
          'PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==',
        ),
      MalformedError,
      'ERR_VKEY_MALFORMED',
    );
    expectCode(
      () => parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
      MalformedError,
      'ERR_VKEY_UNSUPPORTED_TYPE',
    );
  });

  it('drops repeated signatures (the repeat is not even verified)', () => {
    const lines = goNote.split('\n');
    const dup = [...lines.slice(0, -1), peterLine, ''].join('\n');
    expect(open(dup, [peter]).verified).toHaveLength(1);
    // Go drops later lines for an already-seen key without verifying them.
    const bogus = `${peterLine.slice(0, -8)}AAAAAAA=`;
    expect(open(`${goNote}${bogus}\n`, [peter]).verified).toHaveLength(1);
    // Repeated unknown lines are listed once.
    const dupEnoch = `${goNote}${goNote.split('\n')[4]}\n`;
    expect(open(dupEnoch, [peter]).unverified).toHaveLength(1);
  });
});

describe('C2SP signed-note example and real checkpoints', () => {
  it('verifies the C2SP example note', () => {
    const v = tlog.signed_notes[1];
    const verifier = parseVerifierKey(v.vkeys[0]);
    expect(open(v.note, [verifier]).text).toBe('This is an example message.\n');
  });

  // Every single-note checkpoint vector whose log key is Ed25519 (0x01).
  const single = tlog.checkpoints
    .map((c: { id: string; note?: string; vkey?: string; vkey_derived?: string }) => ({
      id: c.id,
      note: c.note,
      vkey: c.vkey ?? c.vkey_derived ?? '',
    }))
    .filter(
      (c: { note?: string; vkey: string }) =>
        c.note !== undefined && fromBase64(keyB64(c.vkey))[0] === 0x01,
    );
  it('has the five Ed25519 single-note checkpoints', () => {
    expect(single).toHaveLength(5);
  });
  const singleCases: [string, { note: string; vkey: string }][] = single.map(
    (c: { id: string; note: string; vkey: string }) => [c.id, c],
  );
  it.each(singleCases)('verifies %s', (_id, c) => {
    const opened = open(c.note, [parseVerifierKey(c.vkey)]);
    expect(opened.verified).toHaveLength(1);
    expect(format(parse(c.note))).toBe(c.note);
  });

  it('verifies all 16 tessera testdata checkpoints and re-signs them byte for byte', () => {
    const t = tlog.checkpoints.find((c: { id: string }) => c.id.startsWith('tessera'));
    const verifier = parseVerifierKey(t.vkey);
    const signer = parseSignerKey(t.signer_private_key_go_format);
    expect(signer.keyId).toBe(verifier.keyId);
    for (const n of t.notes_by_size as string[]) {
      const { text } = open(n, [verifier]);
      expect(sign(text, [signer])).toBe(n);
    }
  });

  it('verifies the monkeys notes and derives the witness keys', () => {
    const m = tlog.checkpoints.find((c: { id: string }) => c.id.includes('monkeys'));
    for (const n of m.notes as string[]) open(n, [parseVerifierKey(m.vkey)]);
    const w = parseSignerKey(m.witness_key_in_test.private_go_format);
    expect(formatVerifierKey(w.name, w.publicKey)).toBe(m.witness_key_in_test.vkey_type01);
  });

  it('ignores the Pixel ECDSA (0x02) log line and verifies the Armored Witness cosignatures', () => {
    const px = tlog.checkpoints.find((c: { id: string }) => c.id.startsWith('pixel'));
    // Type 0x02 is not supported: the vkey is refused for its type, before its (SPKI) key ID.
    expectCode(() => parseVerifierKey(px.vkey), MalformedError, 'ERR_VKEY_UNSUPPORTED_TYPE');
    const raw = fromBase64(keyB64(px.vkey));
    expect(raw[0]).toBe(0x02);
    // Its key ID follows the 0x02 rule SHA-256(DER SPKI)[:4], not the name-based one.
    expect(toHex(sha256(raw.subarray(1)).subarray(0, 4))).toBe('72c878db');
    expect(keyId('pixel_transparency_log', 2, raw.subarray(1)).toString(16)).toBe('abd8956b');
    const parsed = parse(px.note);
    expect(parsed.signatures.map((s) => s.name)).toEqual([
      'pixel_transparency_log',
      'ArmoredWitness-small-breeze',
      'ArmoredWitness-autumn-wood',
    ]);
    expect(parsed.signatures[0]!.keyId).toBe(0x72c878db);
    // With only the log's key (which cannot be configured) nothing verifies.
    expectCode(() => open(px.note, []), VerificationError, 'ERR_NOTE_NO_VERIFIED_SIGNATURE');
  });

  it('parses the ML-DSA-44 (0x06) note and ignores its unknown signature type', () => {
    const ml = tlog.checkpoints.find((c: { id: string }) => c.id.includes('mldsa'));
    const parsed = parse(ml.note);
    expect(parsed.signatures[0]!.keyId).toBe(0xb5df45c5);
    expect(parsed.signatures[0]!.signature).toHaveLength(2428);
    const raw = fromBase64(keyB64(ml.vkey));
    expect(raw[0]).toBe(0x06);
    expect(raw.length - 1).toBe(1312);
    // The generic key-ID rule holds for type 0x06.
    expect(keyId('example.com/mldsa-log', 0x06, raw.subarray(1))).toBe(0xb5df45c5);
    expectCode(() => parseVerifierKey(ml.vkey), MalformedError, 'ERR_VKEY_UNSUPPORTED_TYPE');
    const other = parseVerifierKey(tlog.checkpoints[0].vkey);
    expectCode(() => open(ml.note, [other]), VerificationError, 'ERR_NOTE_NO_VERIFIED_SIGNATURE');
  });
});

describe('verification rules', () => {
  const text = 'example.com/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n';
  const a = ed25519Signer('example.com/a', new Uint8Array(32).fill(1));
  const b = ed25519Signer('example.com/b', new Uint8Array(32).fill(2));
  const va = parseVerifierKey(formatVerifierKey(a.name, a.publicKey));
  const vb = parseVerifierKey(formatVerifierKey(b.name, b.publicKey));
  const signed = sign(text, [a, b]);

  it('ignores lines matching a known key by name only or by ID only', () => {
    const sigA = parse(signed).signatures[0]!;
    const sameNameOtherId: NoteSignature = { ...sigA, keyId: (sigA.keyId + 1) >>> 0 };
    const sameIdOtherName: NoteSignature = { ...sigA, name: 'example.com/other' };
    const note = addSignatures(signed, [sameNameOtherId, sameIdOtherName]);
    const opened = open(note, [va]);
    expect(opened.verified).toHaveLength(1);
    expect(opened.unverified.map((s) => s.name)).toEqual([
      'example.com/b',
      'example.com/a',
      'example.com/other',
    ]);
  });

  it('rejects the note if a known key fails, even when another known key verifies', () => {
    const sigB = parse(signed).signatures[1]!;
    const bad = sigB.signature.slice();
    bad[0]! ^= 1;
    const note = addSignatures(signed, [{ ...sigB, signature: bad }]);
    expect(open(note, [va]).verified).toHaveLength(1);
    expectCode(() => open(note, [va, vb]), VerificationError, 'ERR_NOTE_INVALID_SIGNATURE');
    // Text changed under a valid signature.
    expectCode(
      () => open(signed.replace('\n3\n', '\n4\n'), [va]),
      VerificationError,
      'ERR_NOTE_INVALID_SIGNATURE',
    );
  });

  it('reports duplicate configured verifiers as an ambiguous key, only when used', () => {
    const twin: Verifier = { name: va.name, keyId: va.keyId, verify: () => true };
    expectCode(() => open(signed, [va, twin]), VerificationError, 'ERR_NOTE_AMBIGUOUS_KEY');
    const unusedTwin: Verifier = { name: 'example.com/c', keyId: 1, verify: () => true };
    expect(open(signed, [va, unusedTwin, { ...unusedTwin }]).verified).toHaveLength(1);
  });

  it('accepts 16 and up to 100 signatures', () => {
    const signers = Array.from({ length: MAX_SIGNATURES }, (_, i) =>
      ed25519Signer(`example.com/s${i}`, new Uint8Array(32).fill(i + 3)),
    );
    const note16 = sign(text, signers.slice(0, 16));
    const note100 = sign(text, signers);
    const verifiers = signers.map((s) => parseVerifierKey(formatVerifierKey(s.name, s.publicKey)));
    expect(open(note16, verifiers).verified).toHaveLength(16);
    expect(open(note100, verifiers.slice(0, 1)).unverified).toHaveLength(99);
    expect(open(note100, verifiers).verified).toHaveLength(100);
  });

  it('signs with a pluggable Ed25519 function (node:crypto) to the same bytes', () => {
    const seed = new Uint8Array(32).fill(9);
    const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
    const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
    const viaNode = ed25519Signer(
      'example.com/n',
      seed,
      (m) => new Uint8Array(nodeSign(null, m, key)),
    );
    expect(sign(text, [viaNode])).toBe(sign(text, [ed25519Signer('example.com/n', seed)]));
    const fromSkey = parseSignerKey(formatSignerKey('example.com/n', seed), (m, k) =>
      ed25519.sign(m, k),
    );
    expect(fromSkey.keyId).toBe(viaNode.keyId);
  });

  it('replaces existing lines of the same key in addSignatures', () => {
    const sigA = parse(signed).signatures[0]!;
    const again = addSignatures(signed, [sigA]);
    expect(parse(again).signatures.map((s) => s.name)).toEqual(['example.com/b', 'example.com/a']);
    expect(open(again, [va, vb]).verified).toHaveLength(2);
  });
});

describe('round trips (fast-check)', () => {
  const nameArb = fc
    .string({ minLength: 1, maxLength: 20, unit: 'grapheme' })
    .filter((s) => isValidName(s));
  const lineArb = fc.string({ maxLength: 40, unit: 'grapheme' }).map((s) =>
    Array.from(s)
      .filter((ch) => ch.charCodeAt(0) >= 0x20)
      .join(''),
  );
  const textArb = fc
    .array(lineArb, { minLength: 1, maxLength: 6 })
    .map((ls) => `${ls.join('\n')}\n`);

  it('format(parse(x)) === x and parse(format(n)) equals n', () => {
    fc.assert(
      fc.property(
        textArb,
        fc.array(
          fc.record({
            name: nameArb,
            keyId: fc.integer({ min: 0, max: 0xffffffff }),
            signature: fc.uint8Array({ minLength: 1, maxLength: 80 }),
          }),
          { minLength: 1, maxLength: 5 },
        ),
        (text, signatures) => {
          const note = format({ text, signatures });
          const parsed = parse(note);
          expect(parsed.text).toBe(text);
          expect(parsed.signatures.map((s) => [s.name, s.keyId, toHex(s.signature)])).toEqual(
            signatures.map((s) => [s.name, s.keyId, toHex(s.signature)]),
          );
          expect(format(parsed)).toBe(note);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('sign then open verifies for random names, keys and texts; vkeys and skeys round-trip', () => {
    fc.assert(
      fc.property(
        nameArb,
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        textArb,
        (name, seed, text) => {
          const skey = formatSignerKey(name, seed);
          const signer = parseSignerKey(skey);
          const vkey = formatVerifierKey(name, signer.publicKey);
          const verifier = parseVerifierKey(vkey);
          expect(verifier.keyId).toBe(signer.keyId);
          expect(formatVerifierKey(verifier.name, verifier.publicKey)).toBe(vkey);
          const opened = open(sign(text, [signer]), [verifier]);
          expect(opened.text).toBe(text);
        },
      ),
      { numRuns: 100 },
    );
    const { signerKey, verifierKey } = generateKey('example.com/fresh');
    expect(
      open(sign('x\n', [parseSignerKey(signerKey)]), [parseVerifierKey(verifierKey)]).text,
    ).toBe('x\n');
  });
});

describe('malformed notes and keys: exact error codes', () => {
  const s = ed25519Signer('example.com/k', new Uint8Array(32).fill(5));
  const v = parseVerifierKey(formatVerifierKey(s.name, s.publicKey));
  const good = sign('hello\n', [s]);
  const line = good.split('\n')[2]!;

  it.each([
    ['no signature block', 'hello\n'],
    ['no final newline', good.slice(0, -1)],
    ['empty signature block', 'hello\n\n'],
    ['blank line after the signatures', `${good}\n`],
    ['carriage return', good.replace('hello', 'hel\rlo')],
    ['tab', good.replace('hello', 'hel\tlo')],
    ['NUL', good.replace('hello', 'hel\u0000lo')],
    ['lone surrogate', good.replace('hello', 'hel\ud800lo')],
    ['ASCII hyphen instead of em dash', good.replace('\u2014 ', '- ')],
    ['em dash without space', good.replace('\u2014 ', '\u2014')],
    ['no space before the signature', good.replace('example.com/k ', 'example.com/k')],
    ['empty name', good.replace('\u2014 example.com/k', '\u2014 ')],
    ['name with +', good.replace('example.com/k', 'example.com+k')],
    ['name with NBSP', good.replace('example.com/k', 'example.com\u00a0k')],
    ['name with ideographic space', good.replace('example.com/k', 'example.com\u3000k')],
    ['two spaces', good.replace('example.com/k ', 'example.com/k  ')],
    ['signature not base64', good.replace(line, `${line.slice(0, -2)}*=`)],
    ['signature without padding', good.replace(line, line.replace(/=+$/, ''))],
    ['signature too short', `hello\n\n\u2014 example.com/k ${toBase64(new Uint8Array(4))}\n`],
    ['empty signature', 'hello\n\n\u2014 example.com/k \n'],
  ])('%s → ERR_NOTE_MALFORMED', (_name, note) => {
    malformed(() => parse(note));
    malformed(() => open(note, [v]));
  });

  it('rejects invalid UTF-8 bytes, oversized notes and too many signatures', () => {
    malformed(() => parse(Uint8Array.of(0x68, 0x0a, 0x0a, 0xc3)));
    malformed(() => parse(42 as unknown as string));
    const big = `${'a'.repeat(MAX_NOTE_SIZE)}\n\n${line}\n`;
    malformed(() => parse(big), 'ERR_NOTE_TOO_LARGE');
    malformed(() => parse(utf8(big)), 'ERR_NOTE_TOO_LARGE');
    // Under the limit in UTF-16 units, over it in UTF-8 bytes.
    const wide = `${'\u00e9'.repeat(MAX_NOTE_SIZE / 2)}\n\n${line}\n`;
    malformed(() => parse(wide), 'ERR_NOTE_TOO_LARGE');
    const fits = `${'a'.repeat(MAX_NOTE_SIZE - line.length - 10)}\n\n${line}\n`;
    expect(parse(fits).signatures).toHaveLength(1);
    malformed(
      () => parse(`hello\n\n${`${line}\n`.repeat(MAX_SIGNATURES + 1)}`),
      'ERR_NOTE_TOO_MANY_SIGNATURES',
    );
  });

  it('decodes signature lines like Go: non-zero padding bits are ignored, not malformed', () => {
    // The last symbol before '=' carries unused bits; Go ignores them. A tampered known line is
    // then an invalid signature (litewitness answers 403 "invalid signature", not 400).
    const sym = line.charAt(line.length - 2);
    const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const v2 = B64.charAt(B64.indexOf(sym) | 1);
    const sameBytes = good.replace(line, `${line.slice(0, -2)}${v2}=`);
    expect(sameBytes).not.toBe(good);
    expect(toHex(parse(sameBytes).signatures[0]!.signature)).toBe(
      toHex(parse(good).signatures[0]!.signature),
    );
    expect(open(sameBytes, [v]).verified).toHaveLength(1);
    const tampered = good.replace(
      line,
      `${line.slice(0, -2)}${B64.charAt(B64.indexOf(sym) ^ 0x21)}=`,
    );
    expectCode(() => open(tampered, [v]), VerificationError, 'ERR_NOTE_INVALID_SIGNATURE');
    const twoPad = `hello\n\n\u2014 example.com/k ${toBase64(new Uint8Array(7)).replace('A==', 'P==')}\n`;
    expect(parse(twoPad).signatures[0]!.signature).toEqual(new Uint8Array(3));
  });

  it('keeps the last blank line as the separator (text may contain blank lines)', () => {
    const text = 'a\n\nb\n\n';
    const note = sign(text, [s]);
    expect(open(note, [v]).text).toBe(text);
    expect(parse('\n\n\u2014 x AAAAAAA=\n').text).toBe('\n');
  });

  it.each([
    ['no plus', 'PeterNeumann'],
    ['one plus', 'PeterNeumann+c74f20a3'],
    ['short id', 'PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
    ['non-hex id', 'PeterNeumann+c74f20ag+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
    ['wrong id', 'PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
    ['other name', 'PeterNeuman+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
    ['empty name', '+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
    ['name with space', 'Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'],
    ['bad base64', 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T'],
    ['empty key', 'PeterNeumann+c74f20a3+'],
    ['short key', 'PeterNeumann+c74f20a3+ARpc'],
    ['not a string', 42],
  ])('vkey %s → ERR_VKEY_MALFORMED', (_name, vkey) => {
    malformed(() => parseVerifierKey(vkey as string), 'ERR_VKEY_MALFORMED');
  });

  it('accepts an upper-case key ID, as Go does', () => {
    expect(parseVerifierKey(peterVkey.replace('c74f20a3', 'C74F20A3')).keyId).toBe(0xc74f20a3);
  });

  it('rejects malformed signer keys', () => {
    const good = go.signer_private_key_go_format as string;
    for (const bad of [
      good.replace('PRIVATE+KEY+', 'PRIVATE+KEX+'),
      good.replace('PeterNeumann', 'Peter Neumann'),
      good.replace('c74f20a3', 'c74f20a4'),
      good.replace('c74f20a3', 'c74f20'),
      good.slice(0, -4),
      `${good.slice(0, -44)}${toBase64(Uint8Array.of(1, ...new Uint8Array(31)))}`,
      'PRIVATE+KEY+PeterNeumann',
      'PRIVATE+KEY+PeterNeumann+c74f20a3+',
      42,
    ]) {
      malformed(() => parseSignerKey(bad as string), 'ERR_VKEY_MALFORMED');
    }
    malformed(() => parseSignerKey(good.replace('+AYEK', '+BYEK')), 'ERR_VKEY_UNSUPPORTED_TYPE');
  });

  it('refuses to sign or format invalid input (caller bugs)', () => {
    expect(() => sign('no newline', [s])).toThrow(TypeError);
    expect(() => sign('bad\u0007\n', [s])).toThrow(TypeError);
    expect(() => sign('x\n', [])).toThrow(TypeError);
    expect(() => sign('x\n', [{ ...s, name: 'bad name' }])).toThrow(TypeError);
    expect(() =>
      format({
        text: 'x\n',
        signatures: [{ name: 'a', keyId: 2 ** 32, signature: Uint8Array.of(1) }],
      }),
    ).toThrow(RangeError);
    expect(() => keyId('a+b', 1, new Uint8Array(32))).toThrow(TypeError);
    expect(() => keyId('a', 256, new Uint8Array(32))).toThrow(RangeError);
    expect(() => ed25519Signer('a', new Uint8Array(31))).toThrow(RangeError);
    expect(() => formatVerifierKey('a b', new Uint8Array(32))).toThrow(TypeError);
    expect(isValidName('\ud800')).toBe(false);
    expect(isValidName('\udc00x')).toBe(false);
    expect(isValidName('x\u0085')).toBe(false);
    expect(isValidName('\u{1f600}')).toBe(true);
    expect(isValidName('a\u0001b')).toBe(true);
  });

  it('exposes the signature bytes after the key ID', () => {
    const sig = parse(good).signatures[0]!;
    expect(sig.keyId).toBe(v.keyId);
    expect(sig.signature).toHaveLength(64);
    expect(toHex(sig.signature)).toBe(
      toHex(ed25519.sign(utf8('hello\n'), new Uint8Array(32).fill(5))),
    );
    expect(fromHex(toHex(sig.signature))).toEqual(sig.signature);
  });
});
