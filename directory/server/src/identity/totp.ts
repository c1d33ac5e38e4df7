/**
 * TOTP (RFC 6238) with otplib v13: enrolment (otpauth URI and a QR PNG data URL), required
 * after the first sign-in; verification accepting each code once and locking the account's
 * second factor after repeated failures.
 *
 * Single use: the last accepted time step is stored and a code is accepted only through
 * `UPDATE … WHERE totp_last_step < $step` — of two concurrent uses of one code exactly one
 * changes the row (compare-and-swap). otplib's `afterTimeStep` rejects older steps before
 * that. Tolerance: ±30 s (one step each way, RFC 6238 §5.2).
 * @module
 */
import { generateSecret, generateURI, verify, type HashAlgorithm } from 'otplib';
import QRCode from 'qrcode';
import type { Queryable } from '@keytrail/server-kit';
import type { IdentityConfig } from './config.ts';
import { identityError } from './errors.ts';
import { open, seal } from './secrets.ts';
import { recordAudit } from './audit.ts';

/** RFC 6238 time step, seconds. */
export const TOTP_PERIOD = 30;
/** Digits shown by authenticator apps. */
export const TOTP_DIGITS = 6;
/** Seed length (otplib requires ≥ 16; RFC 4226 §4 recommends 160 bits). */
export const TOTP_SECRET_BYTES = 20;
/** Accepted clock difference, seconds (one step either way). */
export const TOTP_TOLERANCE_SEC = 30;

/** Result of checking one code against one seed. */
export type TotpCheck =
  { readonly valid: false } | { readonly valid: true; readonly timeStep: number };

/**
 * Checks `code` against a seed (Base32 text or raw bytes) at `nowSec`, rejecting time steps ≤ `afterTimeStep`.
 * Never throws on malformed codes (attacker-controlled): they are simply not valid.
 */
export async function checkTotp(
  secret: string | Uint8Array,
  code: string,
  nowSec: number,
  afterTimeStep: number,
  options: { algorithm?: HashAlgorithm; digits?: 6 | 7 | 8; toleranceSec?: number } = {},
): Promise<TotpCheck> {
  const digits = options.digits ?? TOTP_DIGITS;
  if (code.length !== digits || !/^\d+$/.test(code)) return { valid: false };
  try {
    const r = await verify({
      secret,
      token: code,
      algorithm: options.algorithm ?? 'sha1',
      digits,
      period: TOTP_PERIOD,
      epoch: nowSec,
      epochTolerance: options.toleranceSec ?? TOTP_TOLERANCE_SEC,
      ...(afterTimeStep >= 0 ? { afterTimeStep } : {}),
    });
    return r.valid && 'timeStep' in r ? { valid: true, timeStep: r.timeStep } : { valid: false };
  } catch {
    return { valid: false };
  }
}

/** What enrolment shows the person. */
export interface TotpEnrolment {
  readonly otpauthUri: string;
  /** PNG of the URI as a `data:image/png;base64,…` URL. */
  readonly qrDataUrl: string;
}

interface TotpRow {
  totp_secret_enc: Uint8Array | null;
  totp_pending_enc: Uint8Array | null;
  totp_enabled_at: Date | null;
  totp_last_step: number;
  totp_locked_until: Date | null;
}

/** TOTP enrolment and verification for accounts. */
export class TotpService {
  readonly #config: IdentityConfig;

  constructor(config: IdentityConfig) {
    this.#config = config;
  }

