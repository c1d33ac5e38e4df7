/**
 * `main.ts` wires the optional parts: the identity service (when KT_PUBLIC_URL and
 * KT_IDENTITY_DATA_KEY are set) and the witness collector (WITNESS_POLICY, a C2SP tlog-policy
 * file), on PostgreSQL; and it refuses a bad identity configuration before starting anything.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ed25519 } from '@noble/curves/ed25519.js';
import { cosignature } from '@keytrail/core';
import { createTestDatabase, type TestDatabase } from '@keytrail/server-kit/testing';
import { startServer, freePort, type ServerProcess } from './kt/process.ts';

const dir = mkdtempSync(join(tmpdir(), 'keytrail-wiring-'));
const policy = join(dir, 'witnesses.policy');
let tdb: TestDatabase;
let server: ServerProcess | undefined;

beforeAll(async () => {
  tdb = await createTestDatabase('wiring');
  // One witness that is not running: the directory must still start and publish.
  writeFileSync(
    policy,
    `witness w1 ${cosignature.formatVerifierKey('example.com/w1', ed25519.getPublicKey(ed25519.utils.randomSecretKey()))} http://127.0.0.1:9/\nquorum w1\n`,
  );
});

afterAll(async () => {
  await server?.kill('SIGTERM');
  await tdb.drop();
  rmSync(dir, { recursive: true, force: true });
});

function runMain(env: Record<string, string>): { status: number | null; stderr: string } {
  const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
  return spawnSync(process.execPath, ['--conditions=@keytrail/source', '--import', 'tsx', main], {
    cwd: fileURLToPath(new URL('../../../', import.meta.url)),
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('main.ts wiring', () => {
  it(
    'serves identity routes and collects cosignatures when configured',
    { timeout: 120_000 },
    async () => {
      server = await startServer({
        DATABASE_URL: tdb.url,
        PORT: String(await freePort()),
        EPOCH_MS: '50',
        WITNESS_POLICY: policy,
        KT_PUBLIC_URL: 'http://127.0.0.1:1',
        KT_IDENTITY_DATA_KEY: Buffer.alloc(32, 7).toString('base64'),
      });
      const printed = server.output.join('');
      expect(printed).toMatch(/witnesses:\s+1 from .*witnesses\.policy/);
      expect(printed).toMatch(/identity:\s+http:\/\/\S+\/identity/);
      const jwks = await fetch(`${server.url}/identity/jwks.json`);
      expect(jwks.status).toBe(200);
      expect(((await jwks.json()) as { keys: unknown[] }).keys.length).toBeGreaterThan(0);
      // The dead witness only delays publication until the collector's deadline.
      let status = 0;
      for (let i = 0; i < 60 && status !== 200; i++) {
        status = (await fetch(`${server.url}/v1/checkpoint`)).status;
        if (status !== 200) await new Promise((r) => setTimeout(r, 500));
      }
      expect(status).toBe(200);
      const config = (await (await fetch(`${server.url}/v1/config`)).json()) as {
        witnesses: { name: string; vkey: string; url: string }[];
        quorum: number;
      };
      expect(config.witnesses).toHaveLength(1);
      expect(config.quorum).toBe(1);
      const metricsText = await (await fetch(`${server.url}/metrics`)).text();
      expect(metricsText).toContain('keytrail_witnessing_failures_total');
      expect(metricsText).toContain('keytrail_epochs_total');
      const applied = await tdb.db.query<{ service: string }>(
        'SELECT DISTINCT service FROM keytrail_migrations ORDER BY service',
      );
      expect(applied.rows.map((r) => r.service)).toEqual(['directory', 'identity', 'witnessing']);
    },
  );

  it('refuses a witness policy that does not parse, naming the line', () => {
    const bad = join(dir, 'bad.policy');
    writeFileSync(bad, 'witness w1 not-a-key http://127.0.0.1:9/\n');
    const r = runMain({ DATABASE_URL: tdb.url, WITNESS_POLICY: bad });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(/^witness policy line 1: /);
  });

  it('names every bad identity and directory setting at once and exits 1', () => {
    const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
    const r = spawnSync(
      process.execPath,
      ['--conditions=@keytrail/source', '--import', 'tsx', main],
      {
        cwd: fileURLToPath(new URL('../../../', import.meta.url)),
        env: {
          ...process.env,
          DATABASE_URL: tdb.url,
          KT_PUBLIC_URL: 'http://x',
          KT_IDENTITY_DATA_KEY: 'short',
          PORT: 'abc',
        },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('invalid configuration');
    expect(r.stderr).toMatch(/PORT="abc"/);
    expect(r.stderr).not.toContain('short');
  });
});
