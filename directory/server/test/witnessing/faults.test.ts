/**
 * The collector facing slow, hanging, lying and misconfigured witnesses: the quorum is never
 * held up, alarms are raised for answers that say the log is inconsistent (409 without a size,
 * 422) or that are themselves wrong, and none of those is retried blindly.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { note } from '@keytrail/core';
import { WitnessCollector, type WitnessAlarm } from '../../src/witnessing/collector.ts';
import { parseWitnessPolicy } from '../../src/witnessing/policy.ts';
import { DirLog, LiveWitness, eventually, sleep } from './helpers.ts';

const log = new DirLog('directory.test/faults', 4);
const live: LiveWitness[] = [];
const fakes: FastifyInstance[] = [];
let hang: Server;
const hanging = new Set<Socket>();
let hangUrl = '';

async function fake(
  handler: (body: string) => { status: number; type: string; body: string },
): Promise<string> {
  const app = Fastify();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_r, b, done) => {
    done(null, b);
  });
  app.post('/add-checkpoint', async (req, reply) => {
    const r = handler(String(req.body));
    return reply.code(r.status).type(r.type).send(r.body);
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  fakes.push(app);
  const addr = app.server.address();
  return `http://127.0.0.1:${String(addr && typeof addr === 'object' ? addr.port : 0)}`;
}

async function collectorFor(
  lines: string[],
  quorum: string,
  alarms: WitnessAlarm[] = [],
  transport = { timeoutMs: 300, attempts: 2, backoffMs: 5 },
): Promise<WitnessCollector> {
  return WitnessCollector.create({
    policy: parseWitnessPolicy(`${lines.join('\n')}\n${quorum}\n`),
    transport,
    retryMinMs: 60_000,
    deadlineMs: 4000,
    onAlarm: (a) => alarms.push(a),
  });
}

function failures(c: WitnessCollector): Record<string, string | undefined> {
  return Object.fromEntries(c.status().map((s) => [s.name, s.lastFailure]));
}

beforeAll(async () => {
  log.append(8);
  for (const [i, name] of ['good1', 'good2', 'slow'].entries()) {
    live.push(
      await LiveWitness.create(
        name,
        0x60 + i,
        [log],
        name === 'slow' ? { testingOnlyStallRequest: () => sleep(1000) } : {},
      ),
    );
  }
  hang = createServer((socket) => {
    hanging.add(socket);
  });
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  const a = hang.address();
  hangUrl = `http://127.0.0.1:${String(a && typeof a === 'object' ? a.port : 0)}`;
});
afterAll(async () => {
  await Promise.all(live.map((w) => w.drop()));
  await Promise.all(fakes.map((f) => f.close()));
  for (const s of hanging) s.destroy();
  hang.close();
});

describe('collector faults', () => {
  it('a slow witness and a hanging one do not delay publication', async () => {
    const [g1, g2, slow] = live;
    const hangKey = await LiveWitness.keyFor('hang', 0x6f);
    const c = await collectorFor(
      [g1!.policyLine, g2!.policyLine, slow!.policyLine, `witness hang ${hangKey.vkey} ${hangUrl}`],
      'group q 2 good1 good2 slow hang\nquorum q',
      [],
      // Slow (1 s) is within the timeout; hang never answers.
      { timeoutMs: 2000, attempts: 1, backoffMs: 5 },
    );
    const late: number[] = [];
    c.setLatePublisher(async (_size, n) => {
      late.push(note.parse(n).signatures.length);
      await Promise.resolve();
    });
    try {
      const started = Date.now();
      const published = await c.cosign(log.request());
      expect(Date.now() - started).toBeLessThan(900);
      expect(
        note
          .parse(published)
          .signatures.map((s) => s.name)
          .sort(),
      ).toEqual(['directory.test/faults', 'good1.witness.test', 'good2.witness.test']);
      // The slow witness answers later and its cosignature is published then.
      await eventually(() => late.includes(4));
      // The hanging one times out (2 attempts × 300 ms), and is not counted.
      await eventually(() => failures(c)['hang'] === 'timeout');
    } finally {
      await c.close();
    }
  });

  it('same size, another root: 409 without a size is an alarm, not retried', async () => {
    const forked = await LiveWitness.create('forked', 0x70, [log]);
    live.push(forked);
    // The witness was shown a fork of size 8, validly signed by the log key.
    const fork = new DirLog('directory.test/faults', 4);
    fork.append(8, 'other');
    const r = await fetch(`${forked.url}/add-checkpoint`, {
      method: 'POST',
      body: `old 0\n\n${fork.note(8)}`,
    });
    expect(r.status).toBe(200);
    const alarms: WitnessAlarm[] = [];
    const c = await collectorFor([forked.policyLine], 'quorum forked', alarms);
    try {
      const published = await c.cosign(log.request(8));
      expect(note.parse(published).signatures).toHaveLength(1);
      expect(alarms).toMatchObject([{ witness: 'forked', kind: 'root_mismatch', size: 8 }]);
      expect(failures(c)['forked']).toBe('root_mismatch');
      // The witness kept evidence of the fork it was shown.
      const ev = (await (await fetch(`${forked.url}/evidence`)).json()) as {
        evidence: { kind: string }[];
      };
      expect(ev.evidence.map((e) => e.kind)).toEqual(['same_size_fork']);
    } finally {
      await c.close();
    }
  });

  it('a proof the witness refuses (422) is an alarm, not retried', async () => {
    const forked = await LiveWitness.create('forked2', 0x71, [log]);
    live.push(forked);
    const fork = new DirLog('directory.test/faults', 4);
    fork.append(5, 'other');
    expect(
      (
        await fetch(`${forked.url}/add-checkpoint`, {
          method: 'POST',
          body: `old 0\n\n${fork.note(5)}`,
        })
      ).status,
    ).toBe(200);
    const alarms: WitnessAlarm[] = [];
    const c = await collectorFor([forked.policyLine], 'quorum forked2', alarms);
    try {
      await c.cosign(log.request(8));
      expect(alarms.map((a) => a.kind)).toEqual(['proof_rejected']);
      expect(await forked.size(log.origin)).toBe(5);
    } finally {
      await c.close();
    }
  });

  it('lying and misconfigured witnesses', async () => {
    const other = await LiveWitness.keyFor('liar', 0x72);
    const real = await LiveWitness.create('liar', 0x73, [log]);
    live.push(real);
    const stranger = await LiveWitness.create('stranger', 0x74, []);
    live.push(stranger);
    let loops = 0;
    // Always "3": the resend from 3 gets "3" again.
    const loopUrl = await fake(() => {
      loops++;
      return { status: 409, type: 'text/x.tlog.size', body: '3\n' };
    });
    const aheadUrl = await fake(() => ({ status: 409, type: 'text/x.tlog.size', body: '1000\n' }));
    const hugeUrl = await fake(() => ({
      status: 200,
      type: 'text/plain',
      body: '— x '.repeat(40_000),
    }));
    const garbageUrl = await fake(() => ({ status: 200, type: 'text/plain', body: 'hello\n' }));
    const alarms: WitnessAlarm[] = [];
    const c = await collectorFor(
      [
        // The policy has another key than the one the witness signs with.
        `witness liar ${other.vkey} ${real.url}`,
        stranger.policyLine,
        `witness loop ${(await LiveWitness.keyFor('loop', 0x75)).vkey} ${loopUrl}`,
        `witness ahead ${(await LiveWitness.keyFor('ahead', 0x76)).vkey} ${aheadUrl}`,
        `witness huge ${(await LiveWitness.keyFor('huge', 0x77)).vkey} ${hugeUrl}`,
        `witness garbage ${(await LiveWitness.keyFor('garbage', 0x78)).vkey} ${garbageUrl}`,
      ],
      'group q any liar stranger loop ahead huge garbage\nquorum q',
      alarms,
    );
    try {
      const published = await c.cosign(log.request(8));
      expect(note.parse(published).signatures).toHaveLength(1);
      expect(failures(c)).toEqual({
        liar: 'bad_cosignature',
        stranger: 'refused_404',
        loop: 'size_loop',
        ahead: 'ahead',
        huge: 'refused_200',
        garbage: 'bad_response',
      });
      expect(alarms.map((a) => `${a.witness}:${a.kind}`).sort()).toEqual([
        'garbage:bad_cosignature',
        'liar:bad_cosignature',
        'loop:size_loop',
      ]);
      expect(loops).toBe(2);
    } finally {
      await c.close();
      // No pooled socket stays pinned by the oversized answer.
      const busy = await new Promise<number>((r) =>
        fakes[2]!.server.getConnections((_e, k) => {
          r(k);
        }),
      );
      expect(busy).toBe(0);
    }
  });

  it('a witness whose clock is far ahead is not counted', async () => {
    const skewed = await LiveWitness.create('skewed', 0x79, [log], {
      now: () => Date.now() + 2 * 3600_000,
    });
    live.push(skewed);
    const c = await collectorFor([skewed.policyLine], 'quorum skewed');
    try {
      const published = await c.cosign(log.request(8));
      expect(note.parse(published).signatures).toHaveLength(1);
      expect(failures(c)['skewed']).toBe('clock_skew');
    } finally {
      await c.close();
    }
  });

  it('an unparseable checkpoint is published as signed, and close() is prompt', async () => {
    const c = await collectorFor([live[0]!.policyLine], 'quorum good1');
    const bad = note.sign('not a checkpoint\n', [log.signer]);
    expect(await c.cosign({ checkpoint: bad, size: 1, consistencyProof: () => [] })).toBe(bad);
    await c.close();
    expect(await c.cosign(log.request(8))).toBe(log.note(8));
  });
});
