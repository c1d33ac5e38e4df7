/**
 * The directory's HTTP API (directory/PROTOCOL.md §6; the log endpoints are the contract the
 * auditor and witness code against). Schema-first with TypeBox, a response schema on every
 * route; errors are `{code, message}` through server-kit's handler.
 * @module
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { bytes, ed25519Verify } from '@keytrail/core';
import {
  ACCOUNT_ID_PATTERN,
  TENANT_ID_PATTERN,
  DEVICE_ID_PATTERN,
  MAX_DEVICES,
  decodeDeviceList,
  ownerReadMessage,
  type Device,
  type AccountRef,
} from '@keytrail/client';
import { HttpError, ERROR_BODY_SCHEMA } from '@keytrail/server-kit';
import type { KtStore } from './store.ts';
import type { DirectoryState } from './state.ts';
import type { ProofBuilder } from './proofs.ts';
import type { WriteService } from './writes.ts';
import type { Credential } from './authorization.ts';
import { tokenMatches } from './authorization.ts';
import type { DirectoryMetrics } from './metrics.ts';
import { Registry } from 'prom-client';

/** What the key-directory routes need. */
/** What `/v1/config` says of the witnesses: informational, clients pin their own policy. */
export interface WitnessListing {
  readonly witnesses: readonly { name: string; vkey: string; url: string }[];
  /** k of a flat k-of-n policy; 0 for a nested policy (clients use their own). */
  readonly quorum: number;
}

export interface KtRouteDeps {
  readonly store: KtStore;
  readonly state: DirectoryState;
  readonly proofs: ProofBuilder;
  readonly writes: WriteService;
  readonly metrics: DirectoryMetrics;
  readonly adminToken: string | undefined;
  /** Called after an accepted write (the sequencer may close the epoch sooner). */
  readonly onWrite?: () => void;
  /** The witnesses and quorum `/v1/config` lists (default none). */
  readonly witnesses?: WitnessListing;
  /** More registries served by `/metrics` (the witness collector's). */
  readonly registries?: readonly Registry[];
  readonly now?: () => number;
}

const Err = ERROR_BODY_SCHEMA;
const Tenant = Type.String({ pattern: TENANT_ID_PATTERN });
const Account = Type.String({ pattern: ACCOUNT_ID_PATTERN });
const AccountParams = Type.Object({ tenant: Tenant, account: Account });
const DeviceSchema = Type.Object(
  {
    id: Type.String({ pattern: DEVICE_ID_PATTERN }),
    identityKey: Type.String({ pattern: '^[A-Za-z0-9+/]{43}=$' }),
    x25519Key: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9+/]{43}=$' })),
    addedAt: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    addedBy: Type.Union([Type.Literal('device'), Type.Literal('recovery'), Type.Literal('admin')]),
  },
  { additionalProperties: false },
);
const OWNER_SKEW_MS = 5 * 60_000;

function decodeB64(text: string, what: string): Uint8Array {
  try {
    return bytes.fromBase64(text);
  } catch {
    throw new HttpError(400, 'ERR_BAD_REQUEST', `${what} is not valid base64`);
  }
}

function deviceToJson(d: Device): {
  id: string;
  identityKey: string;
  x25519Key?: string;
  addedAt: number;
  addedBy: Device['addedBy'];
} {
  return {
    id: d.id,
    identityKey: bytes.toBase64(d.identityKey),
    ...(d.x25519Key ? { x25519Key: bytes.toBase64(d.x25519Key) } : {}),
    addedAt: d.addedAt,
    addedBy: d.addedBy,
  };
}

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  return h?.startsWith('Bearer ') ? h.slice(7) : undefined;
}

function requireAdmin(req: FastifyRequest, adminToken: string | undefined): void {
  const token = bearer(req);
  if (adminToken === undefined || token === undefined || !tokenMatches(token, adminToken)) {
    throw new HttpError(401, 'ERR_UNAUTHORIZED', 'the administrator token is required');
  }
}

