/**
 * Golden transcripts of the `keytrail-audit` executable (stdout, stderr, exit code) against the
 * fixture directory, with ports and temporary paths normalised. The transcripts under
 * `test/golden/` double as documentation of the CLI's output.
 * @module
 */
import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installNodeCrypto } from '@keytrail/server-kit';
import { FixtureLog, type Insert } from './fixture/log.ts';
import { FixtureServer } from './fixture/server.ts';
import { FixtureAccounts, testDevice } from './fixture/accounts.ts';
import { golden, run, start, transcriptStep, type RunResult } from './cli-runner.ts';
import vectors from './vectors/checkpoints.json' with { type: 'json' };

installNodeCrypto();

const TIMEOUT = 180_000;

interface Scenario {
  readonly log: FixtureLog;
  readonly server: FixtureServer;
  readonly dir: string;
  readonly env: Record<string, string>;
  transcript: string;
  step(args: string[]): Promise<RunResult>;
  close(): Promise<void>;
}

async function scenario(epochs = 4, perEpoch = 3): Promise<Scenario> {
  const log = new FixtureLog({ seed: 'golden' });
  log.grow(epochs, perEpoch);
  const server = await FixtureServer.start(log);
  const serverUrl = server.url;
  const dir = await mkdtemp(join(tmpdir(), 'keytrail-audit-golden-'));
  await writeFile(join(dir, 'trust.json'), JSON.stringify(log.trust(), null, 2));
  const env = { KEYTRAIL_AUDIT_NOW: String(log.now + 60) };
  const s: Scenario = {
    log,
    server,
    dir,
    env,
    transcript: '',
    async step(args) {
      const r = await run(args, dir, env);
      const norm = (t: string): string =>
        t.replaceAll(serverUrl, 'http://127.0.0.1:PORT').replaceAll(dir, '$TMP');
      const shown = args.map((a) => norm(a));
      s.transcript += `${s.transcript ? '\n' : ''}${transcriptStep(shown, { ...r, stdout: norm(r.stdout), stderr: norm(r.stderr) })}`;
      return r;
    },
    async close() {
      if (process.env.GOLDEN_DEBUG === '1') console.log(s.transcript);
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return s;
}

describe.concurrent('keytrail-audit golden transcripts', () => {
  it('help', { timeout: TIMEOUT }, async () => {
    const s = await scenario(0, 0);
    try {
      await s.step(['--help']);
      await s.step([]);
      for (const c of [
        'init',
        'sync',
        'status',
        'verify-checkpoint',
        'verify-evidence',
        'lookup',
        'monitor',
      ]) {
        await s.step([c, '--help']);
      }
      expect(s.transcript).toBe(golden('help', s.transcript));
    } finally {
      await s.close();
    }
  });

  it('usage errors', { timeout: TIMEOUT }, async () => {
    const s = await scenario(0, 0);
    try {
      await writeFile(
        join(s.dir, 'bad-trust.json'),
        JSON.stringify({ ...s.log.trust(), quorum: 5 }),
      );
      expect((await s.step(['frobnicate'])).code).toBe(2);
      expect((await s.step(['sync', '--frob'])).code).toBe(2);
      expect((await s.step(['init', '--url', s.server.url])).code).toBe(2);
      expect((await s.step(['status', 'extra'])).code).toBe(2);
      expect((await s.step(['status', '--state', 'nowhere'])).code).toBe(2);
      expect((await s.step(['sync', '--state', 'nowhere', '--json'])).code).toBe(2);
      expect(
        (await s.step(['init', '--url', s.server.url, '--trust', 'bad-trust.json'])).code,
      ).toBe(2);
      expect((await s.step(['init', '--url', 'ftp://example', '--trust', 'trust.json'])).code).toBe(
        2,
      );
      expect((await s.step(['init', '--url', s.server.url, '--trust', 'trust.json'])).code).toBe(0);
      expect((await s.step(['init', '--url', s.server.url, '--trust', 'trust.json'])).code).toBe(2);
      expect((await s.step(['verify-checkpoint', 'missing.txt', '--key', 'x'])).code).toBe(2);
      expect((await s.step(['verify-evidence', 'trust.json'])).code).toBe(2);
      expect(s.transcript).toBe(golden('usage-errors', s.transcript));
    } finally {
      await s.close();
    }
  });

  it('audit of an honest directory, then of its growth', { timeout: TIMEOUT }, async () => {
    const s = await scenario(4, 3);
    try {
      expect((await s.step(['init', '--url', s.server.url, '--trust', 'trust.json'])).code).toBe(0);
      expect((await s.step(['status'])).code).toBe(0);
      expect((await s.step(['sync'])).code).toBe(0);
      expect((await s.step(['sync', '--json'])).code).toBe(0);
      s.log.grow(3, 2);
      expect((await s.step(['sync', '--state', '.keytrail-audit'])).code).toBe(0);
      expect((await s.step(['status', '--json'])).code).toBe(0);
      expect(existsSync(join(s.dir, '.keytrail-audit', 'leaves.bin'))).toBe(true);
      expect(s.transcript).toBe(golden('audit-honest', s.transcript));
    } finally {
      await s.close();
    }
  });

  it(
    'audit that catches a rewritten leaf (akd #495), with evidence re-checked',
    { timeout: TIMEOUT },
    async () => {
      const s = await scenario(3, 3);
      try {
        await s.step(['init', '--url', s.server.url, '--trust', 'trust.json', '--state', 'audit']);
        expect((await s.step(['sync', '--state', 'audit'])).code).toBe(0);
        const victim = s.log.epochs[2]?.inserts[1] as Insert;
        s.log.seal(
          [...s.log.randomInserts(2), { label: victim.label, commitment: s.log.prng.bytes32() }],
          {
            allowOverwrite: true,
          },
        );
        expect((await s.step(['sync', '--state', 'audit'])).code).toBe(1);
        expect((await s.step(['sync', '--state', 'audit', '--json'])).code).toBe(1);
        const file = 'audit/evidence/epoch-4-leaf-rewritten.json';
        expect((await s.step(['verify-evidence', file])).code).toBe(1);
        expect(
          (await s.step(['verify-evidence', file, '--key', s.log.trust().logKey, '--json'])).code,
        ).toBe(1);
        expect((await s.step(['status', '--state', 'audit'])).code).toBe(1);
        // a tampered evidence file is not confirmed
        const ev = JSON.parse(await readFile(join(s.dir, file), 'utf8')) as { inserts: string };
        const packed = Buffer.from(ev.inserts, 'base64');
        packed[100] = (packed[100] ?? 0) ^ 1;
        await writeFile(
          join(s.dir, 'tampered.json'),
          JSON.stringify({ ...ev, inserts: packed.toString('base64') }),
        );
        expect((await s.step(['verify-evidence', 'tampered.json'])).code).toBe(0);
        expect(s.transcript).toBe(golden('audit-leaf-rewritten', s.transcript));
      } finally {
        await s.close();
      }
    },
  );

  it('audit that catches a fork and a rollback', { timeout: TIMEOUT }, async () => {
    const s = await scenario(5, 1);
    try {
      await s.step(['init', '--url', s.server.url, '--trust', 'trust.json']);
      expect((await s.step(['sync'])).code).toBe(0);
      const forked = s.log.checkpoint(6, { root: new Uint8Array(32).fill(7) });
      s.server.hooks.checkpoint = () => forked;
      expect((await s.step(['sync'])).code).toBe(1);
      expect(
        (
          await s.step([
            'verify-evidence',
            '.keytrail-audit/evidence/checkpoint-6-checkpoint-fork.json',
          ])
        ).code,
      ).toBe(1);
      delete s.server.hooks.checkpoint;
      s.server.servedSize = 3;
      expect((await s.step(['sync'])).code).toBe(1);
      expect(
        (
          await s.step([
            'verify-evidence',
            '.keytrail-audit/evidence/checkpoint-3-checkpoint-rollback.json',
          ])
        ).code,
      ).toBe(1);
      expect(s.transcript).toBe(golden('audit-fork-rollback', s.transcript));
    } finally {
      await s.close();
    }
  });

  it('lookup and owner monitoring', { timeout: TIMEOUT }, async () => {
    const s = await scenario(2, 2);
    try {
      const accounts = new FixtureAccounts(s.log);
      accounts.install(s.server);
      const alice = { tenant: 'acme', account: 'alice' };
      const phone = testDevice('phone', 1, Date.UTC(2026, 0, 1));
      const laptop = testDevice('laptop', 2, Date.UTC(2026, 0, 1, 12));
      accounts.publish(alice, [phone.device]);
      accounts.publish(alice, [phone.device, laptop.device]);
      await writeFile(
        join(s.dir, 'phone.json'),
        JSON.stringify({ id: 'phone', seed: Buffer.from(phone.seed).toString('base64') }),
      );
      await writeFile(
        join(s.dir, 'known.json'),
        JSON.stringify({
          0: Buffer.from(accounts.value(alice, 0)).toString('base64'),
          1: Buffer.from(accounts.value(alice, 1)).toString('base64'),
        }),
      );
      await s.step(['init', '--url', s.server.url, '--trust', 'trust.json']);
      expect((await s.step(['sync'])).code).toBe(0);
      expect((await s.step(['lookup', 'acme/alice'])).code).toBe(0);
      expect((await s.step(['lookup', 'acme/bob'])).code).toBe(0);
      const args = ['monitor', 'acme/alice', '--device-key', 'phone.json', '--known', 'known.json'];
      expect((await s.step(args)).code).toBe(0);
      accounts.publish(alice, [
        phone.device,
        testDevice('mallory', 9, Date.UTC(2026, 0, 2)).device,
      ]);
      expect((await s.step(args)).code).toBe(1);
      expect((await s.step(['lookup', 'acme/alice', '--json'])).code).toBe(0);
      expect(s.transcript).toBe(golden('lookup-monitor', s.transcript));
    } finally {
      await s.close();
    }
  });

  it('network and download errors', { timeout: TIMEOUT }, async () => {
    const s = await scenario(2, 2);
    try {
      await s.step(['init', '--url', s.server.url, '--trust', 'trust.json']);
      s.server.hooks.raw = (_req, res, u) => {
        if (u.pathname !== '/v1/log/leaves') return false;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"leaves": ["not base64!"]}');
        return true;
      };
      expect((await s.step(['sync'])).code).toBe(2);
      s.server.hooks.raw = (_req, res, u) => {
        if (u.pathname !== '/v1/checkpoint') return false;
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end('{"code":"ERR_OVERLOADED","message":"try later"}');
        return true;
      };
      expect((await s.step(['sync'])).code).toBe(2);
      delete s.server.hooks.raw;
      await s.server.close();
      expect((await s.step(['sync'])).code).toBe(2);
      expect((await s.step(['sync', '--json'])).code).toBe(2);
      expect(s.transcript).toBe(golden('network-errors', s.transcript));
    } finally {
      await rm(s.dir, { recursive: true, force: true });
    }
  });

  it('verify-checkpoint on real notes', { timeout: TIMEOUT }, async () => {
    const s = await scenario(0, 0);
    try {
      const v = vectors.valid;
      const sum = v.find((x) => x.desc === 'sumdb-35225469');
      const pixel = v.find((x) => x.desc.startsWith('Pixel'));
      const aw = v.find((x) => x.desc.startsWith('Armored Witness keys'));
      const sigsum = v.find((x) => x.desc.startsWith('Sigsum'));
      await writeFile(join(s.dir, 'sumdb.note'), sum?.note ?? '');
      await writeFile(join(s.dir, 'pixel.note'), pixel?.note ?? '');
      await writeFile(join(s.dir, 'sigsum.note'), sigsum?.note ?? '');
      await writeFile(
        join(s.dir, 'forged.note'),
        (sum?.note ?? '').replace('35225469', '35225470'),
      );
      const key = (x: typeof sum): string[] => (x?.keys ?? []).flatMap((k) => ['--key', k]);
      const wit = (x: typeof sum): string[] =>
        (x?.witnesses ?? []).flatMap((k) => ['--witness', k]);
      expect((await s.step(['verify-checkpoint', 'sumdb.note', ...key(sum)])).code).toBe(0);
      expect((await s.step(['verify-checkpoint', 'forged.note', ...key(sum)])).code).toBe(1);
      expect((await s.step(['verify-checkpoint', 'sumdb.note', ...key(pixel)])).code).toBe(1);
      expect(
        (await s.step(['verify-checkpoint', 'pixel.note', ...key(pixel), ...wit(pixel)])).code,
      ).toBe(0);
      expect(
        (await s.step(['verify-checkpoint', 'pixel.note', ...key(aw), ...wit(aw), '--json'])).code,
      ).toBe(0);
      expect(
        (
          await s.step([
            'verify-checkpoint',
            'sigsum.note',
            ...key(sigsum),
            ...wit(sigsum),
            '--quorum',
            '2',
          ])
        ).code,
      ).toBe(0);
      expect(
        (
          await s.step([
            'verify-checkpoint',
            'pixel.note',
            ...key(pixel),
            ...wit(pixel),
            '--max-age',
            '3600',
          ])
        ).code,
      ).toBe(1);
      expect(s.transcript).toBe(golden('verify-checkpoint', s.transcript));
    } finally {
      await s.close();
    }
  });

  it('a sync killed mid-replay resumes from its last commit', { timeout: TIMEOUT }, async () => {
    const s = await scenario(60, 3);
    try {
      await s.step(['init', '--url', s.server.url, '--trust', 'trust.json']);
      let stalled: (() => void) | undefined;
      const reached = new Promise<void>((resolve) => (stalled = resolve));
      s.server.hooks.raw = (_req, _res, u) => {
        if (u.pathname !== '/v1/epochs/45/inserts') return false;
        stalled?.(); // never answered: the process is killed while waiting
        return true;
      };
      const child = start(['sync'], s.dir, s.env);
      await reached;
      child.kill('SIGKILL');
      const killed = await child.done;
      expect(killed.code).toBeNull();
      const mid = JSON.parse(
        await readFile(join(s.dir, '.keytrail-audit', 'state.json'), 'utf8'),
      ) as {
        replayed: number;
        records: number;
      };
      expect(mid.records).toBe(61);
      expect(mid.replayed).toBeLessThanOrEqual(45);
      // the stale lock of the killed process does not block the next run
      expect(existsSync(join(s.dir, '.keytrail-audit', 'lock'))).toBe(true);
      delete s.server.hooks.raw;
      const r = await run(['sync', '--json'], s.dir, s.env);
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout) as {
        totalEpochs: number;
        epochsReplayed: number;
        prefixRoot: string;
      };
      expect(report.totalEpochs).toBe(61);
      expect(report.epochsReplayed).toBe(61 - mid.replayed);
      expect(report.prefixRoot).toBe(
        Buffer.from(s.log.epochs[60]?.record.prefixRoot ?? []).toString('base64'),
      );
    } finally {
      await s.close();
    }
  });

  it('Ctrl-C stops a sync cleanly with its progress saved', { timeout: TIMEOUT }, async () => {
    const s = await scenario(20, 2);
    try {
      await s.step(['init', '--url', s.server.url, '--trust', 'trust.json']);
      let stalled: (() => void) | undefined;
      const reached = new Promise<void>((resolve) => (stalled = resolve));
      s.server.hooks.raw = (_req, _res, u) => {
        if (u.pathname !== '/v1/epochs/12/inserts') return false;
        stalled?.();
        return true;
      };
      const child = start(['sync'], s.dir, s.env);
      await reached;
      child.kill('SIGINT');
      const r = await child.done;
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(
        'keytrail-audit sync: ERR_AUDIT_INTERRUPTED: interrupted; progress saved, epochs 0..11 verified\n',
      );
      const st = JSON.parse(
        await readFile(join(s.dir, '.keytrail-audit', 'state.json'), 'utf8'),
      ) as { replayed: number };
      expect(st.replayed).toBe(12);
      expect(existsSync(join(s.dir, '.keytrail-audit', 'lock'))).toBe(false);
      delete s.server.hooks.raw;
      expect((await run(['sync'], s.dir, s.env)).code).toBe(0);
    } finally {
      await s.close();
    }
  });
});
