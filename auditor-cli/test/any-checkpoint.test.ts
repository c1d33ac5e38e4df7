/**
 * `verify-checkpoint` logic against real checkpoints from other logs (sum.golang.org, Sigsum,
 * Tessera, transparency-dev/witness) and real witness cosignatures (Armored Witness, Sigsum test
 * witnesses), with the exact error codes of the failures.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { installNodeCrypto } from '@keytrail/server-kit';
import { KtError } from '@keytrail/core';
import vectors from './vectors/checkpoints.json' with { type: 'json' };
import { verifyAnyCheckpoint, parseLogKey } from '../src/any-checkpoint.ts';
import { AuditError } from '../src/errors.ts';

installNodeCrypto();

interface Vector {
  desc: string;
  note: string;
  keys: string[];
  witnesses: string[];
  quorum?: number;
  want?: { origin: string; size: number; cosigners?: [string, number][] };
  wantErr?: string;
}

describe('verifyAnyCheckpoint', () => {
  for (const v of vectors.valid as Vector[]) {
    it(`accepts ${v.desc}`, () => {
      const r = verifyAnyCheckpoint(v.note, {
        keys: v.keys,
        witnesses: v.witnesses,
        ...(v.quorum !== undefined ? { quorum: v.quorum } : {}),
      });
      expect(r.origin).toBe(v.want?.origin);
      expect(r.size).toBe(v.want?.size);
      expect(r.signedBy).toHaveLength(1);
      if (v.want?.cosigners) {
        expect(r.cosigners.map((c) => [c.name, c.timestamp])).toEqual(v.want.cosigners);
      }
    });
  }

  for (const v of vectors.invalid as Vector[]) {
    it(`rejects ${v.desc} with ${v.wantErr ?? ''}`, () => {
      let code = 'none';
      try {
        verifyAnyCheckpoint(v.note, {
          keys: v.keys,
          witnesses: v.witnesses,
          ...(v.quorum !== undefined ? { quorum: v.quorum } : {}),
        });
      } catch (e) {
        code = e instanceof KtError ? e.code : String(e);
      }
      expect(code).toBe(v.wantErr);
    });
  }

  it('converts an Armored Witness 0x01 key to its 0x04 key ID and says so', () => {
    const v = (vectors.valid as Vector[]).find((x) => x.desc.startsWith('Armored Witness keys'));
    const r = verifyAnyCheckpoint(v?.note ?? '', {
      keys: v?.keys ?? [],
      witnesses: v?.witnesses ?? [],
    });
    expect(r.notes).toEqual([
      'witness ArmoredWitness-small-breeze: using cosignature/v1 key ID 9d1ab951 of the Ed25519 key given',
      'witness ArmoredWitness-autumn-wood: using cosignature/v1 key ID a996f95d of the Ed25519 key given',
    ]);
  });

  it('checks the cosignature age when asked', () => {
    const v = (vectors.valid as Vector[]).find((x) => x.desc.startsWith('Pixel'));
    const base = { keys: v?.keys ?? [], witnesses: v?.witnesses ?? [], maxAgeSeconds: 3600 };
    expect(() =>
      verifyAnyCheckpoint(v?.note ?? '', { ...base, now: 1738713836 + 60 }),
    ).not.toThrow();
    let code = '';
    try {
      verifyAnyCheckpoint(v?.note ?? '', { ...base, now: 1738713836 + 86_400 });
    } catch (e) {
      code = (e as KtError).code;
    }
    expect(code).toBe('ERR_COSIGNATURE_STALE');
  });

  it('refuses unusable keys and options as usage errors', () => {
    const usage = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        return e instanceof AuditError ? e.code : 'other';
      }
      return 'none';
    };
    const note = (vectors.valid as Vector[])[0]?.note ?? '';
    expect(usage(() => verifyAnyCheckpoint(note, { keys: [] }))).toBe('ERR_AUDIT_USAGE');
    expect(usage(() => parseLogKey('not a key'))).toBe('ERR_AUDIT_USAGE');
    // a 0x02 key whose ID is not SHA-256(SPKI)[:4]
    const pixel =
      (vectors.valid as Vector[]).find((x) => x.desc.startsWith('Pixel'))?.keys[0] ?? '';
    expect(usage(() => parseLogKey(pixel.replace('+72c878db+', '+72c878dc+')))).toBe(
      'ERR_AUDIT_USAGE',
    );
    const sum = (vectors.valid as Vector[])[0]?.keys ?? [];
    expect(usage(() => verifyAnyCheckpoint(note, { keys: sum, witnesses: [], quorum: 1 }))).toBe(
      'ERR_AUDIT_USAGE',
    );
  });
});
