/**
 * TOTP (RFC 6238): the Appendix B vectors through the module's own check, enrolment over
 * HTTP with an otpauth URI and a QR PNG, single use (replay and a concurrent double use),
 * and lockout after repeated failures.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import vectors from './vectors/totp-rfc6238.json' with { type: 'json' };
import { checkTotp } from '../../src/identity/totp.ts';
import { createHarness, flowAtMfa, json, totpCode, totpSeed, type Harness } from './helpers.ts';

function hex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}

describe('RFC 6238 Appendix B vectors', () => {
  const seeds = vectors.seeds as Record<string, { hex: string }>;
  it.each(vectors.vectors)('$desc', async (v) => {
    const seed = hex(seeds[v.mode]!.hex);
    const algorithm = v.mode.toLowerCase() as 'sha1' | 'sha256' | 'sha512';
    const ok = await checkTotp(seed, v.want, v.time, -1, { algorithm, digits: 8, toleranceSec: 0 });
    expect(ok).toEqual({ valid: true, timeStep: Math.floor(v.time / 30) });
    // One digit off is not valid, and the same code is refused once its step is used.
    const wrong = v.want.slice(0, 7) + String((Number(v.want[7]) + 1) % 10);
    expect(
      await checkTotp(seed, wrong, v.time, -1, { algorithm, digits: 8, toleranceSec: 0 }),
    ).toEqual({ valid: false });
    expect(
      await checkTotp(seed, v.want, v.time, Math.floor(v.time / 30), {
        algorithm,
        digits: 8,
        toleranceSec: 0,
      }),
    ).toEqual({
      valid: false,
    });
  });

  it('never throws on malformed codes', async () => {
    const seed = hex(vectors.seeds.SHA1.hex);
    for (const code of ['', 'abcdef', '12345', '1234567', '12 456', '１２３４５６', '-12345']) {
      expect(await checkTotp(seed, code, 59, -1)).toEqual({ valid: false });
    }
  });
});

describe('TOTP over HTTP', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness('totp');
  });
  afterAll(async () => h.close());

  const post = (url: string, payload: object) =>
    h.app.inject({ method: 'POST', url: `/identity/t/acme${url}`, payload });

  it('enrols with an otpauth URI and a QR PNG, then requires TOTP at the next sign-in', async () => {
    const { flow, accountId } = await flowAtMfa(h, 'acme', 'enrol@acme.test');
    const e = await post('/signin/totp/enroll', { flow });
    expect(e.statusCode).toBe(200);
    const body = json(e);
    expect(body.otpauthUri).toMatch(/^otpauth:\/\/totp\/Keytrail:enrol%40acme\.test\?/);
    expect(body.otpauthUri).toContain('issuer=Keytrail');
    expect(body.qrDataUrl).toMatch(/^data:image\/png;base64,/);
    const png = Buffer.from(body.qrDataUrl.split(',')[1], 'base64');
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    const seed = await totpSeed(h, accountId, true);
    expect(body.otpauthUri).toContain(`secret=${seed}`);

    const ok = await post('/signin/totp', { flow, code: await totpCode(h, seed) });
    expect(ok.statusCode).toBe(200);
    expect(json(ok).account.id).toBe(accountId);

    // Second sign-in: enrolment is refused, verification is required.
    const again = await flowAtMfa(h, 'acme', 'enrol@acme.test');
    const e2 = await post('/signin/totp/enroll', { flow: again.flow });
    expect(e2.statusCode).toBe(409);
    expect(json(e2).code).toBe('ERR_IDENTITY_TOTP_STATE');
    h.clock.advance(30_000);
    const ok2 = await post('/signin/totp', { flow: again.flow, code: await totpCode(h, seed) });
    expect(ok2.statusCode).toBe(200);
  });

  it('accepts each code once: a replay in a new sign-in is refused', async () => {
    const { flow, accountId } = await flowAtMfa(h, 'acme', 'replay@acme.test');
    await post('/signin/totp/enroll', { flow });
    const seed = await totpSeed(h, accountId, true);
    const code = await totpCode(h, seed);
    expect((await post('/signin/totp', { flow, code })).statusCode).toBe(200);
    const second = await flowAtMfa(h, 'acme', 'replay@acme.test');
    const replay = await post('/signin/totp', { flow: second.flow, code });
    expect(replay.statusCode).toBe(401);
    expect(json(replay)).toEqual({
      code: 'ERR_IDENTITY_TOTP_INVALID',
      message: 'code not accepted',
    });
    // The previous step's code is refused too once a later step was used.
    h.clock.advance(30_000);
    const next = await totpCode(h, seed);
    expect((await post('/signin/totp', { flow: second.flow, code: next })).statusCode).toBe(200);
  });

  it('of two simultaneous uses of one code exactly one wins', async () => {
    const { flow, accountId } = await flowAtMfa(h, 'acme', 'race@acme.test');
    await post('/signin/totp/enroll', { flow });
    const seed = await totpSeed(h, accountId, true);
    expect((await post('/signin/totp', { flow, code: await totpCode(h, seed) })).statusCode).toBe(
      200,
    );
    h.clock.advance(30_000);
    const code = await totpCode(h, seed);
    const flows = await Promise.all([1, 2, 3, 4].map(() => flowAtMfa(h, 'acme', 'race@acme.test')));
    const results = await Promise.all(
      flows.map((f) => post('/signin/totp', { flow: f.flow, code })),
    );
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 401, 401, 401]);
  });

  it('locks after 5 failures with Retry-After, and unlocks after the lockout', async () => {
    const { flow, accountId } = await flowAtMfa(h, 'acme', 'lock@acme.test');
    await post('/signin/totp/enroll', { flow });
    const seed = await totpSeed(h, accountId, true);
    expect((await post('/signin/totp', { flow, code: await totpCode(h, seed) })).statusCode).toBe(
      200,
    );
    // Failures across several flows count against the account.
    for (let i = 0; i < 5; i++) {
      const f = await flowAtMfa(h, 'acme', 'lock@acme.test');
      const bad = await post('/signin/totp', {
        flow: f.flow,
        code: '000000' === (await totpCode(h, seed)) ? '111111' : '000000',
      });
      expect(bad.statusCode).toBe(401);
    }
    h.clock.advance(30_000);
    const f = await flowAtMfa(h, 'acme', 'lock@acme.test');
    const locked = await post('/signin/totp', { flow: f.flow, code: await totpCode(h, seed) });
    expect(locked.statusCode).toBe(429);
    expect(json(locked).code).toBe('ERR_IDENTITY_TOTP_LOCKED');
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    h.clock.advance(h.config.totpLockoutSec * 1000);
    const f2 = await flowAtMfa(h, 'acme', 'lock@acme.test');
    const unlocked = await post('/signin/totp', { flow: f2.flow, code: await totpCode(h, seed) });
    expect(unlocked.statusCode).toBe(200);
    const audit = await h.tdb.db.query<{ event: string }>(
      `SELECT event FROM identity_audit WHERE account_id = $1 AND event LIKE 'totp.%' ORDER BY id`,
      [accountId],
    );
    expect(audit.rows.map((r) => r.event)).toEqual([
      'totp.enrolled',
      'totp.failed',
      'totp.failed',
      'totp.failed',
      'totp.failed',
      'totp.locked',
    ]);
  });

  it('kills a flow after 5 failed attempts', async () => {
    const { flow } = await flowAtMfa(h, 'acme', 'flowkill@acme.test');
    await post('/signin/totp/enroll', { flow });
    for (let i = 0; i < 5; i++)
      expect((await post('/signin/totp', { flow, code: '000001' })).statusCode).toBe(401);
    const dead = await post('/signin/totp', { flow, code: '000001' });
    expect(dead.statusCode).toBe(400);
    expect(json(dead).code).toBe('ERR_IDENTITY_FLOW_INVALID');
  });

  it('refuses malformed bodies with 400, never 500', async () => {
    for (const payload of [
      {},
      { flow: 'x', code: '123456' },
      { flow: 'a'.repeat(43), code: 12 },
      { flow: 'a'.repeat(43), code: '1'.repeat(11) },
    ]) {
      const r = await post('/signin/totp', payload);
      expect(r.statusCode).toBe(400);
    }
    const unknown = await post('/signin/totp', { flow: 'a'.repeat(43), code: '123456' });
    expect(json(unknown).code).toBe('ERR_IDENTITY_FLOW_INVALID');
  });
});
