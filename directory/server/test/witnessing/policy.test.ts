/**
 * The witness policy file (C2SP tlog-policy) and the wiring helpers.
 */
import { describe, expect, it } from 'vitest';
import { note } from '@keytrail/core';
import { witnessKeyFromSeed } from '@keytrail/witness';
import {
  flatQuorum,
  parseWitnessPolicy,
  quorumMet,
  WitnessPolicyError,
} from '../../src/witnessing/policy.ts';
import { mergeCosignedNotes, witnessConfig } from '../../src/witnessing/wiring.ts';
import { DirLog } from './helpers.ts';

const keys = Array.from({ length: 6 }, (_, i) =>
  witnessKeyFromSeed(`w${String(i)}.example`, new Uint8Array(32).fill(0x90 + i)),
);
const line = (i: number, name = `X${String(i)}`): string =>
  `witness ${name} ${keys[i]!.vkey} https://w${String(i)}.example/witness`;

describe('witness policy (tlog-policy)', () => {
  it('parses the two-level example of the specification', () => {
    const p = parseWitnessPolicy(`# example
log example.com/log+12345678+AAAA

${line(0, 'X1')}
${line(1, 'X2')}
\t${line(2, 'X3')}
group X-witnesses 2 X1 X2 X3
${line(3, 'Y1')}
${line(4, 'Y2')}
${line(5, 'Y3')}
group Y-witnesses any Y1 Y2 Y3
group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
`);
    expect(p.witnesses.map((w) => w.name)).toEqual(['X1', 'X2', 'X3', 'Y1', 'Y2', 'Y3']);
    expect(p.witnesses[0]!.url).toBe('https://w0.example/witness');
    const met = (names: string[]): boolean => quorumMet(p.quorum, new Set(names));
    expect(met(['X1', 'X2', 'Y3'])).toBe(true);
    expect(met(['X1', 'X2'])).toBe(false);
    expect(met(['X1', 'Y1', 'Y2', 'Y3'])).toBe(false);
    expect(flatQuorum(p)).toBeUndefined();
    expect(witnessConfig(p).quorum).toBe(0);
  });

  it('flattens a single group, a single witness and none', () => {
    const g = parseWitnessPolicy(
      `${line(0)}\n${line(1)}\n${line(2)}\ngroup g all X0 X1 X2\nquorum g\n`,
    );
    expect(flatQuorum(g)).toMatchObject({ k: 3 });
    expect(witnessConfig(g)).toMatchObject({
      quorum: 3,
      witnesses: [{ name: 'X0' }, { name: 'X1' }, { name: 'X2' }],
    });
    expect(flatQuorum(parseWitnessPolicy(`${line(0)}\nquorum X0\n`))).toMatchObject({ k: 1 });
    const none = parseWitnessPolicy('quorum none\n');
    expect(quorumMet(none.quorum, new Set())).toBe(true);
    expect(flatQuorum(none)).toEqual({ k: 0, witnesses: [] });
  });

  it.each([
    ['', 'no quorum line'],
    [`${line(0)}\nquorum X0\nquorum X0\n`, 'quorum given twice'],
    ['quorum Z\n', '"Z" is not defined'],
    [`${line(0)}\n${line(1, 'X0')}\nquorum X0\n`, 'name "X0" defined twice'],
    [`${line(0)}\n${line(0, 'other')}\nquorum X0\n`, 'duplicate witness key'],
    [`${line(0)}\n${line(1)}\ngroup X0 any X1\nquorum X0\n`, 'defined twice'],
    [`${line(0)}\ngroup g 2 X0\nquorum g\n`, 'threshold'],
    [`${line(0)}\ngroup g 0 X0\nquorum g\n`, 'threshold'],
    [`${line(0)}\ngroup g any X0 X0\nquorum g\n`, 'listed twice'],
    [`${line(0)}\ngroup g any\nquorum g\n`, 'expected: group'],
    [`witness X0 ${keys[0]!.vkey}\nquorum X0\n`, 'expected: witness'],
    [`witness X0 example.com/log+12345678+AAAA https://x\nquorum X0\n`, 'not a cosignature/v1'],
    [`witness X0 ${keys[0]!.vkey} ftp://x\nquorum X0\n`, 'http or https'],
    [`witness X0 ${keys[0]!.vkey} not-a-url\nquorum X0\n`, 'not a URL'],
    ['frob\nquorum none\n', 'unknown keyword'],
    ['quorum none\u0001\n', 'control character'],
  ])('refuses %j', (text, message) => {
    expect(() => parseWitnessPolicy(text)).toThrow(WitnessPolicyError);
    expect(() => parseWitnessPolicy(text)).toThrow(message);
  });

  it('a 0x01 note key of the same witness is refused (cosignature/v1 keys only)', () => {
    const k = keys[0]!;
    const v01 = note.formatVerifierKey(k.name, k.publicKey);
    expect(() => parseWitnessPolicy(`witness X0 ${v01} https://x\nquorum X0\n`)).toThrow(
      'not a cosignature/v1',
    );
  });
});

describe('mergeCosignedNotes', () => {
  it('adds and refreshes signature lines of one checkpoint, refuses another checkpoint', () => {
    const log = new DirLog('merge.test/log', 9);
    log.append(3);
    const base = log.note();
    const sig = (n: string, b: number): note.NoteSignature => ({
      name: n,
      keyId: 7,
      signature: new Uint8Array(72).fill(b),
    });
    const stored = note.addSignatures(base, [sig('a', 1)]);
    const late = note.addSignatures(base, [sig('a', 2), sig('b', 3)]);
    const merged = note.parse(mergeCosignedNotes(stored, late));
    expect(merged.signatures.map((s) => `${s.name}:${String(s.signature[0])}`)).toEqual([
      'merge.test/log:' + String(note.parse(base).signatures[0]!.signature[0]),
      'a:2',
      'b:3',
    ]);
    log.append(1);
    expect(() => mergeCosignedNotes(stored, log.note())).toThrow('different checkpoints');
  });
});
