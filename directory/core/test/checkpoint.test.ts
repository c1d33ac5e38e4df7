import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64, toHex, utf8 } from '../src/bytes.ts';
import { format, parse, type Checkpoint } from '../src/checkpoint.ts';
import { MalformedError } from '../src/errors.ts';
import { emptyRoot, leafHash, rootHash } from '../src/merkle.ts';
import { open, parse as parseNote, parseVerifierKey } from '../src/signed-note.ts';

const tlog = JSON.parse(readFileSync(new URL('./vectors/tlog-c2sp.json', import.meta.url), 'utf8'));

function malformed(text: unknown): void {
  try {
    parse(text as string);
  } catch (e) {
    expect(e).toBeInstanceOf(MalformedError);
    expect((e as MalformedError).code).toBe('ERR_CHECKPOINT_MALFORMED');
    return;
  }
  expect.unreachable(`expected ERR_CHECKPOINT_MALFORMED for ${JSON.stringify(text)}`);
}

const ROOT = 'mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=';

describe('tlog-checkpoint vectors', () => {
  it('parses the sum.golang.org checkpoints (origin differs from the key name)', () => {
    const cp = parse(parseNote(tlog.checkpoints[0].note).text);
    expect(cp).toEqual({
      origin: 'go.sum database tree',
      size: 30055305,
      root: fromBase64(ROOT),
      extensions: [],
    });
  });

  it('parses every checkpoint note body in the vectors and formats it back byte for byte', () => {
    const notes: string[] = [];
    for (const c of tlog.checkpoints) {
      if (c.note) notes.push(c.note);
      if (c.notes) notes.push(...c.notes);
      if (c.notes_by_size) notes.push(...c.notes_by_size);
    }
    for (const c of tlog.cosignatures) {
      if (c.signature_line) notes.push(`${c.checkpoint_text}\n${c.signature_line}`);
    }
    expect(notes.length).toBeGreaterThanOrEqual(30);
    for (const n of notes) {
      const { text } = parseNote(n);
      expect(format(parse(text))).toBe(text);
    }
  });

  it('tessera testdata: the root of size n is the RFC 6962 root of the first n entries', () => {
    const t = tlog.checkpoints.find((c: { id: string }) => c.id.startsWith('tessera'));
    const verifier = parseVerifierKey(t.vkey);
    const leaves = (t.entries_utf8_in_order as string[]).map((e) => leafHash(utf8(e)));
    (t.notes_by_size as string[]).forEach((n, size) => {
      const cp = parse(open(n, [verifier]).text);
      expect(cp.origin).toBe('example.com/log/testdata');
      expect(cp.size).toBe(size);
      expect(toHex(cp.root)).toBe(toHex(rootHash(leaves.slice(0, size))));
    });
    expect(toBase64(emptyRoot())).toBe('47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
  });

  it('tessera tiles: level-0 tiles are the concatenated leaf hashes, bundles the entries', () => {
    const tiles = tlog.tiles.find((t: { id: string }) => t.id === 'tessera-testdata-log-tiles');
    const t = tlog.checkpoints.find((c: { id: string }) => c.id.startsWith('tessera'));
    const entries = t.entries_utf8_in_order as string[];
    for (const [size, tile] of Object.entries<Record<string, string>>(tiles.by_size)) {
      const first = entries.slice(0, Number(size));
      expect(tile.level0_tile_hex).toBe(first.map((e) => toHex(leafHash(utf8(e)))).join(''));
      const bundle = first.map((e) => toHex(Uint8Array.of(0, e.length)) + toHex(utf8(e))).join('');
      expect(tile.entries_bundle_hex).toBe(bundle);
    }
  });

  it('sunlight tiles: 300 records give the published root and tiles', () => {
    const s = tlog.tiles.find((t: { id: string }) => t.id === 'sunlight-mirror-300-records');
    const leaves = Array.from({ length: 300 }, (_, i) => leafHash(utf8(`record ${i}`)));
    expect(toBase64(rootHash(leaves))).toBe(s.root_b64);
    const concat = (xs: Uint8Array[]): Uint8Array => Uint8Array.from(xs.flatMap((x) => [...x]));
    const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
    expect(sha(concat(leaves.slice(0, 256)))).toBe(s.tiles['tile/0/000'].sha256_hex);
    expect(sha(concat(leaves.slice(256)))).toBe(s.tiles['tile/0/001.p/44'].sha256_hex);
    expect(toHex(rootHash(leaves.slice(0, 256)))).toBe(s.tiles['tile/1/000.p/1'].hex);
    const mirror = tlog.cosignatures.find(
      (c: { id: string }) => c.id === 'sunlight-skylight-mirror',
    );
    expect(parse(mirror.checkpoint_text).root).toEqual(fromBase64(s.root_b64));
  });
});

describe('strict parsing', () => {
  it.each([
    ['empty', ''],
    ['no final newline', `o\n1\n${ROOT}`],
    ['two lines', 'o\n1\n'],
    ['empty origin', `\n1\n${ROOT}\n`],
    ['leading zero', `o\n01\n${ROOT}\n`],
    ['double zero', `o\n00\n${ROOT}\n`],
    ['sign', `o\n+1\n${ROOT}\n`],
    ['negative', `o\n-1\n${ROOT}\n`],
    ['space', `o\n 1\n${ROOT}\n`],
    ['exponent', `o\n1e3\n${ROOT}\n`],
    ['hex', `o\n0x10\n${ROOT}\n`],
    ['decimal point', `o\n1.0\n${ROOT}\n`],
    ['empty size', `o\n\n${ROOT}\n`],
    ['beyond 2^53 - 1', `o\n9007199254740992\n${ROOT}\n`],
    ['2^64', `o\n18446744073709551616\n${ROOT}\n`],
    ['root not base64', 'o\n1\nnot base64!\n'],
    ['root 31 bytes', `o\n1\n${toBase64(new Uint8Array(31))}\n`],
    ['root 33 bytes', `o\n1\n${toBase64(new Uint8Array(33))}\n`],
    ['root without padding', `o\n1\n${ROOT.slice(0, -1)}\n`],
    ['root with trailing space', `o\n1\n${ROOT} \n`],
    ['empty extension line', `o\n1\n${ROOT}\n\n`],
    ['empty extension line in the middle', `o\n1\n${ROOT}\next\n\nmore\n`],
    ['carriage return', `o\r\n1\n${ROOT}\n`],
    ['control character in an extension', `o\n1\n${ROOT}\nx\u0000\n`],
    ['lone surrogate', `o\ud800\n1\n${ROOT}\n`],
    ['not a string', 7],
  ])('%s → ERR_CHECKPOINT_MALFORMED', (_name, text) => {
    malformed(text);
  });

  it('accepts 0, 2^53 − 1, extension lines, and an origin with spaces or +', () => {
    expect(parse(`o\n0\n${ROOT}\n`).size).toBe(0);
    expect(parse(`o\n9007199254740991\n${ROOT}\n`).size).toBe(Number.MAX_SAFE_INTEGER);
    expect(parse(`o\n1\n${ROOT}\next one\next two\n`).extensions).toEqual(['ext one', 'ext two']);
    expect(parse(`go.sum database tree\n1\n${ROOT}\n`).origin).toBe('go.sum database tree');
    expect(parse(`a+b\n1\n${ROOT}\n`).origin).toBe('a+b');
  });

  it('round-trips random checkpoints', () => {
    const lineArb = fc
      .string({ minLength: 1, maxLength: 30, unit: 'grapheme' })
      .filter((s) => !Array.from(s).some((ch) => ch.charCodeAt(0) < 0x20));
    fc.assert(
      fc.property(
        lineArb,
        fc.maxSafeNat(),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.array(lineArb, { maxLength: 3 }),
        (origin, size, root, extensions) => {
          const cp: Checkpoint = { origin, size, root, extensions };
          const text = format(cp);
          expect(parse(text)).toEqual(cp);
          expect(format(parse(text))).toBe(text);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('refuses to format invalid checkpoints', () => {
    const ok: Checkpoint = { origin: 'o', size: 1, root: new Uint8Array(32), extensions: [] };
    expect(() => format({ ...ok, origin: '' })).toThrow(TypeError);
    expect(() => format({ ...ok, origin: 'a\nb' })).toThrow(TypeError);
    expect(() => format({ ...ok, origin: 'a\tb' })).toThrow(TypeError);
    expect(() => format({ ...ok, extensions: [''] })).toThrow(TypeError);
    expect(() => format({ ...ok, size: -1 })).toThrow(RangeError);
    expect(() => format({ ...ok, size: 1.5 })).toThrow(RangeError);
    expect(() => format({ ...ok, size: 2 ** 53 })).toThrow(RangeError);
    expect(() => format({ ...ok, root: new Uint8Array(31) })).toThrow(RangeError);
  });
});
