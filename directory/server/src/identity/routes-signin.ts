/**
 * Sign-in routes: list a tenant's IdPs, start a flow, the OIDC callback and the SAML ACS, the
 * second factor (TOTP enrolment and verification, or recovery with a backup code), refresh,
 * logout and the JWKS. The state machine is in `flows.ts`; see IDENTITY.md for the sequence.
 * @module
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { IdentityContext } from './context.ts';
import { b64url, decodeB64url, requireAccess } from './context.ts';
import { identityError } from './errors.ts';
import { getIdp, listIdps } from './idps.ts';
import {
  advanceFlow,
  countFlowFailure,
  createFlow,
  flowById,
  flowBySecret,
  type Flow,
} from './flows.ts';
import { completeOidc, startOidc } from './oidc.ts';
import {
  claimSamlRequest,
  completeSaml,
  newSamlRequestId,
  samlMetadata,
  startSaml,
} from './saml.ts';
import { HttpError, type Queryable } from '@keytrail/server-kit';
import { getAccount, resolveSignIn, type AccountRow, type IdpIdentity } from './accounts.ts';
import { recordAudit } from './audit.ts';
import { backupStatus, consumeSlot, slotParams } from './recovery.ts';
import { revokeSession, type AuthMethod } from './tokens.ts';
import {
  DeviceLabel,
  ErrorBody,
  IdpParams,
  KdfParamsSchema,
  Secret,
  SigninStep,
  SigninTokens,
  TenantParams,
  Tokens,
  B64url,
} from './schemas.ts';

const errors = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  429: ErrorBody,
};

/** Registers the sign-in routes on an encapsulated instance. */
export function signinRoutes(app: FastifyInstance, ctx: IdentityContext): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  async function afterIdp(
    flow: Flow,
    who: IdpIdentity,
    claim?: (tx: Queryable, now: number) => Promise<void>,
  ): Promise<{ account: AccountRow; recoveryAvailable: boolean }> {
    const now = ctx.clock();
    const account = await ctx.db.transaction(async (tx) => {
      // First, so that a concurrent duplicate blocks on the same row and then finds it used.
      if (claim) await claim(tx, now);
      const a = await resolveSignIn(tx, who, now);
      await advanceFlow(tx, { id: flow.id, from: 'idp', to: 'mfa', accountId: a.id });
      await recordAudit(tx, now, {
        tenantId: who.tenantId,
        event: 'signin.idp',
        actor: `account:${a.id}`,
        accountId: a.id,
        detail: { idp: who.idpId },
      });
      return a;
    });
    const backup = await backupStatus(ctx.db, account.id);
    return { account, recoveryAvailable: account.totpEnabled && backup.remaining > 0 };
  }

  async function idpFailed(tenantId: string, idpId: string, err: unknown): Promise<never> {
    const code =
      typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'ERR_INTERNAL';
    await recordAudit(ctx.db, ctx.clock(), {
      tenantId,
      event: 'signin.idp_failed',
      actor: `idp:${idpId}`,
      detail: { code },
    });
    throw err;
  }

  function step(flow: Flow, res: { account: AccountRow; recoveryAvailable: boolean }) {
    return {
      flowId: flow.id,
      next: res.account.totpEnabled ? ('totp' as const) : ('totp_enroll' as const),
      recoveryAvailable: res.recoveryAvailable,
      account: { id: res.account.id, username: res.account.username, roles: res.account.roles },
    };
  }

  r.get(
    '/t/:tenant/idps',
    {
      schema: {
        params: TenantParams,
        response: {
          200: Type.Object({
            idps: Type.Array(
              Type.Object({ id: Type.String(), name: Type.String(), kind: Type.String() }),
            ),
          }),
          ...errors,
        },
      },
    },
    async (req) => {
      const idps = await listIdps(ctx.db, ctx.config, req.params.tenant);
      return { idps: idps.map((i) => ({ id: i.id, name: i.name, kind: i.kind })) };
    },
  );

  r.post(
    '/t/:tenant/idps/:idp/start',
    {
      schema: {
        params: IdpParams,
        response: {
          200: Type.Object({
            flow: Type.String(),
            flowId: Type.String(),
            redirectUrl: Type.String(),
          }),
          502: ErrorBody,
          ...errors,
        },
      },
    },
    async (req) => {
      const { tenant, idp: idpId } = req.params;
      const idp = await getIdp(ctx.db, ctx.config, tenant, idpId);
      const now = ctx.clock();
      if (idp.kind === 'oidc') {
        const { url, state } = await startOidc(ctx.oidc, idp);
        const flow = await createFlow(ctx.db, {
          tenantId: tenant,
          idpId,
          state,
          nowMs: now,
          ttlSec: ctx.config.flowTtlSec,
        });
        return { flow: flow.secret, flowId: flow.id, redirectUrl: url };
      }
      const requestId = newSamlRequestId();
      const flow = await createFlow(ctx.db, {
        tenantId: tenant,
        idpId,
        state: { requestId },
        nowMs: now,
        ttlSec: ctx.config.flowTtlSec,
      });
      const url = await startSaml(ctx.db, ctx.config, idp, ctx.clock, { id: flow.id, requestId });
      return { flow: flow.secret, flowId: flow.id, redirectUrl: url };
    },
  );

  r.post(
    '/t/:tenant/idps/:idp/oidc/callback',
    {
      schema: {
        params: IdpParams,
        body: Type.Object(
          { flow: Secret, callbackUrl: Type.String({ maxLength: 8192 }) },
          { additionalProperties: false },
        ),
        response: { 200: SigninStep, 502: ErrorBody, ...errors },
      },
    },
    async (req) => {
      const { tenant, idp: idpId } = req.params;
      const flow = await flowBySecret(ctx.db, {
        tenantId: tenant,
        secret: req.body.flow,
        stage: 'idp',
        nowMs: ctx.clock(),
      });
      // The flow is bound to one IdP link: a response for another IdP of any tenant is refused here.
      if (flow.idpId !== idpId)
        throw identityError('ERR_IDENTITY_FLOW_INVALID', 'sign-in flow not valid');
      const idp = await getIdp(ctx.db, ctx.config, tenant, idpId);
      if (idp.kind !== 'oidc')
        throw identityError('ERR_IDENTITY_FLOW_INVALID', 'sign-in flow not valid');
      let who: IdpIdentity;
      try {
        who = await completeOidc(ctx.oidc, idp, flow.state, req.body.callbackUrl);
      } catch (err) {
        // A failed callback kills the flow: state, nonce and verifier are single-use.
        await ctx.db.query(
          `UPDATE identity_flows SET stage = 'failed' WHERE id = $1 AND stage = 'idp'`,
          [flow.id],
        );
        return idpFailed(tenant, idpId, err);
      }
      return step(flow, await afterIdp(flow, who));
    },
  );

  r.post(
    '/t/:tenant/idps/:idp/saml/acs',
    {
      schema: {
        params: IdpParams,
        body: Type.Object({
          SAMLResponse: Type.String({ maxLength: 262_144 }),
          RelayState: Type.String({ maxLength: 80 }),
        }),
        response: { 200: SigninStep, ...errors },
      },
    },
    async (req) => {
      const { tenant, idp: idpId } = req.params;
      const flow = await flowById(ctx.db, {
        tenantId: tenant,
        idpId,
        id: req.body.RelayState,
        nowMs: ctx.clock(),
      });
      const idp = await getIdp(ctx.db, ctx.config, tenant, idpId);
      const requestId = flow.state['requestId'];
      if (idp.kind !== 'saml' || !requestId)
        throw identityError('ERR_IDENTITY_FLOW_INVALID', 'sign-in flow not valid');
      try {
        const who = await completeSaml(
          ctx.db,
          ctx.config,
          idp,
          ctx.clock,
          { requestId },
          req.body.SAMLResponse,
        );
        return step(
          flow,
          await afterIdp(flow, who, (tx, now) => claimSamlRequest(tx, idp.id, requestId, now)),
        );
      } catch (err) {
        if (err instanceof HttpError && err.code === 'ERR_IDENTITY_SAML_REJECTED') {
          await ctx.db.query(
            `UPDATE identity_flows SET stage = 'failed' WHERE id = $1 AND stage = 'idp'`,
            [flow.id],
          );
          return idpFailed(tenant, idpId, err);
        }
        throw err;
      }
    },
  );

  r.get(
    '/t/:tenant/idps/:idp/saml/metadata',
    { schema: { params: IdpParams, response: { 200: Type.String(), ...errors } } },
    async (req, reply) => {
      const idp = await getIdp(ctx.db, ctx.config, req.params.tenant, req.params.idp);
      if (idp.kind !== 'saml')
        throw identityError('ERR_IDENTITY_NOT_FOUND', 'not a SAML identity provider');
      void reply.type('application/samlmetadata+xml');
      return samlMetadata(ctx.db, ctx.config, idp, ctx.clock);
    },
  );

  async function mfaFlow(
    tenant: string,
    secret: string,
  ): Promise<{ flow: Flow; account: AccountRow }> {
    const flow = await flowBySecret(ctx.db, {
      tenantId: tenant,
      secret,
      stage: 'mfa',
      nowMs: ctx.clock(),
    });
    const account = flow.accountId ? await getAccount(ctx.db, tenant, flow.accountId) : undefined;
    if (!account) throw identityError('ERR_IDENTITY_FLOW_INVALID', 'sign-in flow not valid');
    if (!account.active)
      throw identityError('ERR_IDENTITY_ACCOUNT_DISABLED', 'this account is deactivated');
    return { flow, account };
  }

  r.post(
    '/t/:tenant/signin/totp/enroll',
    {
      schema: {
        params: TenantParams,
        body: Type.Object({ flow: Secret }, { additionalProperties: false }),
        response: {
          200: Type.Object({ otpauthUri: Type.String(), qrDataUrl: Type.String() }),
          ...errors,
        },
      },
    },
    async (req) => {
      const { account } = await mfaFlow(req.params.tenant, req.body.flow);
      return ctx.totp.startEnrolment(ctx.db, account);
    },
  );

  r.post(
    '/t/:tenant/signin/totp',
    {
      schema: {
        params: TenantParams,
        body: Type.Object(
          {
            flow: Secret,
            code: Type.String({ maxLength: 10 }),
            deviceLabel: Type.Optional(DeviceLabel),
          },
          { additionalProperties: false },
        ),
        response: { 200: SigninTokens, ...errors },
      },
    },
    async (req) => {
      const { tenant } = req.params;
      const { flow, account } = await mfaFlow(tenant, req.body.flow);
      try {
        await ctx.totp.check(ctx.db, {
          tenantId: tenant,
          accountId: account.id,
          code: req.body.code,
          nowMs: ctx.clock(),
        });
      } catch (err) {
        await countFlowFailure(ctx.db, flow.id);
        throw err;
      }
      return finish(flow, account, ['ext', 'otp'], req.body.deviceLabel);
    },
  );

  r.post(
    '/t/:tenant/signin/recovery/params',
    {
      schema: {
        params: TenantParams,
        body: Type.Object(
          { flow: Secret, slot: Type.Integer({ minimum: 1, maximum: 8 }) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ salt: Type.String(), params: KdfParamsSchema }), ...errors },
      },
    },
    async (req) => {
      const { account } = await mfaFlow(req.params.tenant, req.body.flow);
      const p = await slotParams(ctx.db, account.id, req.body.slot);
      return { salt: b64url(p.salt), params: p.params };
    },
  );

  r.post(
    '/t/:tenant/signin/recovery',
    {
      schema: {
        params: TenantParams,
        body: Type.Object(
          {
            flow: Secret,
            slot: Type.Integer({ minimum: 1, maximum: 8 }),
            auth: B64url(43),
            deviceLabel: Type.Optional(DeviceLabel),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            ...SigninTokens.properties,
            wrappedArchiveKey: Type.String(),
            backupCodesRemaining: Type.Integer(),
          }),
          ...errors,
        },
      },
    },
    async (req) => {
      const { tenant } = req.params;
      const auth = decodeB64url(req.body.auth, 32, 'auth');
      const { flow, account } = await mfaFlow(tenant, req.body.flow);
      const now = ctx.clock();
      try {
        return await ctx.db.transaction(async (tx) => {
          const used = await consumeSlot(tx, {
            accountId: account.id,
            slot: req.body.slot,
            auth,
            nowMs: now,
          });
          await advanceFlow(tx, { id: flow.id, from: 'mfa', to: 'done' });
          const tokens = await ctx.tokens.startSession(tx, {
            tenantId: tenant,
            accountId: account.id,
            roles: account.roles,
            amr: ['ext', 'rec'],
            deviceLabel: req.body.deviceLabel,
          });
          await recordAudit(tx, now, {
            tenantId: tenant,
            event: 'backup.recovered',
            actor: `account:${account.id}`,
            accountId: account.id,
            detail: { slot: req.body.slot, remaining: used.remaining, sessionId: tokens.sessionId },
          });
          return {
            ...tokens,
            account: { id: account.id, username: account.username, roles: account.roles },
            wrappedArchiveKey: b64url(used.wrappedKey),
            backupCodesRemaining: used.remaining,
          };
        });
      } catch (err) {
        if (
          err instanceof Error &&
          'code' in err &&
          err.code === 'ERR_IDENTITY_BACKUP_CODE_INVALID'
        ) {
          await countFlowFailure(ctx.db, flow.id);
          await recordAudit(ctx.db, now, {
            tenantId: tenant,
            event: 'backup.failed',
            actor: `account:${account.id}`,
            accountId: account.id,
            detail: { slot: req.body.slot },
          });
        }
        throw err;
      }
    },
  );

  async function finish(
    flow: Flow,
    account: AccountRow,
    amr: AuthMethod[],
    deviceLabel: string | undefined,
  ) {
    const now = ctx.clock();
    return ctx.db.transaction(async (tx) => {
      await advanceFlow(tx, { id: flow.id, from: 'mfa', to: 'done' });
      const tokens = await ctx.tokens.startSession(tx, {
        tenantId: account.tenantId,
        accountId: account.id,
        roles: account.roles,
        amr,
        deviceLabel,
      });
      await recordAudit(tx, now, {
        tenantId: account.tenantId,
        event: 'signin.completed',
        actor: `account:${account.id}`,
        accountId: account.id,
        detail: { sessionId: tokens.sessionId, amr: amr.join(' ') },
      });
      return {
        ...tokens,
        account: { id: account.id, username: account.username, roles: account.roles },
      };
    });
  }

  r.post(
    '/t/:tenant/token/refresh',
    {
      schema: {
        params: TenantParams,
        body: Type.Object({ refreshToken: Secret }, { additionalProperties: false }),
        response: { 200: Tokens, ...errors },
      },
    },
    async (req) => ctx.tokens.refresh(req.params.tenant, req.body.refreshToken),
  );

  r.post(
    '/t/:tenant/logout',
    {
      schema: {
        params: TenantParams,
        response: { 200: Type.Object({ revoked: Type.Boolean() }), ...errors },
      },
    },
    async (req) => {
      const claims = await requireAccess(ctx, req, req.params.tenant);
      const now = ctx.clock();
      const revoked = await revokeSession(ctx.db, { ...claims, reason: 'logout', nowMs: now });
      await recordAudit(ctx.db, now, {
        tenantId: claims.tenantId,
        event: 'session.logout',
        actor: `account:${claims.accountId}`,
        accountId: claims.accountId,
        detail: { sessionId: claims.sessionId },
      });
      return { revoked };
    },
  );

  r.get(
    '/jwks.json',
    {
      schema: {
        response: {
          200: Type.Object({
            keys: Type.Array(
              Type.Object({
                kty: Type.String(),
                crv: Type.String(),
                x: Type.String(),
                kid: Type.String(),
                alg: Type.String(),
                use: Type.String(),
              }),
            ),
          }),
        },
      },
    },
    async (_req, reply) => {
      void reply.header('cache-control', 'public, max-age=300');
      const jwks = await ctx.tokens.jwks();
      return {
        keys: jwks.keys.map((k) => ({
          kty: k.kty ?? '',
          crv: k.crv ?? '',
          x: k.x ?? '',
          kid: k.kid ?? '',
          alg: k.alg ?? '',
          use: k.use ?? '',
        })),
      };
    },
  );
}
