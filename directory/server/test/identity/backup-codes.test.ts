/**
 * Backup codes escrowing the archive key: code format (100 bits, Crockford base32, slot
 * prefix), Argon2id cross-checked against an independent implementation, HKDF/AEAD wrapping,
 * slot validation, and recovery over HTTP — any one code signs in and returns the wrapped key,
 * a code works once, two simultaneous uses of one code let exactly one win, regeneration
 * invalidates the old set, and recovery authorises a device registration.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { argon2id as nobleArgon2id } from '@noble/hashes/argon2.js';
import {
  argon2id,
  authVerifier,
  deriveBackupKeys,
  formatBackupCode,
  generateBackupCodes,
  parseBackupCode,
  randomBackupSecret,
  unwrapArchiveKey,
  wrapArchiveKey,
  type BackupSlot,
} from '../../src/identity/backup-code.ts';
import { BACKUP_KDF_FLOOR, BACKUP_KDF_PARAMS, type KdfParams } from '../../src/identity/config.ts';
import {
  createHarness,
  flowAtMfa,
  json,
  signIn,
  completeWithTotp,
  type Harness,
} from './helpers.ts';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const fromB64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64url'));

describe('code format', () => {
  it('has 20 Crockford characters (100 bits) after a slot digit, in groups of 4', () => {
    const code = formatBackupCode({ slot: 3, secret: randomBackupSecret() });
    expect(code).toMatch(/^3-[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){4}$/);
  });

  it('uses every symbol with roughly equal frequency (no bias from bit extraction)', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++)
      for (const ch of randomBackupSecret()) counts.set(ch, (counts.get(ch) ?? 0) + 1);
    expect(counts.size).toBe(32);
    for (const n of counts.values()) expect(n).toBeGreaterThan(40000 / 32 / 2);
  });

  it('parses what it formats, forgiving case, spacing and O/I/L typos', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.array(fc.constantFrom(...CROCKFORD.split('')), { minLength: 20, maxLength: 20 }),
        (slot, chars) => {
          const secret = chars.join('');
          const text = formatBackupCode({ slot, secret });
          expect(parseBackupCode(text)).toEqual({ slot, secret });
          const sloppy = ` ${text.toLowerCase().replace(/-/g, ' ').replace(/0/g, 'o').replace(/1/g, 'l')} `;
          expect(parseBackupCode(sloppy)).toEqual({ slot, secret });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects malformed codes without throwing', () => {
    for (const bad of [
      '',
      '0-AAAA-AAAA-AAAA-AAAA-AAAA',
      '9-AAAA-AAAA-AAAA-AAAA-AAAA',
      '1-AAAA-AAAA-AAAA-AAAA-AAA',
      '1-AAAA-AAAA-AAAA-AAAA-AAAAA',
      '1-UUUU-AAAA-AAAA-AAAA-AAAA',
      'x'.repeat(1000),
    ]) {
      expect(parseBackupCode(bad)).toBeUndefined();
    }
  });
});

describe('derivation and wrapping', () => {
  const small: KdfParams = { memoryKiB: 64, passes: 2, parallelism: 1 };

  it('Argon2id agrees with an independent implementation (@noble/hashes)', async () => {
    const salt = new Uint8Array(16).fill(7);
    for (const secret of ['0'.repeat(20), 'ZZZZZZZZZZZZZZZZZZZZ', randomBackupSecret()]) {
      const ours = await argon2id(secret, salt, small);
      const theirs = nobleArgon2id(secret, salt, { t: 2, m: 64, p: 1, dkLen: 32 });
      expect(b64(ours)).toBe(b64(theirs));
    }
  });

  it('wraps under KEK, checks AUTH separately, and any change breaks the unwrap', async () => {
    const archiveKey = crypto.getRandomValues(new Uint8Array(32));
    const code = { slot: 2, secret: randomBackupSecret() };
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const { kek, auth } = await deriveBackupKeys(code, salt, small);
    expect(b64(kek)).not.toBe(b64(auth));
    const wrapped = await wrapArchiveKey(kek, 2, archiveKey);
    expect(wrapped.length).toBe(60);
    expect(b64((await unwrapArchiveKey(kek, 2, wrapped))!)).toBe(b64(archiveKey));
    expect(await unwrapArchiveKey(kek, 3, wrapped)).toBeUndefined();
    expect(await unwrapArchiveKey(auth, 2, wrapped)).toBeUndefined();
    const other = await deriveBackupKeys({ slot: 2, secret: randomBackupSecret() }, salt, small);
    expect(await unwrapArchiveKey(other.kek, 2, wrapped)).toBeUndefined();
    for (let i = 0; i < wrapped.length; i += 7) {
      const t = wrapped.slice();
      t[i]! ^= 1;
      expect(await unwrapArchiveKey(kek, 2, t)).toBeUndefined();
    }
  });

  it('generates 8 independent slots at the chosen parameters', async () => {
    const archiveKey = crypto.getRandomValues(new Uint8Array(32));
    const { codes, slots } = await generateBackupCodes(archiveKey, BACKUP_KDF_PARAMS);
    expect(codes).toHaveLength(8);
    expect(new Set(slots.map((s) => b64(s.salt))).size).toBe(8);
    const c5 = parseBackupCode(codes[4]!)!;
    expect(c5.slot).toBe(5);
    const s5 = slots[4]!;
    const { kek, auth } = await deriveBackupKeys(c5, s5.salt, s5.params);
    expect(b64(await authVerifier(auth))).toBe(b64(s5.authVerifier));
    expect(b64((await unwrapArchiveKey(kek, 5, s5.wrappedKey))!)).toBe(b64(archiveKey));
  });
});

describe('recovery over HTTP', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness('backup');
  });
  afterAll(async () => h.close());

  const wire = (slots: BackupSlot[]) => ({
    slots: slots.map((s) => ({
      slot: s.slot,
      salt: b64(s.salt),
      params: s.params,
      wrappedKey: b64(s.wrappedKey),
      authVerifier: b64(s.authVerifier),
    })),
  });
  const put = (token: string, payload: object) =>
    h.app.inject({
      method: 'PUT',
      url: '/identity/t/acme/me/backup-codes',
      payload,
      headers: { authorization: `Bearer ${token}` },
    });
  const post = (url: string, payload: object, token?: string) =>
    h.app.inject({
      method: 'POST',
      url: `/identity/t/acme${url}`,
      payload,
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });

  /** The client side of recovery: fetch parameters, derive, present AUTH. */
  async function recover(flow: string, codeText: string) {
    const code = parseBackupCode(codeText)!;
    const p = await post('/signin/recovery/params', { flow, slot: code.slot });
    if (p.statusCode !== 200) return { res: p, kek: undefined };
    const { salt, params } = json(p);
    const { kek, auth } = await deriveBackupKeys(code, fromB64(salt), params);
    return {
      res: await post('/signin/recovery', {
        flow,
        slot: code.slot,
        auth: b64(auth),
        deviceLabel: 'new phone',
      }),
      kek,
    };
  }

  async function enrolled(email: string) {
    const s = await signIn(h, 'acme', email);
    const archiveKey = crypto.getRandomValues(new Uint8Array(32));
    const gen = await generateBackupCodes(archiveKey, BACKUP_KDF_FLOOR);
    const r = await put(s.accessToken, wire(gen.slots));
    expect(r.statusCode).toBe(200);
    expect(json(r)).toEqual({ remaining: 8, generation: 1 });
    return { ...s, archiveKey, codes: gen.codes, slots: gen.slots };
  }

  it('signs in with any one code, returns the wrapped key for the client to unwrap, once', async () => {
    const e = await enrolled('recover@acme.test');
    const { flow } = await flowAtMfa(h, 'acme', 'recover@acme.test');
    const { res, kek } = await recover(flow, e.codes[6]!);
    expect(res.statusCode).toBe(200);
    const body = json(res);
    expect(body.backupCodesRemaining).toBe(7);
    expect(body.account.id).toBe(e.accountId);
    expect(b64((await unwrapArchiveKey(kek!, 7, fromB64(body.wrappedArchiveKey)))!)).toBe(
      b64(e.archiveKey),
    );
    const me = await h.app.inject({
      method: 'GET',
      url: '/identity/t/acme/me',
      headers: { authorization: `Bearer ${body.accessToken}` },
    });
    expect(json(me).session.amr).toEqual(['ext', 'rec']);
    expect(json(me).backupCodes.remaining).toBe(7);
    // The used slot's wrapped key is erased.
    const row = await h.tdb.db.query<{ w: Uint8Array }>(
      'SELECT wrapped_key AS w FROM identity_backup_codes WHERE account_id = $1 AND slot = 7',
      [e.accountId],
    );
    expect(row.rows[0]!.w.length).toBe(0);
    // Reuse in a new sign-in is refused.
    const again = await flowAtMfa(h, 'acme', 'recover@acme.test');
    const reuse = await recover(again.flow, e.codes[6]!);
    expect(reuse.res.statusCode).toBe(401);
    expect(json(reuse.res).code).toBe('ERR_IDENTITY_BACKUP_CODE_INVALID');
  });

  it('refuses a wrong code for the right slot, and counts it against the flow', async () => {
    const e = await enrolled('wrong@acme.test');
    const { flow } = await flowAtMfa(h, 'acme', 'wrong@acme.test');
    const forged = formatBackupCode({ slot: 1, secret: randomBackupSecret() });
    const r = await recover(flow, forged);
    expect(r.res.statusCode).toBe(401);
    // The real code still works afterwards in the same flow.
    const ok = await recover(flow, e.codes[0]!);
    expect(ok.res.statusCode).toBe(200);
    const audit = await h.tdb.db.query(
      `SELECT 1 FROM identity_audit WHERE event = 'backup.failed' AND account_id = $1`,
      [e.accountId],
    );
    expect(audit.rowCount).toBe(1);
  });

  it('two simultaneous uses of one code: exactly one wins', async () => {
    const e = await enrolled('double@acme.test');
    const code = parseBackupCode(e.codes[2]!)!;
    const slot = e.slots[2]!;
    const { auth } = await deriveBackupKeys(code, slot.salt, slot.params);
    const flows = await Promise.all(
      [1, 2, 3, 4, 5].map(() => flowAtMfa(h, 'acme', 'double@acme.test')),
    );
    const rs = await Promise.all(
      flows.map((f) => post('/signin/recovery', { flow: f.flow, slot: 3, auth: b64(auth) })),
    );
    expect(rs.map((r) => r.statusCode).sort()).toEqual([200, 401, 401, 401, 401]);
    const n = await h.tdb.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM identity_sessions WHERE account_id = $1 AND $2 = ANY(amr)',
      [e.accountId, 'rec'],
    );
    expect(n.rows[0]!.n).toBe(1);
  });

  it('regenerates: the old codes stop working, the new ones work', async () => {
    const e = await enrolled('regen@acme.test');
    const gen2 = await generateBackupCodes(e.archiveKey, BACKUP_KDF_FLOOR);
    const r = await put(e.accessToken, wire(gen2.slots));
    expect(json(r)).toEqual({ remaining: 8, generation: 2 });
    const f1 = await flowAtMfa(h, 'acme', 'regen@acme.test');
    expect((await recover(f1.flow, e.codes[0]!)).res.statusCode).toBe(401);
    const f2 = await flowAtMfa(h, 'acme', 'regen@acme.test');
    expect((await recover(f2.flow, gen2.codes[0]!)).res.statusCode).toBe(200);
  });

  it('validates uploaded slots: count, sizes, duplicates and Argon2id floor', async () => {
    const s = await signIn(h, 'acme', 'validate@acme.test');
    const gen = await generateBackupCodes(new Uint8Array(32), BACKUP_KDF_FLOOR);
    const base = wire(gen.slots);
    const cases: [object, string][] = [
      [{ slots: base.slots.slice(0, 7) }, 'ERR_BAD_REQUEST'],
      [{ slots: base.slots.map((x) => ({ ...x, slot: 1 })) }, 'ERR_IDENTITY_BACKUP_SLOTS_INVALID'],
      [
        { slots: base.slots.map((x, i) => (i === 0 ? { ...x, salt: b64(new Uint8Array(8)) } : x)) },
        'ERR_IDENTITY_MALFORMED',
      ],
      [
        {
          slots: base.slots.map((x) => ({
            ...x,
            params: { memoryKiB: 1024, passes: 1, parallelism: 1 },
          })),
        },
        'ERR_IDENTITY_BACKUP_SLOTS_INVALID',
      ],
      [
        { slots: base.slots.map((x) => ({ ...x, wrappedKey: b64(new Uint8Array(59)) })) },
        'ERR_IDENTITY_MALFORMED',
      ],
      [
        { slots: base.slots.map((x) => ({ ...x, authVerifier: 'not base64!' })) },
        'ERR_BAD_REQUEST',
      ],
    ];
    for (const [payload, code] of cases) {
      const r = await put(s.accessToken, payload);
      expect(r.statusCode).toBe(400);
      expect(json(r).code).toBe(code);
    }
    expect((await put('nope', base)).statusCode).toBe(401);
  });

  it('recovery params need a flow past the IdP; slots of unknown accounts are not revealed', async () => {
    expect(
      (await post('/signin/recovery/params', { flow: 'A'.repeat(43), slot: 1 })).statusCode,
    ).toBe(400);
    const { flow } = await flowAtMfa(h, 'acme', 'nocodes@acme.test');
    const r = await post('/signin/recovery/params', { flow, slot: 1 });
    expect(r.statusCode).toBe(401);
    expect(json(r).code).toBe('ERR_IDENTITY_BACKUP_CODE_INVALID');
  });

  it('publishes the first device after TOTP once; a recovery session may publish again', async () => {
    const e = await enrolled('device@acme.test');
    const key = b64(crypto.getRandomValues(new Uint8Array(32)));
    const devices = { devices: [{ deviceId: 'laptop-1', identityKey: key }] };
    const first = await post('/me/devices', devices, e.accessToken);
    expect(first.statusCode).toBe(200);
    expect(json(first)).toMatchObject({ authorization: 'first-device', receipt: { version: 1 } });
    expect(await h.devices.latest('acme', e.accountId)).toMatchObject({
      version: 1,
      kind: 'first-device',
    });
    // A second TOTP session may not add devices: that needs an existing device's approval.
    const { flow, accountId } = await flowAtMfa(h, 'acme', 'device@acme.test');
    const s2 = await completeWithTotp(h, 'acme', flow, accountId);
    const second = await post('/me/devices', devices, s2.accessToken);
    expect(second.statusCode).toBe(403);
    expect(json(second).code).toBe('ERR_IDENTITY_DEVICE_NOT_ALLOWED');
    // After a recovery, the new device can be published.
    const f = await flowAtMfa(h, 'acme', 'device@acme.test');
    const rec = json((await recover(f.flow, e.codes[1]!)).res);
    const phone = {
      devices: [
        { deviceId: 'laptop-1', identityKey: key },
        { deviceId: 'phone-1', identityKey: b64(new Uint8Array(32).fill(9)) },
      ],
    };
    const third = await post('/me/devices', phone, rec.accessToken);
    expect(json(third)).toMatchObject({ authorization: 'recovery', receipt: { version: 2 } });
    // Malformed keys are a 400, duplicate ids are refused by the directory (not a 500).
    const badKey = await post(
      '/me/devices',
      { devices: [{ deviceId: 'x', identityKey: b64(new Uint8Array(31)) }] },
      rec.accessToken,
    );
    expect(badKey.statusCode).toBe(400);
    const dup = await post(
      '/me/devices',
      {
        devices: [
          { deviceId: 'x', identityKey: key },
          { deviceId: 'x', identityKey: key },
        ],
      },
      rec.accessToken,
    );
    expect(dup.statusCode).toBe(503);
  });
});
