import { afterAll, describe, expect, it } from 'vitest';
import Fastify from 'fastify';
import { MalformedError, VerificationError } from '@keytrail/core/errors';
import { HttpError, installErrorHandler } from '../src/index.ts';

const app = Fastify({ logger: false, bodyLimit: 64 });
installErrorHandler(app);
app.get('/http', () => {
  throw new HttpError(409, 'ERR_SIZE', 'wrong size', {
    headers: { 'content-type': 'text/x.tlog.size' },
    rawBody: '7\n',
  });
});
app.get('/malformed', () => {
  throw new MalformedError('ERR_NOTE_MALFORMED', 'bad note');
});
app.get('/verify', () => {
  throw new VerificationError('ERR_INCLUSION_PROOF_INVALID', 'bad proof');
});
app.get('/note', () => {
  throw new VerificationError('ERR_NOTE_NO_VERIFIED_SIGNATURE', 'no signature');
});
app.get('/bug', () => {
  throw new Error('secret detail');
});
app.post(
  '/echo',
  { schema: { body: { type: 'object', required: ['a'], properties: { a: { type: 'string' } } } } },
  (req) => req.body,
);
afterAll(() => app.close());

describe('installErrorHandler', () => {
  it.each([
    ['/malformed', 400, 'ERR_NOTE_MALFORMED'],
    ['/verify', 422, 'ERR_INCLUSION_PROOF_INVALID'],
    ['/note', 403, 'ERR_NOTE_NO_VERIFIED_SIGNATURE'],
    ['/missing', 404, 'ERR_NOT_FOUND'],
  ])('maps %s to %i %s', async (url, status, code) => {
    const r = await app.inject({ url });
    expect(r.statusCode).toBe(status);
    expect(r.json()).toMatchObject({ code });
  });

  it('sends a raw body with its own content type', async () => {
    const r = await app.inject({ url: '/http' });
    expect(r.statusCode).toBe(409);
    expect(r.headers['content-type']).toBe('text/x.tlog.size');
    expect(r.body).toBe('7\n');
  });

  it('hides unexpected errors behind a generic 500', async () => {
    const r = await app.inject({ url: '/bug' });
    expect(r.statusCode).toBe(500);
    expect(r.body).not.toContain('secret');
    expect(r.json()).toEqual({ code: 'ERR_INTERNAL', message: 'internal error' });
  });

  it('answers schema failures, bad JSON and oversized bodies with 4xx', async () => {
    expect((await app.inject({ method: 'POST', url: '/echo', payload: { b: 1 } })).statusCode).toBe(
      400,
    );
    const bad = await app.inject({
      method: 'POST',
      url: '/echo',
      headers: { 'content-type': 'application/json' },
      payload: '{"a":',
    });
    expect(bad.statusCode).toBe(400);
    const big = await app.inject({ method: 'POST', url: '/echo', payload: { a: 'x'.repeat(200) } });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toHaveProperty('code');
  });
});
