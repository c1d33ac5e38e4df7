import { describe, expect, it } from 'vitest';
import { InconsistencyError, KtError, MalformedError, VerificationError } from '../src/errors.ts';

describe('errors', () => {
  it('keeps the three failure kinds apart, with stable codes and names', () => {
    const cause = new Error('inner');
    const m = new MalformedError('ERR_NOTE_MALFORMED', 'bad note', { cause });
    const v = new VerificationError('ERR_INCLUSION_PROOF_INVALID', 'bad proof');
    expect(m).toBeInstanceOf(KtError);
    expect(m.name).toBe('MalformedError');
    expect(m.code).toBe('ERR_NOTE_MALFORMED');
    expect(m.cause).toBe(cause);
    expect(v).not.toBeInstanceOf(MalformedError);
    expect(v.name).toBe('VerificationError');
  });

  it('carries the evidence of an inconsistency', () => {
    const proof = [new Uint8Array(32)];
    const e = new InconsistencyError('ERR_LOG_FORK', 'two roots for one size', {
      notes: ['a\n', 'b\n'],
      proof,
      details: { size: 7 },
    });
    expect(e).toBeInstanceOf(KtError);
    expect(e.name).toBe('InconsistencyError');
    expect(e.code).toBe('ERR_LOG_FORK');
    expect(e.evidence.notes).toEqual(['a\n', 'b\n']);
    expect(e.evidence.proof).toBe(proof);
    expect(e.evidence.details).toEqual({ size: 7 });
  });
});
