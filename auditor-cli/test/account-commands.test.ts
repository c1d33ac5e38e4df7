/**
 * `keytrail-audit lookup` and `monitor` end to end against the fixture directory's account
 * endpoints (real VRF proofs, commitments, prefix proofs and log inclusion), run in-process
 * through `runCli`: verified answers, absent accounts, tampered proofs, a lookup answered from a
 * fork of the log the auditor accepted, and owner monitoring that flags a version the owner did
 * not publish.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytes } from '@keytrail/core';
import { installNodeCrypto } from '@keytrail/server-kit';
import { FixtureLog } from './fixture/log.ts';
import { FixtureServer } from './fixture/server.ts';
import { FixtureAccounts, testDevice } from './fixture/accounts.ts';
import { runCli } from '../src/commands.ts';

installNodeCrypto();

interface Env {
  log: FixtureLog;
  server: FixtureServer;
  accounts: FixtureAccounts;
  dir: string;
  cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

let env: Env | undefined;
afterEach(async () => {
  if (env) {
    await env.server.close();
    await rm(env.dir, { recursive: true, force: true });
  }
  env = undefined;
});

const device = testDevice;

async function setup(): Promise<Env> {
  const log = new FixtureLog({ seed: 'accounts' });
  log.grow(2, 3);
  const accounts = new FixtureAccounts(log);
  const server = await FixtureServer.start(log);
  accounts.install(server);
  const dir = await mkdtemp(join(tmpdir(), 'keytrail-audit-accounts-'));
  await writeFile(join(dir, 'trust.json'), JSON.stringify(log.trust()));
  const cli = async (args: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(args, {
      stdout: { write: (t: string) => ((stdout += t), true) },
      stderr: { write: (t: string) => ((stderr += t), true) },
      env: { KEYTRAIL_AUDIT_NOW: String(log.now + 60) },
      cwd: dir,
    });
    return { code, stdout, stderr };
  };
  env = { log, server, accounts, dir, cli };
  expect((await cli(['init', '--url', server.url, '--trust', 'trust.json'])).code).toBe(0);
  return env;
}

const alice = { tenant: 'acme', account: 'alice' };

describe('lookup', () => {
  it('verifies an account end to end and prints its device list', async () => {
    const e = await setup();
    const phone = device('phone', 1, Date.UTC(2026, 0, 1));
    const laptop = device('laptop', 2, Date.UTC(2026, 0, 2));
    e.accounts.publish(alice, [phone.device], e.log.randomInserts(3));
    e.accounts.publish(alice, [phone.device, laptop.device]);
    e.log.grow(1, 2);
    expect((await e.cli(['sync'])).code).toBe(0);
    const r = await e.cli(['lookup', 'acme/alice']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('version     1 (epoch 5, checkpoint size 6)');
    expect(r.stdout).toContain(`laptop  ed25519 ${bytes.toBase64(laptop.device.identityKey)}`);
    expect(r.stdout).toContain('phone   ed25519');
    const j = await e.cli(['lookup', 'alice', '--tenant', 'acme', '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: true, version: 1, epoch: 5 });
  });

  it('reports a proven absence', async () => {
    const e = await setup();
    const r = await e.cli(['lookup', 'acme/nobody']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('none: the directory proves no device list is published');
  });

  it('fails on a tampered value or proof', async () => {
    const e = await setup();
    e.accounts.publish(alice, [device('phone', 1, 1).device]);
    const other = bytes.toBase64(
      new Uint8Array([1, 0, 0]), // an empty device list: another value than the committed one
    );
    e.accounts.install(e.server, (_p, body) => ({ ...body, value: other }));
    const r = await e.cli(['lookup', 'acme/alice']);
    expect(r.code).toBe(1);
    // The client recomputes the commitment from the value: another value breaks the prefix proof.
    expect(r.stdout).toMatch(/^MISBEHAVIOUR FOUND: ERR_PREFIX_PROOF: /);
  });

  it('fails when the answer comes from a fork of the log the auditor accepted', async () => {
    const e = await setup();
    e.accounts.publish(alice, [device('phone', 1, 1).device]);
    expect((await e.cli(['sync'])).code).toBe(0);
    const forked = e.log.checkpoint(e.log.size, { root: new Uint8Array(32).fill(9) });
    e.server.hooks.checkpoint = () => forked;
    const r = await e.cli(['lookup', 'acme/alice', '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({
      ok: false,
      error: { code: 'ERR_LOG_INCONSISTENT' },
    });
  });

  it('rejects a malformed account and reports an unreachable directory', async () => {
    const e = await setup();
    expect((await e.cli(['lookup', 'not an account'])).code).toBe(2);
    await e.server.close();
    e.server.close = () => Promise.resolve();
    const r = await e.cli(['lookup', 'acme/alice']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ERR_TRANSPORT');
  });
});

describe('monitor', () => {
  it('verifies the owner history and flags a version the owner did not publish', async () => {
    const e = await setup();
    const phone = device('phone', 1, 1000);
    const v0 = e.accounts.publish(alice, [phone.device]);
    const v1 = e.accounts.publish(alice, [phone.device, device('tablet', 3, 2000).device]);
    await writeFile(
      join(e.dir, 'phone.json'),
      JSON.stringify({ id: 'phone', seed: bytes.toBase64(phone.seed) }),
    );
    const known: Record<string, string> = {
      [v0]: bytes.toBase64(e.accounts.value(alice, v0)),
      [v1]: bytes.toBase64(e.accounts.value(alice, v1)),
    };
    await writeFile(join(e.dir, 'known.json'), JSON.stringify(known));
    const ok = await e.cli([
      'monitor',
      'acme/alice',
      '--device-key',
      'phone.json',
      '--known',
      'known.json',
    ]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('history verified: exactly the versions the owner published');
    // The directory adds a device behind the owner's back.
    const mallory = device('mallory', 9, 3000);
    e.accounts.publish(alice, [phone.device, mallory.device]);
    const bad = await e.cli([
      'monitor',
      'acme/alice',
      '--device-key',
      'phone.json',
      '--known',
      'known.json',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain('version 2 (epoch 5)  FLAGGED: unknown-version');
    expect(bad.stdout).toContain('mallory');
    expect(bad.stdout).toContain('MISBEHAVIOUR FOUND: 1 version(s) flagged');
    const j = await e.cli([
      'monitor',
      'acme/alice',
      '--device-key',
      'phone.json',
      '--known',
      'known.json',
      '--json',
    ]);
    expect(JSON.parse(j.stdout)).toMatchObject({
      ok: false,
      alerts: [{ kind: 'unknown-version', version: 2 }],
    });
    // Without --known the history is shown and nothing can be flagged.
    const plain = await e.cli(['monitor', 'acme/alice', '--device-key', 'phone.json']);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain('pass --known to flag versions you did not publish');
  });

  it('is refused with a key that is not one of the account devices', async () => {
    const e = await setup();
    e.accounts.publish(alice, [device('phone', 1, 1).device]);
    await writeFile(
      join(e.dir, 'other.json'),
      JSON.stringify({ id: 'phone', seed: bytes.toBase64(new Uint8Array(32).fill(7)) }),
    );
    const r = await e.cli(['monitor', 'acme/alice', '--device-key', 'other.json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ERR_SERVICE');
    expect((await e.cli(['monitor', 'acme/alice'])).code).toBe(2);
  });
});
