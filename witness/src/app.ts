/**
 * The witness's HTTP interface (Fastify factory; `main.ts` only listens):
 *
 * - `POST <prefix>/add-checkpoint` — C2SP tlog-witness v1.0.0. Body capped at 16 KiB (413),
 *   rate-limited per client address (429), bounded in-flight work (503 + `Retry-After`).
 *   200 answers `text/plain; charset=utf-8` with the `cosignature/v1` line(s); 409 for a wrong
 *   old size answers `text/x.tlog.size` with `<size>\n`; every other error is `{code, message}`.
 * - `GET <prefix>/<hex SHA-256(origin)>/checkpoint` — the latest cosigned checkpoint with the
 *   log's signatures and this witness's cosignature (the monitoring read API of C2SP
 *   tlog-witness on `main`); 404 if the witness never cosigned for that origin.
 * - `GET <prefix>/evidence?after=<id>&limit=<n>` — equivocation evidence, JSON.
 * - `GET /healthz`, `GET /metrics` (Prometheus text format).
 * @module
 */
import Fastify, {
  type FastifyInstance,
  type FastifyServerOptions,
  type FastifyPluginAsync,
} from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { Type, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Counter, Histogram, Registry } from 'prom-client';
import { bytes } from '@keytrail/core';
import { HttpError, installErrorHandler, type Db } from '@keytrail/server-kit';
import { SizeConflictError, WitnessError } from './errors.ts';
import { MAX_BODY_BYTES } from './request.ts';
import type { WitnessStore } from './store.ts';
import type { WitnessKey } from './key.ts';
import { Witness, type WitnessOptions } from './witness.ts';

/** Per-client rate limit. */
export interface RateLimitOptions {
  /** Requests allowed per window and client address. */
  readonly max: number;
  /** Window length in milliseconds. */
  readonly timeWindowMs: number;
}

/** Everything {@link buildApp} needs. */
export interface WitnessAppDeps {
  /** Storage (a `PgWitnessStore` over a migrated database, in production). */
  readonly store: WitnessStore;
  /** The witness key. */
  readonly key: WitnessKey;
  /** The database, for `/healthz`; omitted with in-memory stores. */
  readonly db?: Db;
  /** Path prefix of the witness API (submission and monitoring), e.g. `/witness`; default none. */
  readonly prefix?: string;
  /** Wall clock in milliseconds; default `Date.now`. */
  readonly now?: () => number;
  /** Fastify logger option; default off. Request bodies are never logged. */
  readonly logger?: FastifyServerOptions['logger'];
  /** Honour `X-Forwarded-For` (behind a reverse proxy); default false. */
  readonly trustProxy?: boolean;
  /** Per-client rate limit on the witness API, or false; default 600 per minute. */
  readonly rateLimit?: RateLimitOptions | false;
  /** Concurrent `add-checkpoint` requests before answering 503; default 1024. */
  readonly maxInFlight?: number;
  /** Metrics registry; default a fresh one. */
  readonly registry?: Registry;
  /** See {@link WitnessOptions.logsRefreshMs}. */
  readonly logsRefreshMs?: number;
  /** Test-only, see {@link WitnessOptions.testingOnlyStallRequest}. */
  readonly testingOnlyStallRequest?: WitnessOptions['testingOnlyStallRequest'];
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The witness behind the routes. */
    witness: Witness;
  }
}

const ErrorBody = Type.Object({ code: Type.String(), message: Type.String() });
const TEXT = 'text/plain; charset=utf-8';
const SIZE_CONTENT_TYPE = 'text/x.tlog.size';

