/**
 * Golden transcripts of the `keytrail-witness` executable (age `cmd/age/testdata` style): each
 * case runs the real entry point in a child process and compares stdout, stderr and the exit
 * code with `test/golden/<case>.txt`. `UPDATE_GOLDEN=1` rewrites the files. Temporary paths are
 * shown as `$TMP`.
 */
import { spawn } from 'node:child_process';
import { chmod, copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@keytrail/server-kit/testing';
import { TestLog } from './helpers.ts';

const WORKSPACE = fileURLToPath(new URL('..', import.meta.url));
// The CLI is bundled once (workspace sources in, npm dependencies external) and the bundle is
// what runs: starting it costs a Node start, not a TypeScript transpilation per case.
const BUNDLE = fileURLToPath(
  new URL('../../node_modules/.cache/keytrail-witness-test/cli.mjs', import.meta.url),
);
const GOLDEN = fileURLToPath(new URL('./golden/', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  args: readonly string[],
  env: Record<string, string>,
  until?: (out: string) => boolean,
): Promise<Run & { kill?: () => void }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BUNDLE, ...args], {
      cwd: WORKSPACE,
      // A clean environment: only what the case sets.
      env: { PATH: process.env['PATH'] ?? '', HOME: env['HOME'] ?? tmpdir(), ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('utf8');
      if (until?.(stderr)) {
        resolve({ code: null, stdout, stderr, kill: () => child.kill('SIGTERM') });
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

// Each case starts a Node process; on a loaded two-core machine that takes seconds.
vi.setConfig({ testTimeout: 120_000 });

let tmp: string;
let tdb: TestDatabase;

function transcript(args: readonly string[], r: Run): string {
  const clean = (s: string): string => s.split(tmp).join('$TMP');
  return `$ keytrail-witness ${args.join(' ')}\n--- exit\n${String(r.code)}\n--- stdout\n${clean(r.stdout)}--- stderr\n${clean(r.stderr)}`;
}

async function golden(
  name: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<Run> {
  const r = await run(args, env);
  const got = transcript(args, r);
  const path = join(GOLDEN, `${name}.txt`);
  if (process.env['UPDATE_GOLDEN'] === '1') await writeFile(path, got);
  expect(got).toBe(await readFile(path, 'utf8'));
  return r;
}

beforeAll(async () => {
  await build({
    entryPoints: [join(WORKSPACE, 'src', 'cli.ts')],
    outfile: BUNDLE,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['@keytrail/source'],
    logLevel: 'silent',
    plugins: [
      {
        name: 'external-npm-packages',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith('@keytrail/') ? undefined : { path: args.path, external: true },
          );
        },
      },
    ],
  });
  tmp = await mkdtemp(join(tmpdir(), 'kt-witness-cli-'));
  await copyFile(join(FIXTURES, 'witness.key'), join(tmp, 'witness.key'));
  // Git does not keep file modes: the fixture gets its 0600 here.
  await chmod(join(tmp, 'witness.key'), 0o600);
  tdb = await createTestDatabase('witness_cli', []);
});
afterAll(async () => {
  await tdb.drop();
  await rm(tmp, { recursive: true, force: true });
});

describe('keytrail-witness golden transcripts', () => {
  const keyEnv = (): Record<string, string> => ({
    KEYTRAIL_WITNESS_KEY_FILE: join(tmp, 'witness.key'),
  });

  it('--help', async () => {
    await golden('help', ['--help']);
  });
  it('help add-log, serve --help, evidence -h', async () => {
    await golden('help-add-log', ['help', 'add-log']);
    await golden('help-serve', ['serve', '--help']);
    await golden('help-evidence', ['evidence', '-h']);
  });
  it('key prints the cosignature/v1 vkey (known answer)', async () => {
    await golden('key', ['key'], keyEnv());
  });
  it('key refuses a key file others can read', async () => {
    await copyFile(join(FIXTURES, 'witness.key'), join(tmp, 'open.key'));
    await chmod(join(tmp, 'open.key'), 0o644);
    await golden('key-open-file', ['key'], { KEYTRAIL_WITNESS_KEY_FILE: join(tmp, 'open.key') });
  });
  it('key refuses a name that is not the key file name', async () => {
    await golden('key-wrong-name', ['key'], {
      ...keyEnv(),
      KEYTRAIL_WITNESS_NAME: 'other.example/w',
    });
  });
  it('key creates a key on first use, mode 0600', async () => {
    const r = await run(['key'], {
      KEYTRAIL_WITNESS_KEY_FILE: join(tmp, 'new', 'w.key'),
      KEYTRAIL_WITNESS_NAME: 'new.example/w',
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^new\.example\/w\+[0-9a-f]{8}\+B[A-Za-z0-9+/]{43}\n$/);
    expect(r.stderr).toBe(`keytrail-witness: created a new key in ${join(tmp, 'new', 'w.key')}\n`);
    expect((await stat(join(tmp, 'new', 'w.key'))).mode & 0o777).toBe(0o600);
    const again = await run(['key'], { KEYTRAIL_WITNESS_KEY_FILE: join(tmp, 'new', 'w.key') });
    expect(again.stdout).toBe(r.stdout);
    expect(again.stderr).toBe('');
  });
  it('usage errors exit 2', async () => {
    await golden('unknown-command', ['frobnicate']);
    await golden('unknown-option', ['key', '--frob']);
    await golden('add-log-no-key', ['add-log', '--origin', 'example.com/log']);
    await golden('add-log-bad-key', ['add-log', '--key', 'not-a-key']);
    await golden('evidence-bad-limit', ['evidence', '--limit', '0']);
    await golden('help-unknown', ['help', 'frobnicate']);
  });
  it('configuration errors exit 1 and name every bad variable', async () => {
    await golden('bad-config', ['list-logs'], {
      KEYTRAIL_WITNESS_PORT: '99999',
      KEYTRAIL_WITNESS_LOG_LEVEL: 'loud',
    });
  });
  it('add-log, list-logs and evidence on PostgreSQL', async () => {
    const env = { DATABASE_URL: tdb.url };
    const log = new TestLog('example.com/cli', 41);
    await golden('add-log', ['add-log', '--key', log.vkey, '--qpd', '1440'], env);
    await golden('add-log-again', ['add-log', '--key', log.vkey], env);
    await golden('list-logs', ['list-logs'], env);
    await golden('evidence-empty', ['evidence'], env);
  });
});

describe('keytrail-witness serve', () => {
  it('starts on PGlite with a logs file, cosigns, and stops on SIGTERM', async () => {
    const log = new TestLog('example.com/serve', 42);
    log.append(3);
    await writeFile(join(tmp, 'logs.txt'), `logs/v0\n\nvkey ${log.vkey}\nqpd 1440\n`);
    const server = await run(
      [],
      {
        ...{ KEYTRAIL_WITNESS_KEY_FILE: join(tmp, 'witness.key') },
        KEYTRAIL_WITNESS_DATA_DIR: join(tmp, 'data'),
        KEYTRAIL_WITNESS_LOGS: join(tmp, 'logs.txt'),
        KEYTRAIL_WITNESS_PORT: '0',
        KEYTRAIL_WITNESS_LOG_LEVEL: 'silent',
      },
      (err) => /listening on/.test(err) || /keytrail-witness: /.test(err),
    );
    expect(server.stderr).toMatch(
      /^keytrail-witness: listening on http:\/\/127\.0\.0\.1:\d+ as example\.org\/witness\+cacf2e50\+/,
    );
    const url = /listening on (\S+)/.exec(server.stderr)![1]!;
    try {
      const r = await fetch(`${url}/add-checkpoint`, { method: 'POST', body: log.body(0) });
      expect(r.status).toBe(200);
      expect(await r.text()).toMatch(/^— example\.org\/witness /);
      const h = await fetch(`${url}/healthz`);
      expect(await h.json()).toEqual({ status: 'ok' });
    } finally {
      server.kill?.();
    }
  });
});
