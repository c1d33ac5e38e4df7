/**
 * Server side of the escrowed backup codes (see `backup-code.ts` for the client side).
 *
 * The server stores, per slot, only `salt`, Argon2id parameters, the AEAD-wrapped archive key
 * and `SHA-256(AUTH)`. Recovery: the client reads a slot's salt and parameters (only inside a
 * sign-in flow that passed the IdP), derives AUTH locally and sends it; the server consumes
 * the slot by compare-and-swap on `SHA-256(AUTH)` — of two simultaneous uses exactly one
 * changes the row — and returns the wrapped key for the client to unwrap. AUTH and KEK are
 * independent HKDF outputs, so AUTH reveals nothing about the KEK.
 * @module
 */
import type { Queryable } from '@keytrail/server-kit';
import type { KdfParams } from './config.ts';
import { identityError } from './errors.ts';
import { BACKUP_CODE_COUNT, WRAPPED_KEY_BYTES, type BackupSlot } from './backup-code.ts';
import { constantTimeEqual, sha256 } from './secrets.ts';

/** Largest Argon2id cost accepted (so a client cannot make recovery a denial of service). */
export const BACKUP_KDF_CEILING: KdfParams = Object.freeze({
  memoryKiB: 1 << 21,
  passes: 10,
  parallelism: 8,
});

/**
 * Checks 8 uploaded slots: slots 1–8 once each, sizes exact, parameters within bounds.
 * @throws HttpError ERR_IDENTITY_BACKUP_SLOTS_INVALID
 */
export function checkSlots(slots: readonly BackupSlot[], floor: KdfParams): void {
  const bad = (why: string): Error => identityError('ERR_IDENTITY_BACKUP_SLOTS_INVALID', why);
  if (slots.length !== BACKUP_CODE_COUNT)
    throw bad(`exactly ${BACKUP_CODE_COUNT} slots are required`);
  const seen = new Set<number>();
  for (const s of slots) {
    if (!Number.isInteger(s.slot) || s.slot < 1 || s.slot > BACKUP_CODE_COUNT || seen.has(s.slot)) {
      throw bad('slots must be 1 to 8, each once');
    }
    seen.add(s.slot);
    if (s.salt.length !== 16) throw bad('salt must be 16 bytes');
    if (s.wrappedKey.length !== WRAPPED_KEY_BYTES)
      throw bad(`wrappedKey must be ${WRAPPED_KEY_BYTES} bytes`);
    if (s.authVerifier.length !== 32) throw bad('authVerifier must be 32 bytes');
    const p = s.params;
    if (
      p.memoryKiB < floor.memoryKiB ||
      p.passes < floor.passes ||
      p.parallelism < floor.parallelism ||
      p.memoryKiB > BACKUP_KDF_CEILING.memoryKiB ||
      p.passes > BACKUP_KDF_CEILING.passes ||
      p.parallelism > BACKUP_KDF_CEILING.parallelism ||
      p.memoryKiB < 8 * p.parallelism
    ) {
      throw bad('Argon2id parameters are outside the accepted range');
    }
  }
}

/** Replaces all of an account's slots (first registration or regeneration). */
export async function storeSlots(
  tx: Queryable,
  accountId: string,
  slots: readonly BackupSlot[],
  nowMs: number,
): Promise<number> {
  const g = await tx.query<{ generation: number }>(
    'SELECT COALESCE(MAX(generation), 0) + 1 AS generation FROM identity_backup_codes WHERE account_id = $1',
    [accountId],
  );
  const generation = g.rows[0]?.generation ?? 1;
  await tx.query('DELETE FROM identity_backup_codes WHERE account_id = $1', [accountId]);
  for (const s of slots) {
    await tx.query(
      `INSERT INTO identity_backup_codes (account_id, slot, generation, salt, kdf_params, wrapped_key, auth_verifier, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        accountId,
        s.slot,
        generation,
        s.salt,
        JSON.stringify(s.params),
        s.wrappedKey,
        s.authVerifier,
        new Date(nowMs),
      ],
    );
  }
  return generation;
}

/** Salt and parameters of an unused slot, so the client can derive AUTH and KEK. */
export async function slotParams(
  db: Queryable,
  accountId: string,
  slot: number,
): Promise<{ salt: Uint8Array; params: KdfParams }> {
  const r = await db.query<{ salt: Uint8Array; kdf_params: KdfParams }>(
    'SELECT salt, kdf_params FROM identity_backup_codes WHERE account_id = $1 AND slot = $2 AND consumed_at IS NULL',
    [accountId, slot],
  );
  const row = r.rows[0];
  if (!row) throw identityError('ERR_IDENTITY_BACKUP_CODE_INVALID', 'backup code not accepted');
  return { salt: row.salt, params: row.kdf_params };
}

/**
 * Consumes a slot when `auth` matches its verifier; returns the wrapped archive key. The
 * verifier comparison is in SQL on a 256-bit hash of attacker input (an equality lookup on a
 * hash leaks nothing useful) and repeated in constant time on the returned row.
 * @throws HttpError ERR_IDENTITY_BACKUP_CODE_INVALID (wrong, used, or lost the race)
 */
export async function consumeSlot(
  tx: Queryable,
  q: { accountId: string; slot: number; auth: Uint8Array; nowMs: number },
): Promise<{ wrappedKey: Uint8Array; remaining: number }> {
  const verifier = sha256(q.auth);
  const r = await tx.query<{ wrapped_key: Uint8Array; auth_verifier: Uint8Array }>(
    // The used slot's wrapped key is erased as it is handed out (row locked FOR UPDATE; a
    // concurrent use re-checks consumed_at after this commits and finds nothing).
    `WITH hit AS (
       SELECT account_id, slot, wrapped_key, auth_verifier FROM identity_backup_codes
       WHERE account_id = $1 AND slot = $2 AND auth_verifier = $3 AND consumed_at IS NULL
       FOR UPDATE)
     UPDATE identity_backup_codes b SET consumed_at = $4, wrapped_key = ''::bytea
     FROM hit WHERE b.account_id = hit.account_id AND b.slot = hit.slot
     RETURNING hit.wrapped_key, hit.auth_verifier`,
    [q.accountId, q.slot, verifier, new Date(q.nowMs)],
  );
  const row = r.rows[0];
  if (!row || !constantTimeEqual(row.auth_verifier, verifier)) {
    throw identityError('ERR_IDENTITY_BACKUP_CODE_INVALID', 'backup code not accepted');
  }
  const left = await tx.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM identity_backup_codes WHERE account_id = $1 AND consumed_at IS NULL',
    [q.accountId],
  );
  return { wrappedKey: row.wrapped_key, remaining: left.rows[0]?.n ?? 0 };
}

/** How many unused codes an account has, and their generation. */
export async function backupStatus(
  db: Queryable,
  accountId: string,
): Promise<{ remaining: number; generation: number | null }> {
  const r = await db.query<{ n: number; g: number | null }>(
    `SELECT count(*) FILTER (WHERE consumed_at IS NULL)::int AS n, MAX(generation) AS g
     FROM identity_backup_codes WHERE account_id = $1`,
    [accountId],
  );
  return { remaining: r.rows[0]?.n ?? 0, generation: r.rows[0]?.g ?? null };
}
