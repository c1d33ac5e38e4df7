import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  concatBytes,
  equalBytes,
  fromBase64,
  fromHex,
  fromUtf8,
  toBase64,
  toHex,
  uintBE,
  utf8,
} from '../src/bytes.ts';
import { MalformedError } from '../src/errors.ts';

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MalformedError);
    expect((e as MalformedError).code).toBe(code);
    return;
  }
  expect.unreachable(`expected ${code}`);
}

describe('bytes', () => {
  it('round-trips hex and base64 and matches Buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        expect(toHex(b)).toBe(Buffer.from(b).toString('hex'));
        expect(toBase64(b)).toBe(Buffer.from(b).toString('base64'));
        expect(fromHex(toHex(b))).toEqual(b);
        expect(fromHex(toHex(b).toUpperCase())).toEqual(b);
        expect(fromBase64(toBase64(b))).toEqual(b);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects malformed hex with ERR_HEX_MALFORMED', () => {
    for (const bad of ['0', 'zz', '0x00', ' 00', '00 '])
      expectCode(() => fromHex(bad), 'ERR_HEX_MALFORMED');
  });

  it('rejects non-canonical or malformed base64 with ERR_BASE64_MALFORMED', () => {
    // RFC 4648 §4 test vectors decode; everything else below does not.
    expect(fromUtf8(fromBase64('Zm9vYmFy'))).toBe('foobar');
    expect(fromUtf8(fromBase64('Zm9vYg=='))).toBe('foob');
    expect(fromUtf8(fromBase64('Zm9vYmE='))).toBe('fooba');
    expect(fromBase64('')).toEqual(new Uint8Array(0));
    for (const bad of [
      'Zm9vYg', // missing padding
      'Zm9vYh==', // non-zero padding bits
      'Zm9vYmF=', // non-zero padding bits
      'Zm9v Yg==', // whitespace
      'Zm9vYg=\n',
      'Zm9-Yg==', // URL alphabet
      'Zm=vYg==', // padding in the middle
      '=m9vYg==',
      'Zg===',
      '====',
      'Zm9vYg==\u00e9',
      '\u00e9m9v',
    ]) {
      expectCode(() => fromBase64(bad), 'ERR_BASE64_MALFORMED');
    }
  });

  it('decodes UTF-8 strictly with ERR_UTF8_MALFORMED', () => {
    expect(fromUtf8(utf8('— ünïcode ✓ 𝄞'))).toBe('— ünïcode ✓ 𝄞');
    expect(fromUtf8(Uint8Array.of(0xef, 0xbb, 0xbf, 0x41))).toBe('\ufeffA');
    for (const bad of [
      [0xff],
      [0xc3],
      [0xed, 0xa0, 0x80],
      [0xc0, 0x80],
      [0xf4, 0x90, 0x80, 0x80],
    ]) {
      expectCode(() => fromUtf8(Uint8Array.from(bad)), 'ERR_UTF8_MALFORMED');
    }
  });

  it('concatenates, compares and encodes integers', () => {
    expect(concatBytes(Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3))).toEqual(
      Uint8Array.of(1, 2, 3),
    );
    expect(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(equalBytes(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
    expect(equalBytes(Uint8Array.of(1), Uint8Array.of(1, 2))).toBe(false);
    expect(toHex(uintBE(0x0102, 2))).toBe('0102');
    expect(toHex(uintBE(2n ** 64n - 1n, 8))).toBe('ffffffffffffffff');
    expect(toHex(uintBE(Number.MAX_SAFE_INTEGER, 8))).toBe('001fffffffffffff');
    expect(() => uintBE(256, 1)).toThrow(RangeError);
    expect(() => uintBE(-1, 4)).toThrow(RangeError);
  });
});

describe('strict base64', () => {
  it.each(['AAA\u00e9', '\u0100AAA', 'AA=A', 'A===', 'AAB=', 'AB=='])(
    'rejects %j with ERR_BASE64_MALFORMED',
    (text) => {
      expectCode(() => fromBase64(text), 'ERR_BASE64_MALFORMED');
    },
  );
});
