/**
 * Access and refresh tokens (notes-identity.md "Refresh rotation and access JWTs").
 *
 * - Access tokens: RFC 9068 JWTs (`typ: at+jwt`), EdDSA (Ed25519) via jose, 15 minutes, with
 *   `sid` (session) and `tid` (tenant). Verification pins `algorithms: ['EdDSA']`, issuer,
 *   audience and `typ`, then checks the session is live (revocation takes effect at once for
 *   identity routes). Keys live in `identity_signing_keys`, sealed under the data key, and
 *   are published as a JWKS (RFC 7517) with thumbprint `kid`s (RFC 7638).
 * - Refresh tokens: opaque 256-bit values, stored as SHA-256, 7 days, rotated on every use by
 *   compare-and-swap. Presenting a consumed token revokes the whole family (RFC 9700
 *   §4.14.2); a session is one family.
 * @module
 */
import { generateKeyPairSync, type KeyObject, createPrivateKey } from 'node:crypto';
import { SignJWT, jwtVerify, createLocalJWKSet, calculateJwkThumbprint, type JWK } from 'jose';
import type { Db, Queryable } from '@keytrail/server-kit';
import type { IdentityConfig } from './config.ts';
import { identityError } from './errors.ts';
import { open, randomId, randomToken, seal, sha256 } from './secrets.ts';
import { recordAudit } from './audit.ts';

/** Roles an account can hold. */
export type Role = 'admin' | 'member';

/** How the person authenticated (RFC 8176 values where they exist). */
export type AuthMethod = 'ext' | 'otp' | 'rec';

/** The claims identity puts in, and reads back from, an access token. */
export interface AccessClaims {
  readonly tenantId: string;
  readonly accountId: string;
  readonly sessionId: string;
  readonly roles: readonly Role[];
  readonly amr: readonly AuthMethod[];
}

/** What a successful sign-in or refresh returns. */
export interface TokenSet {
  readonly accessToken: string;
  readonly tokenType: 'Bearer';
  readonly expiresIn: number;
  readonly refreshToken: string;
  readonly sessionId: string;
}

interface ActiveKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
}

const ACCESS_AUDIENCE = 'keytrail';

/** Issues and checks tokens; one per process. */
export class TokenService {
  readonly #db: Db;
  readonly #config: IdentityConfig;
  readonly #clock: () => number;
  #active: Promise<ActiveKey> | undefined;
  #jwks: { keys: JWK[] } | undefined;

  constructor(db: Db, config: IdentityConfig, clock: () => number) {
    this.#db = db;
    this.#config = config;
    this.#clock = clock;
  }

  /** Issuer of access tokens: the identity base URL. */
  get issuer(): string {
    return `${this.#config.publicUrl}/identity`;
  }

