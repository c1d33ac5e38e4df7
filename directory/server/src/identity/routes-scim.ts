/**
 * SCIM 2.0 `/Users` (RFC 7643 §4.1, RFC 7644 §3) with a per-tenant bearer token: create, read,
 * list with a `userName eq` / `externalId eq` filter, replace, PATCH (`active`, `userName`,
 * `displayName`, `externalId`; other attributes are accepted and ignored), and DELETE.
 * `active=false` deprovisions (RFC 7643: "administrative status"): sessions and refresh
 * families are revoked and the removal of the person's devices is published; DELETE does the
 * same and then deletes the account. Errors carry both SCIM's `{schemas, status, detail}` and
 * Keytrail's `{code, message}`.
 * @module
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { HttpError } from '@keytrail/server-kit';
import type { IdentityContext } from './context.ts';
import { requireScim } from './context.ts';
import { identityError } from './errors.ts';
import { getSettings, normaliseUsername } from './accounts.ts';
import { recordAudit } from './audit.ts';
import { randomId } from './secrets.ts';
import { deprovisionAccount, reactivateAccount } from './deprovision.ts';
import { TenantId, RowId } from './schemas.ts';

const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';

const ScimError = Type.Object({
  schemas: Type.Array(Type.String()),
  status: Type.String(),
  scimType: Type.Optional(Type.String()),
  detail: Type.String(),
  code: Type.String(),
  message: Type.String(),
});
const errors = { 400: ScimError, 401: ScimError, 404: ScimError, 409: ScimError, 503: ScimError };

const UserOut = Type.Object({
  schemas: Type.Array(Type.String()),
  id: Type.String(),
  externalId: Type.Optional(Type.String()),
  userName: Type.String(),
  displayName: Type.Optional(Type.String()),
  active: Type.Boolean(),
  meta: Type.Object({
    resourceType: Type.String(),
    created: Type.String(),
    location: Type.String(),
  }),
});

const UserIn = Type.Object({
  schemas: Type.Optional(Type.Array(Type.String())),
  userName: Type.String({ minLength: 1, maxLength: 320 }),
  externalId: Type.Optional(Type.String({ maxLength: 512 })),
  displayName: Type.Optional(Type.String({ maxLength: 512 })),
  active: Type.Optional(Type.Union([Type.Boolean(), Type.String({ maxLength: 5 })])),
});

const Params = Type.Object({ tenant: TenantId, id: RowId });

interface UserRow {
  id: string;
  tenant_id: string;
  username: string;
  display_name: string | null;
  scim_external_id: string | null;
  active: boolean;
  created_at: Date;
}

const COLUMNS = 'id, tenant_id, username, display_name, scim_external_id, active, created_at';

/** Entra sends booleans as "True"/"False" strings in some PATCH requests. */
function parseBool(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  return undefined;
}

function optString(v: unknown, max: number): string | undefined {
  return typeof v === 'string' && v.length <= max ? v : undefined;
}