/** Registers the key-directory routes (an encapsulated plugin). */
export function ktRoutes(app: FastifyInstance, deps: KtRouteDeps): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const { store, state, proofs, writes, metrics } = deps;
  const served =
    deps.registries && deps.registries.length > 0
      ? Registry.merge([metrics.registry, ...deps.registries])
      : metrics.registry;
  const now = deps.now ?? Date.now;

  const released = (): { epoch: number; note: string } => {
    const s = state.snapshot;
    if (!s)
      throw new HttpError(503, 'ERR_NOT_READY', 'no epoch published yet', {
        headers: { 'retry-after': '1' },
      });
    return s;
  };

  r.get(
    '/v1/checkpoint',
    {
      schema: {
        tags: ['log'],
        summary: 'The latest published checkpoint (C2SP signed note)',
        response: { 200: Type.String(), 503: Err },
      },
    },
    async (_req, reply) => {
      const s = released();
      return reply
        .type('text/plain; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(s.note);
    },
  );

  r.get(
    '/v1/config',
    {
      schema: {
        tags: ['log'],
        summary: "The directory's keys (informational: clients pin their own)",
        response: {
          200: Type.Object({
            origin: Type.String(),
            logKey: Type.String(),
            vrfPublicKey: Type.String(),
            witnesses: Type.Array(
              Type.Object({ name: Type.String(), vkey: Type.String(), url: Type.String() }),
            ),
            quorum: Type.Integer(),
          }),
        },
      },
    },
    (_req, reply) => {
      void reply.send({
        origin: state.identity.origin,
        logKey: state.identity.logKey,
        vrfPublicKey: bytes.toBase64(state.identity.vrfPublicKey),
        witnesses: [...(deps.witnesses?.witnesses ?? [])],
        quorum: deps.witnesses?.quorum ?? 0,
      });
    },
  );

  r.get(
    '/v1/log/consistency',
    {
      schema: {
        tags: ['log'],
        summary: 'RFC 9162 consistency proof between two tree sizes',
        querystring: Type.Object({
          from: Type.Integer({ minimum: 1 }),
          to: Type.Integer({ minimum: 1 }),
        }),
        response: { 200: Type.Object({ proof: Type.Array(Type.String()) }), 400: Err, 503: Err },
      },
    },
    (req, reply) => {
      const size = released().epoch + 1;
      const { from, to } = req.query;
      if (from > to || to > size) {
        throw new HttpError(400, 'ERR_BAD_RANGE', `need 1 ≤ from ≤ to ≤ ${size}`);
      }
      void reply.send({
        proof: state.log.consistencyProof(from, to).map((h) => bytes.toBase64(h)),
      });
    },
  );

  r.get(
    '/v1/log/leaves',
    {
      schema: {
        tags: ['log'],
        summary: 'Encoded epoch records (leaf i is epoch i), at most 1000',
        querystring: Type.Object({
          start: Type.Integer({ minimum: 0 }),
          end: Type.Integer({ minimum: 1 }),
        }),
        response: { 200: Type.Object({ leaves: Type.Array(Type.String()) }), 400: Err, 503: Err },
      },
    },
    async (req) => {
      const size = released().epoch + 1;
      const { start, end } = req.query;
      if (start >= end || end > size || end - start > 1000) {
        throw new HttpError(
          400,
          'ERR_BAD_RANGE',
          `need 0 ≤ start < end ≤ ${size} and at most 1000 leaves`,
        );
      }
      return { leaves: (await store.records(start, end)).map((x) => bytes.toBase64(x)) };
    },
  );

  r.get(
    '/v1/epochs/:epoch/inserts',
    {
      schema: {
        tags: ['log'],
        summary: "One epoch's prefix-tree inserts, sorted by label, paginated",
        params: Type.Object({ epoch: Type.Integer({ minimum: 0 }) }),
        querystring: Type.Object({
          after: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9+/]{43}=$' })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
        }),
        response: {
          200: Type.Object({
            inserts: Type.Array(Type.Object({ label: Type.String(), commitment: Type.String() })),
            next: Type.Union([Type.String(), Type.Null()]),
          }),
          400: Err,
          404: Err,
          503: Err,
        },
      },
    },
    async (req) => {
      const { epoch } = req.params;
      if (epoch > released().epoch)
        throw new HttpError(404, 'ERR_EPOCH_NOT_FOUND', 'no such published epoch');
      const limit = req.query.limit ?? 1000;
      const after = req.query.after === undefined ? undefined : decodeB64(req.query.after, 'after');
      const rows = await store.epochInserts(epoch, after, limit + 1);
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        inserts: page.map((x) => ({
          label: bytes.toBase64(x.label),
          commitment: bytes.toBase64(x.commitment),
        })),
        next: rows.length > limit && last ? bytes.toBase64(last.label) : null,
      };
    },
  );

  const LookupResponse = Type.Object({
    tenant: Type.String(),
    account: Type.String(),
    version: Type.Integer({ description: 'greatest version; -1 when the account has none' }),
    epoch: Type.Integer(),
    value: Type.Union([Type.String(), Type.Null()], { description: 'base64 DeviceList encoding' }),
    devices: Type.Union([Type.Array(DeviceSchema), Type.Null()], {
      description: 'the value, decoded (informational)',
    }),
    proof: Type.String({ description: 'base64 LookupProof (PROTOCOL.md §6)' }),
    checkpoint: Type.String(),
  });

  r.get(
    '/v1/tenants/:tenant/accounts/:account',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Look an account up: its greatest version, device list and full proof',
        params: AccountParams,
        response: { 200: LookupResponse, 400: Err, 503: Err },
      },
    },
    async (req) => {
      const ref: AccountRef = req.params;
      const built = await proofs.lookup(ref);
      if (!built)
        throw new HttpError(503, 'ERR_NOT_READY', 'no epoch published yet', {
          headers: { 'retry-after': '1' },
        });
      metrics.lookups.inc({ result: built.version < 0 ? 'absent' : 'found' });
      return {
        tenant: ref.tenant,
        account: ref.account,
        version: built.version,
        epoch: built.epoch,
        value: built.value ? bytes.toBase64(built.value) : null,
        devices: built.value ? decodeDeviceList(built.value).map(deviceToJson) : null,
        proof: bytes.toBase64(built.proof),
        checkpoint: built.checkpoint,
      };
    },
  );

  const ownerOnly = async (req: FastifyRequest, ref: AccountRef): Promise<void> => {
    const h = req.headers.authorization ?? '';
    if (h.startsWith('Bearer ')) {
      requireAdmin(req, deps.adminToken);
      return;
    }
    const m = /^KT-Device ([A-Za-z0-9._-]{1,64}) (\d{1,15}) ([A-Za-z0-9+/]{86}==)$/.exec(h);
    if (!m)
      throw new HttpError(
        401,
        'ERR_UNAUTHORIZED',
        'owner authentication is required (KT-Device or Bearer)',
      );
    const [, deviceId = '', ts = '0', sig = ''] = m;
    if (Math.abs(now() - Number(ts)) > OWNER_SKEW_MS) {
      throw new HttpError(
        401,
        'ERR_UNAUTHORIZED',
        "the signed timestamp is too far from the directory's clock",
      );
    }
    // Any device that was ever in the account's list: versions forged behind the owner's back
    // must not lock the owner out of the history that reveals them.
    const all = await store.db.query<{ value: Uint8Array }>(
      'SELECT value FROM kt_versions WHERE tenant_id = $1 AND account_id = $2',
      [ref.tenant, ref.account],
    );
    const signature = bytes.fromBase64(sig);
    const message = ownerReadMessage(ref, Number(ts));
    const ok = all.rows.some((row) =>
      decodeDeviceList(row.value).some(
        (d) => d.id === deviceId && ed25519Verify(signature, message, d.identityKey),
      ),
    );
    if (!ok) {
      throw new HttpError(403, 'ERR_FORBIDDEN', 'the owner signature does not verify');
    }
  };

  r.get(
    '/v1/tenants/:tenant/accounts/:account/history',
    {
      schema: {
        tags: ['accounts'],
        summary: "The owner's full history: every version with its epoch and proofs (owner only)",
        description:
          'The proof carries one prefix-tree batch proof per 255 probes. An account with more than 100,000 versions (MAX_HISTORY_VERSIONS) is answered with 422 ERR_HISTORY_TOO_LONG.',
        params: AccountParams,
        response: {
          200: Type.Object({
            versions: Type.Array(
              Type.Object({ version: Type.Integer(), epoch: Type.Integer(), value: Type.String() }),
            ),
            proof: Type.String({ description: 'base64 HistoryProof, format 2 (PROTOCOL.md §6)' }),
            checkpoint: Type.String(),
          }),
          400: Err,
          401: Err,
          403: Err,
          422: Err,
          503: Err,
        },
      },
    },
    async (req) => {
      const ref: AccountRef = req.params;
      await ownerOnly(req, ref);
      const built = await proofs.history(ref);
      if (!built)
        throw new HttpError(503, 'ERR_NOT_READY', 'no epoch published yet', {
          headers: { 'retry-after': '1' },
        });
      return {
        versions: built.versions.map((v) => ({
          version: v.version,
          epoch: v.epoch,
          value: bytes.toBase64(v.value),
        })),
        proof: bytes.toBase64(built.proof),
        checkpoint: built.checkpoint,
      };
    },
  );

  const Receipt = Type.Object({
    tenant: Type.String(),
    account: Type.String(),
    version: Type.Integer(),
    epoch: Type.Integer({ description: 'the epoch whose checkpoint will include this version' }),
  });

  const UpdateBody = Type.Object(
    {
      version: Type.Optional(Type.Integer({ minimum: 0, maximum: 0xfffffffe })),
      devices: Type.Array(DeviceSchema, { maxItems: MAX_DEVICES }),
      signature: Type.Optional(
        Type.Object(
          {
            deviceId: Type.String({ pattern: DEVICE_ID_PATTERN }),
            signature: Type.String({ pattern: '^[A-Za-z0-9+/]{86}==$' }),
          },
          { additionalProperties: false },
        ),
      ),
    },
    { additionalProperties: false },
  );

  r.post(
    '/v1/tenants/:tenant/accounts/:account/devices',
    {
      schema: {
        tags: ['accounts'],
        summary: 'Replace the device list (a new version); durable before the receipt',
        params: AccountParams,
        body: UpdateBody,
        response: { 202: Receipt, 400: Err, 401: Err, 403: Err, 404: Err, 409: Err, 503: Err },
      },
    },
    async (req, reply) => {
      const ref: AccountRef = req.params;
      const devices: Device[] = req.body.devices.map((d) => ({
        id: d.id,
        identityKey: decodeB64(d.identityKey, 'identityKey'),
        ...(d.x25519Key !== undefined ? { x25519Key: decodeB64(d.x25519Key, 'x25519Key') } : {}),
        addedAt: d.addedAt,
        addedBy: d.addedBy,
      }));
      const token = bearer(req);
      const sig = req.body.signature;
      const credential: Credential = sig
        ? {
            kind: 'device-signature',
            deviceId: sig.deviceId,
            signature: decodeB64(sig.signature, 'signature'),
          }
        : token !== undefined
          ? { kind: 'bearer', token }
          : { kind: 'none' };
      const receipt = await writes.submit({
        ref,
        devices,
        credential,
        ...(req.body.version !== undefined ? { version: req.body.version } : {}),
      });
      metrics.updatesAccepted.inc();
      deps.onWrite?.();
      return reply.code(202).send(receipt);
    },
  );

  r.post(
    '/v1/tenants',
    {
      schema: {
        tags: ['admin'],
        summary: 'Create a tenant (administrator)',
        body: Type.Object(
          { id: Tenant, name: Type.String({ minLength: 1, maxLength: 200 }) },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({ id: Type.String(), name: Type.String() }),
          400: Err,
          401: Err,
          409: Err,
        },
      },
    },
    async (req, reply) => {
      requireAdmin(req, deps.adminToken);
      const res = await store.db.query(
        'INSERT INTO tenants (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING',
        [req.body.id, req.body.name],
      );
      if (res.rowCount === 0) throw new HttpError(409, 'ERR_TENANT_EXISTS', 'the tenant exists');
      return reply.code(201).send({ id: req.body.id, name: req.body.name });
    },
  );

  r.post(
    '/v1/tenants/:tenant/accounts',
    {
      schema: {
        tags: ['admin'],
        summary: 'Create an account (administrator)',
        params: Type.Object({ tenant: Tenant }),
        body: Type.Object(
          { id: Account, displayName: Type.String({ minLength: 1, maxLength: 320 }) },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            tenant: Type.String(),
            id: Type.String(),
            displayName: Type.String(),
          }),
          400: Err,
          401: Err,
          404: Err,
          409: Err,
        },
      },
    },
    async (req, reply) => {
      requireAdmin(req, deps.adminToken);
      const t = await store.db.query('SELECT 1 FROM tenants WHERE id = $1', [req.params.tenant]);
      if (t.rowCount === 0) throw new HttpError(404, 'ERR_TENANT_NOT_FOUND', 'no such tenant');
      const res = await store.db.query(
        `INSERT INTO accounts (tenant_id, account_id, display_name) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, account_id) DO NOTHING`,
        [req.params.tenant, req.body.id, req.body.displayName],
      );
      if (res.rowCount === 0) throw new HttpError(409, 'ERR_ACCOUNT_EXISTS', 'the account exists');
      return reply
        .code(201)
        .send({ tenant: req.params.tenant, id: req.body.id, displayName: req.body.displayName });
    },
  );

  r.get(
    '/healthz',
    {
      schema: {
        tags: ['ops'],
        response: {
          200: Type.Object({ status: Type.String(), epoch: Type.Integer() }),
          503: Type.Object({ status: Type.String(), epoch: Type.Integer() }),
        },
      },
    },
    async (_req, reply) => {
      const epoch = state.snapshot?.epoch ?? -1;
      try {
        await store.db.query('SELECT 1');
      } catch {
        return reply.code(503).send({ status: 'database unreachable', epoch });
      }
      return reply
        .code(epoch >= 0 ? 200 : 503)
        .send({ status: epoch >= 0 ? 'ok' : 'starting', epoch });
    },
  );

  r.get(
    '/metrics',
    { schema: { tags: ['ops'], response: { 200: Type.String() } } },
    async (_req, reply) => {
      return reply.type(served.contentType).send(await served.metrics());
    },
  );
}