/** Builds the witness application (not listening). */
export async function buildApp(deps: WitnessAppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: deps.logger ?? false,
    trustProxy: deps.trustProxy ?? false,
    bodyLimit: MAX_BODY_BYTES,
    // A witness answers in milliseconds; a client holding a connection open idle is not one.
    requestTimeout: 30_000,
  }).withTypeProvider<TypeBoxTypeProvider>();
  installErrorHandler(app);

  const registry = deps.registry ?? new Registry();
  const requests = new Counter({
    name: 'keytrail_witness_add_checkpoint_requests_total',
    help: 'add-checkpoint requests by HTTP status',
    labelNames: ['status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'keytrail_witness_add_checkpoint_seconds',
    help: 'add-checkpoint latency',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [registry],
  });
  const evidence = new Counter({
    name: 'keytrail_witness_evidence_total',
    help: 'validly signed checkpoints inconsistent with the stored state, by kind',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const conflicts = new Counter({
    name: 'keytrail_witness_cas_conflicts_total',
    help: 'add-checkpoint requests that lost the compare-and-swap race (answered 409)',
    registers: [registry],
  });

  const witness = new Witness({
    store: deps.store,
    key: deps.key,
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.logsRefreshMs !== undefined ? { logsRefreshMs: deps.logsRefreshMs } : {}),
    ...(deps.testingOnlyStallRequest
      ? { testingOnlyStallRequest: deps.testingOnlyStallRequest }
      : {}),
    observer: {
      evidence: (kind) => {
        evidence.inc({ kind });
      },
      casConflict: () => {
        conflicts.inc();
      },
    },
  });
  app.decorate('witness', witness);

  const limit = deps.rateLimit ?? { max: 600, timeWindowMs: 60_000 };
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_req, ctx) =>
      new HttpError(429, 'ERR_RATE_LIMITED', `rate limit exceeded, retry in ${ctx.after}`),
  });
  const routeLimit =
    limit === false ? {} : { rateLimit: { max: limit.max, timeWindow: limit.timeWindowMs } };

  const maxInFlight = deps.maxInFlight ?? 1024;
  let inFlight = 0;

  const witnessRoutes: FastifyPluginAsync = (instance) => {
    const r = instance.withTypeProvider<TypeBoxTypeProvider>();
    // The body is a tlog-witness request whatever the client calls it: read raw bytes so the
    // parser can insist on strict UTF-8 itself.
    r.removeAllContentTypeParsers();
    r.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: MAX_BODY_BYTES },
      (_req, body, done) => {
        done(null, body);
      },
    );

    r.post(
      '/add-checkpoint',
      {
        config: routeLimit,
        schema: {
          response: {
            200: Type.String(),
            409: Type.Union([Type.String(), ErrorBody]),
            '4xx': ErrorBody,
            '5xx': ErrorBody,
          },
        },
        onResponse: async (_req, reply) => {
          requests.inc({ status: String(reply.statusCode) });
          duration.observe(reply.elapsedTime / 1000);
          await Promise.resolve();
        },
      },
      async (req, reply) => {
        if (inFlight >= maxInFlight) {
          throw new HttpError(503, 'ERR_OVERLOADED', 'witness overloaded, retry later', {
            headers: { 'retry-after': '1' },
          });
        }
        const body = req.body;
        if (!(body instanceof Uint8Array)) {
          throw new HttpError(400, 'ERR_WITNESS_MALFORMED', 'request body required');
        }
        inFlight++;
        try {
          const result = await witness.addCheckpoint(body);
          return await reply.code(200).type(TEXT).send(result.cosignature);
        } catch (err) {
          throw err instanceof WitnessError ? toHttpError(err) : err;
        } finally {
          inFlight--;
        }
      },
    );

    r.get(
      '/:originHash/checkpoint',
      {
        config: routeLimit,
        schema: {
          params: Type.Object({ originHash: Type.String({ pattern: '^[0-9a-f]{64}$' }) }),
          response: { 200: Type.String(), '4xx': ErrorBody },
        },
      },
      async (req, reply) => {
        const text = await witness.latestCosigned(bytes.fromHex(req.params.originHash));
        if (text === undefined) {
          throw new HttpError(
            404,
            'ERR_WITNESS_NOT_COSIGNED',
            'no cosigned checkpoint for this origin',
          );
        }
        // Cache for seconds at most (C2SP tlog-tiles' advice for checkpoints).
        return reply.type(TEXT).header('cache-control', 'max-age=5').send(text);
      },
    );

    r.get(
      '/evidence',
      {
        config: routeLimit,
        schema: {
          querystring: Type.Object({
            after: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          }),
          response: {
            200: Type.Object({
              evidence: Type.Array(
                Type.Object({
                  id: Type.Integer(),
                  origin: Type.String(),
                  kind: Type.String(),
                  storedSize: Type.Integer(),
                  storedRoot: Type.String(),
                  storedCheckpoint: Type.Union([Type.String(), Type.Null()]),
                  oldSize: Type.Integer(),
                  proof: Type.Array(Type.String()),
                  receivedCheckpoint: Type.String(),
                  receivedSize: Type.Integer(),
                  receivedRoot: Type.String(),
                  receivedAt: Type.String(),
                }),
              ),
            }),
            '4xx': ErrorBody,
          },
        },
      },
      async (req) => {
        const list = await deps.store.listEvidence(req.query.after ?? 0, req.query.limit ?? 100);
        return { evidence: list.map(evidenceJson) };
      },
    );
    return Promise.resolve();
  };
  await app.register(witnessRoutes, deps.prefix ? { prefix: deps.prefix } : {});

  const opsRoutes: FastifyPluginAsync = (instance) => {
    const r = instance.withTypeProvider<TypeBoxTypeProvider>();
    r.get(
      '/healthz',
      {
        schema: {
          response: { 200: Type.Object({ status: Type.Literal('ok') }), '5xx': ErrorBody },
        },
      },
      async () => {
        if (deps.db) await deps.db.query('SELECT 1');
        return { status: 'ok' as const };
      },
    );
    r.get('/metrics', { schema: { response: { 200: Type.String() } } }, async (_req, reply) => {
      const text = await registry.metrics();
      return reply.type(registry.contentType).send(text);
    });
    return Promise.resolve();
  };
  await app.register(opsRoutes);
  return app;
}

/**
 * The HTTP error for a witness error: its fixed status, and for a size conflict the C2SP
 * `text/x.tlog.size` body `<size>\n` instead of `{code, message}`.
 */
export function toHttpError(err: WitnessError): HttpError {
  if (err instanceof SizeConflictError) {
    return new HttpError(err.status, err.code, err.message, {
      headers: { 'content-type': SIZE_CONTENT_TYPE },
      rawBody: `${String(err.knownSize)}\n`,
    });
  }
  return new HttpError(err.status, err.code, err.message);
}

/** The JSON form of one evidence record (byte strings in standard base64). */
export function evidenceJson(e: Awaited<ReturnType<WitnessStore['listEvidence']>>[number]): {
  id: number;
  origin: string;
  kind: string;
  storedSize: number;
  storedRoot: string;
  storedCheckpoint: string | null;
  oldSize: number;
  proof: string[];
  receivedCheckpoint: string;
  receivedSize: number;
  receivedRoot: string;
  receivedAt: string;
} {
  return {
    id: e.id,
    origin: e.origin,
    kind: e.kind,
    storedSize: e.storedSize,
    storedRoot: bytes.toBase64(e.storedRoot),
    storedCheckpoint: e.storedCheckpoint,
    oldSize: e.oldSize,
    proof: e.proof.map((h) => bytes.toBase64(h)),
    receivedCheckpoint: e.receivedCheckpoint,
    receivedSize: e.receivedSize,
    receivedRoot: bytes.toBase64(e.receivedRoot),
    receivedAt: e.receivedAt.toISOString(),
  };
}