  #aad(accountId: string): string {
    return `totp:${accountId}`;
  }

  /** Starts (or restarts) enrolment: a fresh seed, stored sealed as pending. */
  async startEnrolment(
    tx: Queryable,
    account: { id: string; username: string },
  ): Promise<TotpEnrolment> {
    const secret = generateSecret({ length: TOTP_SECRET_BYTES });
    const sealed = seal(
      this.#config.dataKey,
      new TextEncoder().encode(secret),
      this.#aad(account.id),
    );
    const r = await tx.query(
      'UPDATE identity_accounts SET totp_pending_enc = $2 WHERE id = $1 AND totp_enabled_at IS NULL',
      [account.id, sealed],
    );
    if (r.rowCount !== 1)
      throw identityError('ERR_IDENTITY_TOTP_STATE', 'TOTP is already enrolled');
    const otpauthUri = generateURI({
      issuer: this.#config.totpIssuer,
      label: account.username,
      secret,
      algorithm: 'sha1',
      digits: TOTP_DIGITS,
      period: TOTP_PERIOD,
    });
    const qrDataUrl = await QRCode.toDataURL(otpauthUri, { errorCorrectionLevel: 'M', margin: 2 });
    return { otpauthUri, qrDataUrl };
  }

  /**
   * Checks a code for the account: confirms a pending enrolment, or verifies an enrolled seed.
   * Accepts each code once; counts failures and locks after `totpMaxFailures`.
   * @returns `'enrolled'` when this code completed enrolment, else `'verified'`.
   * @throws HttpError ERR_IDENTITY_TOTP_INVALID, ERR_IDENTITY_TOTP_LOCKED, ERR_IDENTITY_TOTP_STATE
   */
  async check(
    db: Queryable,
    q: { tenantId: string; accountId: string; code: string; nowMs: number },
  ): Promise<'enrolled' | 'verified'> {
    const now = new Date(q.nowMs);
    const r = await db.query<TotpRow>(
      `SELECT totp_secret_enc, totp_pending_enc, totp_enabled_at, totp_last_step, totp_locked_until
       FROM identity_accounts WHERE id = $1 AND tenant_id = $2`,
      [q.accountId, q.tenantId],
    );
    const row = r.rows[0];
    if (!row) throw identityError('ERR_IDENTITY_NOT_FOUND', 'no such account');
    if (row.totp_locked_until && row.totp_locked_until > now) {
      throw this.#locked(row.totp_locked_until, q.nowMs);
    }
    const enrolling = row.totp_enabled_at === null;
    const sealed = enrolling ? row.totp_pending_enc : row.totp_secret_enc;
    if (!sealed) throw identityError('ERR_IDENTITY_TOTP_STATE', 'TOTP enrolment has not started');
    const plain = open(this.#config.dataKey, sealed, this.#aad(q.accountId));
    if (!plain) throw new Error('identity: TOTP seed does not open under KT_IDENTITY_DATA_KEY');
    const secret = new TextDecoder().decode(plain);
    const result = await checkTotp(secret, q.code, Math.floor(q.nowMs / 1000), row.totp_last_step);
    if (result.valid) {
      // The compare-and-swap that makes each code single-use, whatever else runs concurrently.
      const won = await db.query(
        enrolling
          ? `UPDATE identity_accounts SET totp_secret_enc = totp_pending_enc, totp_pending_enc = NULL,
               totp_enabled_at = $3, totp_last_step = $2, totp_failures = 0
             WHERE id = $1 AND totp_last_step < $2 AND totp_enabled_at IS NULL AND totp_pending_enc = $4`
          : `UPDATE identity_accounts SET totp_last_step = $2, totp_failures = 0
             WHERE id = $1 AND totp_last_step < $2 AND totp_enabled_at IS NOT NULL
               AND (totp_locked_until IS NULL OR totp_locked_until <= $3)`,
        enrolling
          ? [q.accountId, result.timeStep, now, sealed]
          : [q.accountId, result.timeStep, now],
      );
      if (won.rowCount === 1) {
        if (enrolling) {
          await recordAudit(db, q.nowMs, {
            tenantId: q.tenantId,
            event: 'totp.enrolled',
            actor: `account:${q.accountId}`,
            accountId: q.accountId,
          });
        }
        return enrolling ? 'enrolled' : 'verified';
      }
    }
    await this.recordFailure(db, q);
    throw identityError('ERR_IDENTITY_TOTP_INVALID', 'code not accepted');
  }

  /**
   * Counts one failure (committed even though the request fails: call it on the pool, or in a
   * transaction that commits) and locks the second factor at the limit.
   */
  async recordFailure(
    db: Queryable,
    q: { tenantId: string; accountId: string; nowMs: number },
  ): Promise<void> {
    const until = new Date(q.nowMs + this.#config.totpLockoutSec * 1000);
    const r = await db.query<{ locked: boolean }>(
      `UPDATE identity_accounts SET
         totp_failures = CASE WHEN totp_failures + 1 >= $2 THEN 0 ELSE totp_failures + 1 END,
         totp_locked_until = CASE WHEN totp_failures + 1 >= $2 THEN $3 ELSE totp_locked_until END
       WHERE id = $1 RETURNING (totp_locked_until = $3) AS locked`,
      [q.accountId, this.#config.totpMaxFailures, until],
    );
    const locked = r.rows[0]?.locked === true;
    await recordAudit(db, q.nowMs, {
      tenantId: q.tenantId,
      event: locked ? 'totp.locked' : 'totp.failed',
      actor: `account:${q.accountId}`,
      accountId: q.accountId,
    });
  }

  #locked(until: Date, nowMs: number): Error {
    const retry = Math.max(1, Math.ceil((until.getTime() - nowMs) / 1000));
    return identityError('ERR_IDENTITY_TOTP_LOCKED', 'too many failed codes; try again later', {
      'retry-after': String(retry),
    });
  }
}
