/**
 * The directory's Fastify app factory (fastify Testing guide): `buildApp(deps)` registers the
 * error handler, OpenAPI at `/docs`, rate limits and the key-directory routes, plus any extra
 * plugins (the identity service's routes); `main.ts` only listens.
 * @module
 */
import Fastify, {
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyServerOptions,
} from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import rateLimit from '@fastify/rate-limit';
import { installErrorHandler } from '@keytrail/server-kit';
import type { Registry } from 'prom-client';
import { ktRoutes, type WitnessListing } from './kt/routes.ts';
import type { Directory } from './kt/directory.ts';

/** What {@link buildApp} needs. */
export interface AppDeps {
  readonly directory: Directory;
  /** Requests per minute per client address; default 60000. */
  readonly rateLimit?: number;
  /** Fastify's logger option; default off. */
  readonly logger?: FastifyServerOptions['logger'];
  /** Extra route plugins, each registered encapsulated (identity routes). */
  readonly plugins?: readonly FastifyPluginAsync[];
  /** The witnesses `/v1/config` lists. */
  readonly witnesses?: WitnessListing;
  /** More metrics registries for `/metrics`. */
  readonly registries?: readonly Registry[];
}

/** Builds the app; call `listen` or `inject` on it. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: 256 * 1024,
    // Unknown fields are refused, not silently dropped; nothing is coerced into arrays.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true } },
  });
  installErrorHandler(app);
  await app.register(rateLimit, {
    max: deps.rateLimit ?? 60_000,
    timeWindow: 60_000,
    errorResponseBuilder: (_req, ctx) => ({
      statusCode: 429,
      code: 'ERR_RATE_LIMITED',
      message: `rate limit exceeded, retry in ${ctx.after}`,
    }),
  });
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Keytrail directory',
        version: '1',
        description:
          'Key transparency directory: see directory/PROTOCOL.md for every proof format.',
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  const d = deps.directory;
  await app.register((scope, _opts, done) => {
    ktRoutes(scope, {
      store: d.store,
      state: d.state,
      proofs: d.proofs,
      writes: d.writes,
      metrics: d.metrics,
      adminToken: d.adminToken,
      onWrite: () => d.sequencer?.notify(),
      ...(deps.witnesses ? { witnesses: deps.witnesses } : {}),
      ...(deps.registries ? { registries: deps.registries } : {}),
    });
    done();
  });
  for (const plugin of deps.plugins ?? []) await app.register(plugin);
  return app;
}