  async #loadKeys(): Promise<ActiveKey> {
    const rows = await this.#db.query<{
      kid: string;
      private_jwk_enc: Uint8Array;
      public_jwk: JWK;
    }>(
      'SELECT kid, private_jwk_enc, public_jwk FROM identity_signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC',
    );
    let newest = rows.rows[0];
    if (!newest) {
      // First start: make a key. Two processes racing both insert; the newest row wins for
      // signing, and both keys are in the JWKS, so tokens from either verify.
      const { privateKey, publicKey } = generateKeyPairSync('ed25519');
      const pub = publicKey.export({ format: 'jwk' }) as JWK;
      const kid = await calculateJwkThumbprint(pub);
      const publicJwk: JWK = { ...pub, kid, alg: 'EdDSA', use: 'sig' };
      const priv = JSON.stringify(privateKey.export({ format: 'jwk' }));
      const enc = seal(this.#config.dataKey, new TextEncoder().encode(priv), `signing-key:${kid}`);
      await this.#db.query(
        `INSERT INTO identity_signing_keys (kid, private_jwk_enc, public_jwk, created_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT (kid) DO NOTHING`,
        [kid, enc, JSON.stringify(publicJwk), new Date(this.#clock())],
      );
      newest = { kid, private_jwk_enc: enc, public_jwk: publicJwk };
      rows.rows.unshift(newest);
    }
    this.#jwks = { keys: rows.rows.map((r) => r.public_jwk) };
    const plain = open(this.#config.dataKey, newest.private_jwk_enc, `signing-key:${newest.kid}`);
    if (!plain) throw new Error('identity: signing key does not open under KT_IDENTITY_DATA_KEY');
    const jwk = JSON.parse(new TextDecoder().decode(plain)) as JWK;
    return { kid: newest.kid, privateKey: createPrivateKey({ key: jwk as never, format: 'jwk' }) };
  }

  #key(): Promise<ActiveKey> {
    this.#active ??= this.#loadKeys().catch((err: unknown) => {
      this.#active = undefined;
      throw err;
    });
    return this.#active;
  }

  /** The public keys, as served at the JWKS endpoint. */
  async jwks(): Promise<{ keys: JWK[] }> {
    await this.#key();
    return this.#jwks ?? { keys: [] };
  }

  /** Signs an access token. */
  async issueAccessToken(c: AccessClaims): Promise<string> {
    const key = await this.#key();
    const now = Math.floor(this.#clock() / 1000);
    return new SignJWT({ tid: c.tenantId, sid: c.sessionId, roles: [...c.roles], amr: [...c.amr] })
      .setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: 'at+jwt' })
      .setIssuer(this.issuer)
      .setAudience(ACCESS_AUDIENCE)
      .setSubject(c.accountId)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + this.#config.accessTokenTtlSec)
      .setJti(randomId())
      .sign(key.privateKey);
  }

  /**
   * Verifies an access token's signature and claims, then that its session is live and its
   * account active.
   * @throws HttpError ERR_IDENTITY_UNAUTHENTICATED for anything wrong (one message for all).
   */
  async verifyAccessToken(token: string): Promise<AccessClaims> {
    const jwks = createLocalJWKSet(await this.jwks());
    let payload;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        algorithms: ['EdDSA'],
        issuer: this.issuer,
        audience: ACCESS_AUDIENCE,
        typ: 'at+jwt',
        currentDate: new Date(this.#clock()),
        requiredClaims: ['sub', 'exp', 'iat', 'jti'],
      }));
    } catch {
      throw identityError('ERR_IDENTITY_UNAUTHENTICATED', 'access token not valid');
    }
    const { sub, tid, sid, roles, amr } = payload as Record<string, unknown>;
    if (
      typeof sub !== 'string' ||
      typeof tid !== 'string' ||
      typeof sid !== 'string' ||
      !Array.isArray(roles) ||
      !Array.isArray(amr)
    ) {
      throw identityError('ERR_IDENTITY_UNAUTHENTICATED', 'access token not valid');
    }
    const live = await this.#db.query(
      `SELECT 1 FROM identity_sessions s JOIN identity_accounts a ON a.id = s.account_id
       WHERE s.id = $1 AND s.account_id = $2 AND s.tenant_id = $3 AND s.revoked_at IS NULL
         AND s.expires_at > $4 AND a.active`,
      [sid, sub, tid, new Date(this.#clock())],
    );
    if (live.rowCount !== 1) throw identityError('ERR_IDENTITY_UNAUTHENTICATED', 'session ended');
    return {
      tenantId: tid,
      accountId: sub,
      sessionId: sid,
      roles: roles.filter((r): r is Role => r === 'admin' || r === 'member'),
      amr: amr.filter((a): a is AuthMethod => a === 'ext' || a === 'otp' || a === 'rec'),
    };
  }

  /**
   * Starts a session (one refresh family) for a device and issues its first tokens. Runs in
   * the caller's transaction so that the second factor and the session commit together.
   */
  async startSession(
    tx: Queryable,
    s: {
      tenantId: string;
      accountId: string;
      roles: readonly Role[];
      amr: readonly AuthMethod[];
      deviceLabel?: string | undefined;
    },
  ): Promise<TokenSet> {
    const now = this.#clock();
    const sessionId = randomId();
    await tx.query(
      `INSERT INTO identity_sessions (id, tenant_id, account_id, device_label, amr, created_at, last_used_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $6, $7)`,
      [
        sessionId,
        s.tenantId,
        s.accountId,
        s.deviceLabel ?? null,
        s.amr,
        new Date(now),
        new Date(now + this.#config.sessionMaxSec * 1000),
      ],
    );
    const refreshToken = await this.#insertRefresh(tx, sessionId, null, now);
    return {
      accessToken: await this.issueAccessToken({ ...s, sessionId }),
      tokenType: 'Bearer',
      expiresIn: this.#config.accessTokenTtlSec,
      refreshToken,
      sessionId,
    };
  }

  async #insertRefresh(
    tx: Queryable,
    sessionId: string,
    parent: Uint8Array | null,
    now: number,
  ): Promise<string> {
    const token = randomToken();
    await tx.query(
      `INSERT INTO identity_refresh_tokens (hash, session_id, parent_hash, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5)`,
      [
        sha256(token),
        sessionId,
        parent,
        new Date(now),
        new Date(now + this.#config.refreshTokenTtlSec * 1000),
      ],
    );
    return token;
  }

  /**
   * Rotates a refresh token. A token already consumed revokes its whole family (RFC 9700
   * §4.14.2) and is audited; every failure gives the same error (RFC 6749 invalid_grant).
   * @throws HttpError ERR_IDENTITY_REFRESH_INVALID
   */
  async refresh(tenantId: string, token: string): Promise<TokenSet> {
    const hash = sha256(token); // attacker-controlled input: only its hash touches SQL
    const now = this.#clock();
    const outcome = await this.#db.transaction(async (tx) => {
      // Compare-and-swap: of two concurrent presentations exactly one sees consumed_at NULL.
      const r = await tx.query<{
        session_id: string;
        account_id: string;
        roles: Role[];
        amr: AuthMethod[];
      }>(
        `UPDATE identity_refresh_tokens rt SET consumed_at = $3
         FROM identity_sessions s JOIN identity_accounts a ON a.id = s.account_id
         WHERE rt.hash = $1 AND rt.session_id = s.id AND s.tenant_id = $2
           AND rt.consumed_at IS NULL AND rt.expires_at > $3
           AND s.revoked_at IS NULL AND s.expires_at > $3 AND a.active
         RETURNING s.id AS session_id, s.account_id, a.roles, s.amr`,
        [hash, tenantId, new Date(now)],
      );
      const row = r.rows[0];
      if (row) {
        await tx.query('UPDATE identity_sessions SET last_used_at = $2 WHERE id = $1', [
          row.session_id,
          new Date(now),
        ]);
        const next = await this.#insertRefresh(tx, row.session_id, hash, now);
        return { kind: 'ok' as const, row, next };
      }
      const seen = await tx.query<{
        session_id: string;
        account_id: string;
        consumed_at: Date | null;
      }>(
        `SELECT rt.session_id, s.account_id, rt.consumed_at FROM identity_refresh_tokens rt
         JOIN identity_sessions s ON s.id = rt.session_id
         WHERE rt.hash = $1 AND s.tenant_id = $2`,
        [hash, tenantId],
      );
      const old = seen.rows[0];
      if (old?.consumed_at) {
        const revoked = await tx.query(
          `UPDATE identity_sessions SET revoked_at = $2, revoked_reason = 'refresh_reuse'
           WHERE id = $1 AND revoked_at IS NULL`,
          [old.session_id, new Date(now)],
        );
        if (revoked.rowCount === 1) {
          await recordAudit(tx, now, {
            tenantId,
            event: 'token.refresh_reuse',
            actor: `account:${old.account_id}`,
            accountId: old.account_id,
            detail: { sessionId: old.session_id },
          });
        }
      }
      return { kind: 'invalid' as const };
    });
    if (outcome.kind === 'invalid') {
      throw identityError('ERR_IDENTITY_REFRESH_INVALID', 'refresh token not valid');
    }
    const { row, next } = outcome;
    return {
      accessToken: await this.issueAccessToken({
        tenantId,
        accountId: row.account_id,
        sessionId: row.session_id,
        roles: row.roles,
        amr: row.amr,
      }),
      tokenType: 'Bearer',
      expiresIn: this.#config.accessTokenTtlSec,
      refreshToken: next,
      sessionId: row.session_id,
    };
  }
}

/** Revokes one session (its refresh family); returns whether it was live. */
export async function revokeSession(
  tx: Queryable,
  q: { tenantId: string; accountId: string; sessionId: string; reason: string; nowMs: number },
): Promise<boolean> {
  const r = await tx.query(
    `UPDATE identity_sessions SET revoked_at = $4, revoked_reason = $5
     WHERE id = $1 AND account_id = $2 AND tenant_id = $3 AND revoked_at IS NULL`,
    [q.sessionId, q.accountId, q.tenantId, new Date(q.nowMs), q.reason],
  );
  return r.rowCount === 1;
}

/** Revokes every session of an account; returns how many were live. */
export async function revokeAllSessions(
  tx: Queryable,
  q: { tenantId: string; accountId: string; reason: string; nowMs: number },
): Promise<number> {
  const r = await tx.query(
    `UPDATE identity_sessions SET revoked_at = $3, revoked_reason = $4
     WHERE account_id = $1 AND tenant_id = $2 AND revoked_at IS NULL`,
    [q.accountId, q.tenantId, new Date(q.nowMs), q.reason],
  );
  return r.rowCount;
}
