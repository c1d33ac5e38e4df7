/**
 * Routes for a signed-in person: their account, sessions per device, backup-code slots
 * (register or regenerate), and the device registration that identity may authorise — the
 * first device after TOTP, or a device after a recovery. Later devices are approved by an
 * existing device through the directory's own signed device-list updates.
 * @module
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { IdentityContext } from './context.ts';
import { decodeB64url, requireAccess } from './context.ts';
import { HttpError } from '@keytrail/server-kit';
import { identityError } from './errors.ts';
import { getAccount } from './accounts.ts';
import { recordAudit } from './audit.ts';
import { backupStatus, checkSlots, storeSlots } from './recovery.ts';
import { revokeSession } from './tokens.ts';
import type { BackupSlot } from './backup-code.ts';
import type { DeviceAuthorization, DeviceEntry, DeviceReceipt } from './device-directory.ts';
import {
  B64url,
  DeviceSchema,
  ErrorBody,
  KdfParamsSchema,
  ReceiptSchema,
  RoleSchema,
  RowId,
  TenantParams,
  TenantId,
} from './schemas.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody };

/** Registers the routes under `/t/:tenant/me`. */
export function meRoutes(app: FastifyInstance, ctx: IdentityContext): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get(
    '/t/:tenant/me',
    {
      schema: {
        params: TenantParams,
        response: {
          200: Type.Object({
            id: Type.String(),
            username: Type.String(),
            roles: Type.Array(RoleSchema),
            totpEnabled: Type.Boolean(),
            firstDevicePublished: Type.Boolean(),
            backupCodes: Type.Object({
              remaining: Type.Integer(),
              generation: Type.Union([Type.Integer(), Type.Null()]),
            }),
            session: Type.Object({ id: Type.String(), amr: Type.Array(Type.String()) }),
          }),
          ...errors,
        },
      },
    },
    async (req) => {
      const claims = await requireAccess(ctx, req, req.params.tenant);
      const account = await getAccount(ctx.db, claims.tenantId, claims.accountId);
      if (!account) throw identityError('ERR_IDENTITY_NOT_FOUND', 'no such account');
      const dev = await ctx.db.query<{ published: boolean }>(
        'SELECT first_device_published_at IS NOT NULL AS published FROM identity_accounts WHERE id = $1',
        [account.id],
      );
      return {
        id: account.id,
        username: account.username,
        roles: account.roles,
        totpEnabled: account.totpEnabled,
        firstDevicePublished: dev.rows[0]?.published === true,
        backupCodes: await backupStatus(ctx.db, account.id),
        session: { id: claims.sessionId, amr: [...claims.amr] },
      };
    },
  );

  r.get(
    '/t/:tenant/me/sessions',
    {
      schema: {
        params: TenantParams,
        response: {
          200: Type.Object({
            sessions: Type.Array(
              Type.Object({
                id: Type.String(),
                deviceLabel: Type.Union([Type.String(), Type.Null()]),
                amr: Type.Array(Type.String()),
                createdAt: Type.String(),
                lastUsedAt: Type.String(),
                current: Type.Boolean(),
              }),
            ),
          }),
          ...errors,
        },
      },
    },
    async (req) => {
      const claims = await requireAccess(ctx, req, req.params.tenant);
      const rows = await ctx.db.query<{
        id: string;
        device_label: string | null;
        amr: string[];
        created_at: Date;
        last_used_at: Date;
      }>(
        `SELECT id, device_label, amr, created_at, last_used_at FROM identity_sessions
         WHERE account_id = $1 AND tenant_id = $2 AND revoked_at IS NULL AND expires_at > $3
         ORDER BY created_at`,
        [claims.accountId, claims.tenantId, new Date(ctx.clock())],
      );
      return {
        sessions: rows.rows.map((s) => ({
          id: s.id,
          deviceLabel: s.device_label,
          amr: s.amr,
          createdAt: s.created_at.toISOString(),
          lastUsedAt: s.last_used_at.toISOString(),
          current: s.id === claims.sessionId,
        })),
      };
    },
  );

  r.delete(
    '/t/:tenant/me/sessions/:session',
    {
      schema: {
        params: Type.Object({ tenant: TenantId, session: RowId }),
        response: { 200: Type.Object({ revoked: Type.Boolean() }), ...errors },
      },
    },
    async (req) => {
      const claims = await requireAccess(ctx, req, req.params.tenant);
      const now = ctx.clock();
      const revoked = await revokeSession(ctx.db, {
        tenantId: claims.tenantId,
        accountId: claims.accountId,
        sessionId: req.params.session,
        reason: 'revoked_by_user',
        nowMs: now,
      });
      if (!revoked) throw identityError('ERR_IDENTITY_NOT_FOUND', 'no such session');
      await recordAudit(ctx.db, now, {
        tenantId: claims.tenantId,
        event: 'session.revoked',
        actor: `account:${claims.accountId}`,
        accountId: claims.accountId,
        detail: { sessionId: req.params.session },
      });
      return { revoked };
    },
  );

  const BackupStatus = Type.Object({
    remaining: Type.Integer(),
    generation: Type.Union([Type.Integer(), Type.Null()]),
  });

  r.get(
    '/t/:tenant/me/backup-codes',
    { schema: { params: TenantParams, response: { 200: BackupStatus, ...errors } } },
    async (req) => {
      const claims = await requireAccess(ctx, req, req.params.tenant);
      return backupStatus(ctx.db, claims.accountId);
    },
  );

  r.put(
    '/t/:tenant/me/backup-codes',
    {
      schema: {
        params: TenantParams,
        body: Type.Object(
          {
            slots: Type.Array(
              Type.Object(
                {
                  slot: Type.Integer({ minimum: 1, maximum: 8 }),
                  salt: B64url(22),
                  params: KdfParamsSchema,
                  wrappedKey: B64url(80),
                  authVerifier: B64url(43),
                },
                { additionalProperties: false },
              ),
              { minItems: 8, maxItems: 8 },
            ),
          },
          { additionalProperties: false },
        ),
        response: { 200: BackupStatus, ...errors },
      },
    },
    async (req) => {
      const claims = await requireAccess(ctx, req, req.params.tenant);
      const slots: BackupSlot[] = req.body.slots.map((s) => ({
        slot: s.slot,
        salt: decodeB64url(s.salt, 16, 'salt'),
        params: s.params,
        wrappedKey: decodeB64url(s.wrappedKey, 60, 'wrappedKey'),
        authVerifier: decodeB64url(s.authVerifier, 32, 'authVerifier'),
      }));
      checkSlots(slots, ctx.config.backupKdfFloor);
      const now = ctx.clock();
      const generation = await ctx.db.transaction(async (tx) => {
        const g = await storeSlots(tx, claims.accountId, slots, now);
        await recordAudit(tx, now, {
          tenantId: claims.tenantId,
          event: 'backup.registered',
          actor: `account:${claims.accountId}`,
          accountId: claims.accountId,
          detail: { generation: g },
        });
        return g;
      });
      return { remaining: slots.length, generation };
    },
  );

  r.post(
    '/t/:tenant/me/devices',
    {
      schema: {
        params: TenantParams,
        body: Type.Object(
          { devices: Type.Array(DeviceSchema, { minItems: 1, maxItems: 16 }) },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({ authorization: Type.String(), receipt: ReceiptSchema }),
          503: ErrorBody,
          ...errors,
        },
      },
    },
    async (req) => {
      const claims = await requireAccess(ctx, req, req.params.tenant);
      const devices: DeviceEntry[] = req.body.devices.map((d) => ({
        deviceId: d.deviceId,
        identityKey: decodeB64url(d.identityKey, 32, 'identityKey'),
        ...(d.x25519Key !== undefined
          ? { x25519Key: decodeB64url(d.x25519Key, 32, 'x25519Key') }
          : {}),
      }));
      const account = await getAccount(ctx.db, claims.tenantId, claims.accountId);
      if (!account) throw identityError('ERR_IDENTITY_NOT_FOUND', 'no such account');
      const now = ctx.clock();
      let authorization: DeviceAuthorization;
      let claimedFirst = false;
      if (claims.amr.includes('rec')) {
        authorization = { kind: 'recovery', sessionId: claims.sessionId };
      } else if (claims.amr.includes('otp')) {
        // Compare-and-swap: only one session ever registers the first device.
        const first = await ctx.db.query(
          `UPDATE identity_accounts SET first_device_published_at = $2
           WHERE id = $1 AND first_device_published_at IS NULL AND active`,
          [account.id, new Date(now)],
        );
        if (first.rowCount !== 1) {
          throw identityError(
            'ERR_IDENTITY_DEVICE_NOT_ALLOWED',
            'further devices need approval by an existing device',
          );
        }
        claimedFirst = true;
        authorization = { kind: 'first-device', sessionId: claims.sessionId };
      } else {
        throw identityError('ERR_IDENTITY_DEVICE_NOT_ALLOWED', 'a second factor is required');
      }
      let receipt: DeviceReceipt;
      try {
        receipt = await ctx.devices.publishDevices(
          { tenantId: account.tenantId, accountId: account.id, username: account.username },
          devices,
          authorization,
        );
      } catch (err) {
        if (claimedFirst) {
          await ctx.db.query(
            'UPDATE identity_accounts SET first_device_published_at = NULL WHERE id = $1',
            [account.id],
          );
        }
        // The directory's own refusal (a malformed list) passes through; anything else is a 503.
        if (err instanceof HttpError && err.statusCode < 500) throw err;
        throw identityError(
          'ERR_IDENTITY_DIRECTORY_UNAVAILABLE',
          'the directory did not accept the device list',
        );
      }
      if (authorization.kind === 'recovery') {
        await ctx.db.query(
          'UPDATE identity_accounts SET first_device_published_at = COALESCE(first_device_published_at, $2) WHERE id = $1',
          [account.id, new Date(now)],
        );
      }
      await recordAudit(ctx.db, now, {
        tenantId: account.tenantId,
        event:
          authorization.kind === 'recovery'
            ? 'device.recovery_published'
            : 'device.first_published',
        actor: `account:${account.id}`,
        accountId: account.id,
        detail: { version: receipt.version, reference: receipt.reference, devices: devices.length },
      });
      return {
        authorization: authorization.kind,
        receipt: { version: receipt.version, reference: receipt.reference },
      };
    },
  );
}