/** Registers `/t/:tenant/scim/v2/Users` on its own encapsulated instance. */
export function scimRoutes(app: FastifyInstance, ctx: IdentityContext): void {
  app.addContentTypeParser(
    'application/scim+json',
    { parseAs: 'string', bodyLimit: 65_536 },
    (_req, body, done) => {
      try {
        // DELETE and GET may carry the content type with an empty body.
        done(null, body === '' ? undefined : JSON.parse(body as string));
      } catch {
        done(identityError('ERR_IDENTITY_MALFORMED', 'body is not JSON'), undefined);
      }
    },
  );
  app.setErrorHandler((err: FastifyError | HttpError, req, reply) => {
    let status = 500;
    let code = 'ERR_INTERNAL';
    let message = 'internal error';
    let scimType: string | undefined;
    if (err instanceof HttpError) {
      ({ statusCode: status, code, message } = err);
      if (code === 'ERR_IDENTITY_CONFLICT') scimType = 'uniqueness';
    } else if (err.validation) {
      status = 400;
      code = 'ERR_BAD_REQUEST';
      message = err.message;
      scimType = 'invalidValue';
    } else if (
      typeof err.statusCode === 'number' &&
      err.statusCode >= 400 &&
      err.statusCode < 500
    ) {
      status = err.statusCode;
      code = err.code;
      message = err.message;
    } else {
      req.log.error({ err }, 'unhandled error');
    }
    void reply
      .code(status)
      .type('application/scim+json')
      .send({
        schemas: [ERROR_SCHEMA],
        status: String(status),
        ...(scimType ? { scimType } : {}),
        detail: message,
        code,
        message,
      });
  });

  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  function out(u: UserRow) {
    return {
      schemas: [USER_SCHEMA],
      id: u.id,
      ...(u.scim_external_id !== null ? { externalId: u.scim_external_id } : {}),
      userName: u.username,
      ...(u.display_name !== null ? { displayName: u.display_name } : {}),
      active: u.active,
      meta: {
        resourceType: 'User',
        created: u.created_at.toISOString(),
        location: `${ctx.config.publicUrl}/identity/t/${u.tenant_id}/scim/v2/Users/${u.id}`,
      },
    };
  }

  async function load(tenantId: string, id: string): Promise<UserRow> {
    const q = await ctx.db.query<UserRow>(
      `SELECT ${COLUMNS} FROM identity_accounts WHERE id = $1 AND tenant_id = $2`,
      [id, tenantId],
    );
    const row = q.rows[0];
    if (!row) throw identityError('ERR_IDENTITY_NOT_FOUND', 'no such user');
    return row;
  }

  /** Applies attribute changes; `active` changes go through (de)provisioning. */
  async function apply(
    tenantId: string,
    id: string,
    changes: {
      userName?: string | undefined;
      displayName?: string | undefined;
      externalId?: string | undefined;
      active?: boolean | undefined;
    },
  ): Promise<UserRow> {
    const current = await load(tenantId, id);
    if (
      changes.userName !== undefined ||
      changes.displayName !== undefined ||
      changes.externalId !== undefined
    ) {
      try {
        await ctx.db.query(
          `UPDATE identity_accounts SET username = COALESCE($3, username), display_name = COALESCE($4, display_name),
             scim_external_id = COALESCE($5, scim_external_id)
           WHERE id = $1 AND tenant_id = $2`,
          [
            id,
            tenantId,
            changes.userName !== undefined ? normaliseUsername(changes.userName) : null,
            changes.displayName ?? null,
            changes.externalId ?? null,
          ],
        );
      } catch (err) {
        if (typeof err === 'object' && err !== null && 'code' in err && err.code === '23505') {
          throw identityError('ERR_IDENTITY_CONFLICT', 'userName is already taken');
        }
        throw err;
      }
    }
    if (changes.active === false && current.active) {
      await deprovisionAccount(ctx, { tenantId, accountId: id, actor: 'scim' });
      await recordAudit(ctx.db, ctx.clock(), {
        tenantId,
        event: 'scim.user_deactivated',
        actor: 'scim',
        accountId: id,
      });
    } else if (changes.active === false) {
      // Already inactive: retry a device removal that failed before (idempotent).
      await deprovisionAccount(ctx, { tenantId, accountId: id, actor: 'scim' });
    } else if (changes.active === true && !current.active) {
      await reactivateAccount(ctx, { tenantId, accountId: id });
    }
    return load(tenantId, id);
  }

  r.post(
    '/t/:tenant/scim/v2/Users',
    {
      schema: {
        params: Type.Object({ tenant: TenantId }),
        body: UserIn,
        response: { 201: UserOut, ...errors },
      },
    },
    async (req, reply) => {
      const { tenant } = req.params;
      await requireScim(ctx, req, tenant);
      const settings = await getSettings(ctx.db, tenant);
      const active = req.body.active === undefined ? true : parseBool(req.body.active);
      if (active === undefined)
        throw identityError('ERR_IDENTITY_MALFORMED', 'active must be a boolean');
      const now = ctx.clock();
      const id = randomId();
      const ins = await ctx.db.query<UserRow>(
        `INSERT INTO identity_accounts (id, tenant_id, username, display_name, scim_external_id, roles, active, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, username) DO NOTHING RETURNING ${COLUMNS}`,
        [
          id,
          tenant,
          normaliseUsername(req.body.userName),
          req.body.displayName ?? null,
          req.body.externalId ?? null,
          settings.defaultRole ? [settings.defaultRole] : [],
          active,
          new Date(now),
        ],
      );
      const row = ins.rows[0];
      if (!row) throw identityError('ERR_IDENTITY_CONFLICT', 'userName is already taken');
      await recordAudit(ctx.db, now, {
        tenantId: tenant,
        event: 'scim.user_created',
        actor: 'scim',
        accountId: id,
      });
      void reply.code(201).type('application/scim+json');
      return out(row);
    },
  );

  r.get(
    '/t/:tenant/scim/v2/Users',
    {
      schema: {
        params: Type.Object({ tenant: TenantId }),
        querystring: Type.Object({
          filter: Type.Optional(Type.String({ maxLength: 600 })),
          startIndex: Type.Optional(Type.Integer({ minimum: 1 })),
          count: Type.Optional(Type.Integer({ minimum: 0, maximum: 200 })),
        }),
        response: {
          200: Type.Object({
            schemas: Type.Array(Type.String()),
            totalResults: Type.Integer(),
            startIndex: Type.Integer(),
            itemsPerPage: Type.Integer(),
            Resources: Type.Array(UserOut),
          }),
          ...errors,
        },
      },
    },
    async (req, reply) => {
      const { tenant } = req.params;
      await requireScim(ctx, req, tenant);
      const startIndex = req.query.startIndex ?? 1;
      const count = req.query.count ?? 100;
      let where = 'tenant_id = $1';
      const params: unknown[] = [tenant];
      if (req.query.filter !== undefined) {
        const m = /^\s*(userName|externalId)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$/i.exec(
          req.query.filter,
        );
        if (!m?.[1] || m[2] === undefined) {
          throw new HttpError(
            400,
            'ERR_IDENTITY_MALFORMED',
            'only userName eq and externalId eq filters are supported',
          );
        }
        const value = m[2].replace(/\\(.)/g, '$1');
        if (m[1].toLowerCase() === 'username') {
          where += ' AND username = $2';
          params.push(normaliseUsername(value));
        } else {
          where += ' AND scim_external_id = $2';
          params.push(value);
        }
      }
      const total = await ctx.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM identity_accounts WHERE ${where}`,
        params,
      );
      const rows = await ctx.db.query<UserRow>(
        `SELECT ${COLUMNS} FROM identity_accounts WHERE ${where} ORDER BY created_at, id
         OFFSET $${params.length + 1} LIMIT $${params.length + 2}`,
        [...params, startIndex - 1, count],
      );
      void reply.type('application/scim+json');
      return {
        schemas: [LIST_SCHEMA],
        totalResults: total.rows[0]?.n ?? 0,
        startIndex,
        itemsPerPage: rows.rows.length,
        Resources: rows.rows.map(out),
      };
    },
  );

  r.get(
    '/t/:tenant/scim/v2/Users/:id',
    { schema: { params: Params, response: { 200: UserOut, ...errors } } },
    async (req, reply) => {
      await requireScim(ctx, req, req.params.tenant);
      void reply.type('application/scim+json');
      return out(await load(req.params.tenant, req.params.id));
    },
  );

  r.put(
    '/t/:tenant/scim/v2/Users/:id',
    { schema: { params: Params, body: UserIn, response: { 200: UserOut, ...errors } } },
    async (req, reply) => {
      await requireScim(ctx, req, req.params.tenant);
      const active = req.body.active === undefined ? undefined : parseBool(req.body.active);
      if (req.body.active !== undefined && active === undefined) {
        throw identityError('ERR_IDENTITY_MALFORMED', 'active must be a boolean');
      }
      const row = await apply(req.params.tenant, req.params.id, {
        userName: req.body.userName,
        displayName: req.body.displayName,
        externalId: req.body.externalId,
        active,
      });
      void reply.type('application/scim+json');
      return out(row);
    },
  );

  r.patch(
    '/t/:tenant/scim/v2/Users/:id',
    {
      schema: {
        params: Params,
        body: Type.Object({
          schemas: Type.Array(Type.String(), { maxItems: 4 }),
          Operations: Type.Array(
            Type.Object({
              op: Type.String({
                pattern: '^([Aa][Dd][Dd]|[Rr][Ee][Pp][Ll][Aa][Cc][Ee]|[Rr][Ee][Mm][Oo][Vv][Ee])$',
              }),
              path: Type.Optional(Type.String({ maxLength: 200 })),
              value: Type.Optional(Type.Unknown()),
            }),
            { minItems: 1, maxItems: 50 },
          ),
        }),
        response: { 200: UserOut, ...errors },
      },
    },
    async (req, reply) => {
      await requireScim(ctx, req, req.params.tenant);
      if (!req.body.schemas.includes(PATCH_SCHEMA))
        throw identityError('ERR_IDENTITY_MALFORMED', 'not a PatchOp');
      const changes: {
        userName?: string;
        displayName?: string;
        externalId?: string;
        active?: boolean;
      } = {};
      const bad = () => identityError('ERR_IDENTITY_MALFORMED', 'unsupported PATCH value');
      const set = (path: string, value: unknown): void => {
        switch (path.toLowerCase()) {
          case 'active': {
            const b = parseBool(value);
            if (b === undefined) throw bad();
            changes.active = b;
            return;
          }
          case 'username': {
            const s = optString(value, 320);
            if (!s) throw bad();
            changes.userName = s;
            return;
          }
          case 'displayname': {
            const s = optString(value, 512);
            if (s === undefined) throw bad();
            changes.displayName = s;
            return;
          }
          case 'externalid': {
            const s = optString(value, 512);
            if (s === undefined) throw bad();
            changes.externalId = s;
            return;
          }
          default:
            // Other attributes (name, emails, title, enterprise extension…) are not stored.
            return;
        }
      };
      for (const op of req.body.Operations) {
        if (op.op.toLowerCase() === 'remove') continue;
        if (op.path !== undefined) set(op.path, op.value);
        else if (typeof op.value === 'object' && op.value !== null && !Array.isArray(op.value)) {
          for (const [k, v] of Object.entries(op.value as Record<string, unknown>)) set(k, v);
        } else throw bad();
      }
      const row = await apply(req.params.tenant, req.params.id, changes);
      void reply.type('application/scim+json');
      return out(row);
    },
  );

  r.delete(
    '/t/:tenant/scim/v2/Users/:id',
    { schema: { params: Params, response: { 204: Type.Null(), ...errors } } },
    async (req, reply) => {
      const { tenant, id } = req.params;
      await requireScim(ctx, req, tenant);
      await load(tenant, id);
      await deprovisionAccount(ctx, { tenantId: tenant, accountId: id, actor: 'scim' });
      await ctx.db.query('DELETE FROM identity_accounts WHERE id = $1 AND tenant_id = $2', [
        id,
        tenant,
      ]);
      await recordAudit(ctx.db, ctx.clock(), {
        tenantId: tenant,
        event: 'scim.user_deleted',
        actor: 'scim',
        accountId: id,
      });
      void reply.code(204);
      return null;
    },
  );
}
