/**
 * Tenant administration (the operator token, or an access token with the `admin` role in the
 * tenant): link, test and unlink IdPs; the group → role mapping and JIT switch; the SCIM
 * bearer token (shown once, stored as SHA-256); deprovisioning; and the audit log.
 * @module
 */
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { IdentityContext } from './context.ts';
import { actorName, requireAdmin, requireTenant } from './context.ts';
import { getIdp, linkIdp, listIdps, unlinkIdp, type Idp } from './idps.ts';
import { getSettings, putSettings } from './accounts.ts';
import { listAudit, recordAudit, type AuditEvent } from './audit.ts';
import { randomToken, sha256 } from './secrets.ts';
import { deprovisionAccount } from './deprovision.ts';
import { startSaml, newSamlRequestId } from './saml.ts';
import {
  ErrorBody,
  IdpParams,
  ReceiptSchema,
  RoleSchema,
  RowId,
  TenantId,
  TenantParams,
} from './schemas.ts';
import { X509Certificate } from 'node:crypto';

const errors = {
  400: ErrorBody,
  401: ErrorBody,
  403: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  422: ErrorBody,
};

const IdpView = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  name: Type.String(),
  /** OIDC: the redirect URI to register at the IdP. */
  redirectUri: Type.Optional(Type.String()),
  issuer: Type.Optional(Type.String()),
  clientId: Type.Optional(Type.String()),
  /** SAML: our entity id and ACS URL to register at the IdP, and the IdP's entity id. */
  spEntityId: Type.Optional(Type.String()),
  acsUrl: Type.Optional(Type.String()),
  metadataUrl: Type.Optional(Type.String()),
  idpEntityId: Type.Optional(Type.String()),
});

function view(ctx: IdentityContext, idp: Idp) {
  if (idp.kind === 'oidc') {
    const s = idp.settings;
    return {
      id: idp.id,
      kind: idp.kind,
      name: idp.name,
      redirectUri: s.redirectUri,
      issuer: s.issuer,
      clientId: s.clientId,
    };
  }
  const s = idp.settings;
  return {
    id: idp.id,
    kind: idp.kind,
    name: idp.name,
    spEntityId: s.spEntityId,
    acsUrl: s.acsUrl,
    metadataUrl: `${ctx.config.publicUrl}/identity/t/${idp.tenantId}/idps/${idp.id}/saml/metadata`,
    idpEntityId: s.idpEntityId,
  };
}

const Name = Type.String({ minLength: 1, maxLength: 200 });
const Url = Type.String({ minLength: 1, maxLength: 2048 });
const LinkBody = Type.Union([
  Type.Object(
    {
      kind: Type.Literal('oidc'),
      name: Name,
      issuer: Url,
      clientId: Type.String({ minLength: 1, maxLength: 512 }),
      clientSecret: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
      clientAuth: Type.Optional(
        Type.Union([
          Type.Literal('client_secret_basic'),
          Type.Literal('client_secret_post'),
          Type.Literal('none'),
        ]),
      ),
      scopes: Type.Optional(
        Type.Array(Type.String({ pattern: '^[\\x21\\x23-\\x5b\\x5d-\\x7e]{1,128}$' }), {
          maxItems: 20,
        }),
      ),
      redirectUri: Type.Optional(Url),
      groupsClaim: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      kind: Type.Literal('saml'),
      name: Name,
      idpEntityId: Type.String({ minLength: 1, maxLength: 1024 }),
      entryPoint: Url,
      idpCerts: Type.Array(Type.String({ minLength: 1, maxLength: 16384 }), {
        minItems: 1,
        maxItems: 4,
      }),
      spEntityId: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
      requireSignedResponse: Type.Optional(Type.Boolean()),
      emailAttribute: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
      groupsAttribute: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
      displayNameAttribute: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    },
    { additionalProperties: false },
  ),
]);

const Settings = Type.Object(
  {
    roleMapping: Type.Record(Type.String({ minLength: 1, maxLength: 256 }), RoleSchema),
    defaultRole: Type.Union([RoleSchema, Type.Null()]),
    jitEnabled: Type.Boolean(),
  },
  { additionalProperties: false },
);

