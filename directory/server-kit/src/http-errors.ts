/**
 * Errors to HTTP in one place (torchwood `serveAddCheckpoint`): malformed → 400, bad or
 * untrusted signature → 403, unknown → 404, stale size → 409, bad proof → 422, overload → 503.
 * Bodies are `{ code, message }`. Unexpected errors become a 500 with a generic message and
 * are logged; nothing from the request or from key material goes into a message.
 * @module
 */
import type { FastifyInstance, FastifyError } from 'fastify';
import { KtError } from '@keytrail/core/errors';

/** An error a route throws on purpose, with its status, stable code and safe message. */
export class HttpError extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly headers: Readonly<Record<string, string>>;
  /** A plain-text body sent instead of `{ code, message }` (e.g. C2SP's `text/x.tlog.size`). */
  readonly rawBody: string | undefined;
  constructor(
    statusCode: number,
    code: string,
    message: string,
    options: { headers?: Record<string, string>; rawBody?: string } = {},
  ) {
    super(message);
    this.name = 'HttpError';
    this.statusCode = statusCode;
    this.code = code;
    this.headers = options.headers ?? {};
    this.rawBody = options.rawBody;
  }
}

/** Status for a `@keytrail/core` error code. */
export function statusForKtError(err: KtError): number {
  if (err.name === 'MalformedError') return 400;
  if (err.name === 'InconsistencyError') return 409;
  if (err.code.startsWith('ERR_NOTE_') || err.code.startsWith('ERR_COSIGNATURE_')) return 403;
  return 422;
}

/** The JSON schema of every error body, for route `response` schemas. */
export const ERROR_BODY_SCHEMA = {
  type: 'object',
  properties: { code: { type: 'string' }, message: { type: 'string' } },
  required: ['code', 'message'],
} as const;

/** Installs the one error handler and a JSON 404 handler. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setNotFoundHandler((_req, reply) => {
    void reply.code(404).send({ code: 'ERR_NOT_FOUND', message: 'no such route' });
  });
  app.setErrorHandler((err: FastifyError | HttpError | KtError, req, reply) => {
    if (err instanceof HttpError) {
      void reply
        .code(err.statusCode)
        .headers(err.headers)
        .send(err.rawBody ?? { code: err.code, message: err.message });
      return;
    }
    if (err instanceof KtError) {
      void reply.code(statusForKtError(err)).send({ code: err.code, message: err.message });
      return;
    }
    const fe = err;
    if (fe.validation) {
      void reply.code(400).send({ code: 'ERR_BAD_REQUEST', message: fe.message });
      return;
    }
    const status = typeof fe.statusCode === 'number' ? fe.statusCode : 500;
    if (status >= 400 && status < 500) {
      // Fastify's own client errors: body too large, bad JSON, unsupported media type, …
      void reply.code(status).send({ code: fe.code || 'ERR_BAD_REQUEST', message: fe.message });
      return;
    }
    req.log.error({ err }, 'unhandled error');
    void reply.code(500).send({ code: 'ERR_INTERNAL', message: 'internal error' });
  });
}