/** Registers the routes under `/t/:tenant/admin`. */
export function adminRoutes(app: FastifyInstance, ctx: IdentityContext): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get(
    '/t/:tenant/admin/idps',
    {
      schema: {
        params: TenantParams,
        response: { 200: Type.Object({ idps: Type.Array(IdpView) }), ...errors },
      },
    },
    async (req) => {
      await requireAdmin(ctx, req, req.params.tenant);
      return {
        idps: (await listIdps(ctx.db, ctx.config, req.params.tenant)).map((i) => view(ctx, i)),
      };
    },
  );

  r.post(
    '/t/:tenant/admin/idps',
    { schema: { params: TenantParams, body: LinkBody, response: { 201: IdpView, ...errors } } },
    async (req, reply) => {
      const actor = await requireAdmin(ctx, req, req.params.tenant);
      await requireTenant(ctx, req.params.tenant);
      const now = ctx.clock();
      const idp = await linkIdp(ctx.db, ctx.config, req.params.tenant, req.body, now);
      await recordAudit(ctx.db, now, {
        tenantId: req.params.tenant,
        event: 'idp.linked',
        actor: actorName(actor),
        detail: { idp: idp.id, kind: idp.kind },
      });
      void reply.code(201);
      return view(ctx, idp);
    },
  );

  r.post(
    '/t/:tenant/admin/idps/:idp/test',
    {
      schema: {
        params: IdpParams,
        response: {
          200: Type.Object({
            ok: Type.Boolean(),
            problem: Type.Optional(Type.String()),
            details: Type.Record(Type.String(), Type.String()),
          }),
          ...errors,
        },
      },
    },
    async (req) => {
      const actor = await requireAdmin(ctx, req, req.params.tenant);
      const idp = await getIdp(ctx.db, ctx.config, req.params.tenant, req.params.idp);
      let result: { ok: boolean; problem?: string; details: Record<string, string> };
      if (idp.kind === 'oidc') {
        ctx.oidc.forget(idp.id);
        try {
          const m = (await ctx.oidc.configuration(idp)).serverMetadata();
          result = {
            ok: true,
            details: {
              issuer: m.issuer,
              authorizationEndpoint: m.authorization_endpoint ?? '',
              tokenEndpoint: m.token_endpoint ?? '',
              jwksUri: m.jwks_uri ?? '',
              userinfoEndpoint: m.userinfo_endpoint ?? '',
            },
          };
        } catch (err) {
          result = {
            ok: false,
            problem: err instanceof Error ? err.message : 'discovery failed',
            details: {},
          };
        }
      } else {
        const now = ctx.clock();
        const expiries = idp.settings.idpCerts.map((pem) => new X509Certificate(pem).validTo);
        const expired = idp.settings.idpCerts.every(
          (pem) => Date.parse(new X509Certificate(pem).validTo) < now,
        );
        // Builds (but does not send) an AuthnRequest, proving the settings are usable.
        const url = await startSaml(ctx.db, ctx.config, idp, ctx.clock, {
          id: 'test',
          requestId: newSamlRequestId(),
        });
        result = {
          ok: !expired,
          ...(expired ? { problem: 'every IdP certificate has expired' } : {}),
          details: {
            authnRequestUrl: url.split('?')[0] ?? '',
            certificatesValidTo: expiries.join(', '),
          },
        };
      }
      await recordAudit(ctx.db, ctx.clock(), {
        tenantId: req.params.tenant,
        event: 'idp.tested',
        actor: actorName(actor),
        detail: { idp: idp.id, ok: result.ok },
      });
      return result;
    },
  );

  r.delete(
    '/t/:tenant/admin/idps/:idp',
    {
      schema: {
        params: IdpParams,
        response: { 200: Type.Object({ unlinked: Type.Boolean() }), ...errors },
      },
    },
    async (req) => {
      const actor = await requireAdmin(ctx, req, req.params.tenant);
      const now = ctx.clock();
      await unlinkIdp(ctx.db, req.params.tenant, req.params.idp, now);
      ctx.oidc.forget(req.params.idp);
      await recordAudit(ctx.db, now, {
        tenantId: req.params.tenant,
        event: 'idp.unlinked',
        actor: actorName(actor),
        detail: { idp: req.params.idp },
      });
      return { unlinked: true };
    },
  );

  r.get(
    '/t/:tenant/admin/settings',
    { schema: { params: TenantParams, response: { 200: Settings, ...errors } } },
    async (req) => {
      await requireAdmin(ctx, req, req.params.tenant);
      return getSettings(ctx.db, req.params.tenant);
    },
  );

  r.put(
    '/t/:tenant/admin/settings',
    { schema: { params: TenantParams, body: Settings, response: { 200: Settings, ...errors } } },
    async (req) => {
      const actor = await requireAdmin(ctx, req, req.params.tenant);
      await requireTenant(ctx, req.params.tenant);
      const now = ctx.clock();
      await putSettings(ctx.db, req.params.tenant, req.body, now);
      await recordAudit(ctx.db, now, {
        tenantId: req.params.tenant,
        event: 'tenant.settings',
        actor: actorName(actor),
        detail: {
          jitEnabled: req.body.jitEnabled,
          mappedGroups: Object.keys(req.body.roleMapping).length,
        },
      });
      return getSettings(ctx.db, req.params.tenant);
    },
  );

  r.post(
    '/t/:tenant/admin/scim-token',
    {
      schema: {
        params: TenantParams,
        response: { 200: Type.Object({ token: Type.String() }), ...errors },
      },
    },
    async (req) => {
      const actor = await requireAdmin(ctx, req, req.params.tenant);
      await requireTenant(ctx, req.params.tenant);
      const token = randomToken();
      const now = ctx.clock();
      await ctx.db.query(
        `INSERT INTO identity_tenant_settings (tenant_id, scim_token_hash, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id) DO UPDATE SET scim_token_hash = $2, updated_at = $3`,
        [req.params.tenant, sha256(token), new Date(now)],
      );
      await recordAudit(ctx.db, now, {
        tenantId: req.params.tenant,
        event: 'scim.token_rotated',
        actor: actorName(actor),
      });
      return { token };
    },
  );

  r.post(
    '/t/:tenant/admin/accounts/:account/deprovision',
    {
      schema: {
        params: Type.Object({ tenant: TenantId, account: RowId }),
        response: {
          200: Type.Object({
            sessionsRevoked: Type.Integer(),
            receipt: Type.Union([ReceiptSchema, Type.Null()]),
          }),
          503: ErrorBody,
          ...errors,
        },
      },
    },
    async (req) => {
      const actor = await requireAdmin(ctx, req, req.params.tenant);
      return deprovisionAccount(ctx, {
        tenantId: req.params.tenant,
        accountId: req.params.account,
        actor: actorName(actor),
      });
    },
  );

  r.get(
    '/t/:tenant/admin/audit',
    {
      schema: {
        params: TenantParams,
        querystring: Type.Object({
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          event: Type.Optional(Type.String({ pattern: '^[a-z_.]{1,64}$' })),
        }),
        response: {
          200: Type.Object({
            events: Type.Array(
              Type.Object({
                id: Type.Integer(),
                at: Type.String(),
                event: Type.String(),
                actor: Type.String(),
                accountId: Type.Union([Type.String(), Type.Null()]),
                detail: Type.Record(
                  Type.String(),
                  Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]),
                ),
              }),
            ),
          }),
          ...errors,
        },
      },
    },
    async (req) => {
      await requireAdmin(ctx, req, req.params.tenant);
      const events = await listAudit(ctx.db, req.params.tenant, {
        limit: req.query.limit ?? 100,
        event: req.query.event as AuditEvent | undefined,
      });
      return {
        events: events.map((e) => ({
          id: e.id,
          at: e.at.toISOString(),
          event: e.event,
          actor: e.actor,
          accountId: e.accountId ?? null,
          detail: { ...e.detail },
        })),
      };
    },
  );
}
