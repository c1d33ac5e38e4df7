/**
 * The followed-logs file (witness-network `logs/v0`), the key file and the environment.
 */
import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@keytrail/server-kit';
import { loadOrCreateKeyFile, parseLogList, readConfig, witnessKeyFromSeed } from '../src/index.ts';

// Keys from the vectors: the litewitness Sigsum-style log and Tessera's testdata log.
const SIGSUM =
  'sigsum.org/v1/tree/4d6d8825a6bb689d459628312889dfbb0bcd41b5211d9e1ce768b0ff0309e562+5202289b+Af/cLU2Y5BJNP+r3iMDC+av9eWCD0fBJVDfzAux5zxAP';
const TESSERA = 'example.com/log/testdata+33d7b496+AeHTu4Q3hEIMHNqc6fASMsq3rKNx280NI+oO5xCFkkSx';
const MONKEYS = 'monkeys+db4d9f7e+AULaJMvTtDLHPUcUrjdDad9vDlh/PTfC2VV60JUtCfWT';

describe('log list (logs/v0)', () => {
  it('parses entries, defaults the origin to the key name, merges keys of one origin', () => {
    const logs = parseLogList(`#
# List: test
#
logs/v0
revision 3

# a Sigsum log: origin = key name
vkey ${SIGSUM}
qpd 8640
contact sigsum-logs (at) example.org

vkey ${TESSERA}
origin none
bastion none

vkey ${MONKEYS}
origin example.com/rotating
qpd 24

vkey ${TESSERA}
origin example.com/rotating
`);
    expect(logs).toEqual([
      {
        origin:
          'sigsum.org/v1/tree/4d6d8825a6bb689d459628312889dfbb0bcd41b5211d9e1ce768b0ff0309e562',
        vkeys: [SIGSUM],
        qpd: 8640,
        contact: 'sigsum-logs (at) example.org',
      },
      { origin: 'example.com/log/testdata', vkeys: [TESSERA], qpd: null, contact: null },
      { origin: 'example.com/rotating', vkeys: [MONKEYS, TESSERA], qpd: 24, contact: null },
    ]);
  });

  it('accepts the witness-network lists as published (no revision line)', () => {
    expect(parseLogList(`logs/v0\n\nvkey ${MONKEYS}\nqpd 86400\ncontact x\n`)).toHaveLength(1);
    expect(parseLogList('# empty\nlogs/v0\n')).toEqual([]);
  });

  it.each([
    ['', 'line 1: expected the header "logs/v0"'],
    [`vkey ${MONKEYS}\n`, 'line 1: expected the header "logs/v0"'],
    ['logs/v0\norigin x\n', 'line 2: "origin" outside an entry'],
    [`logs/v0\nvkey ${MONKEYS}\nfrob 1\n`, 'line 3: unknown keyword "frob"'],
    [`logs/v0\nvkey ${MONKEYS}\norigin a\norigin b\n`, 'line 4: origin given twice'],
    [`logs/v0\nvkey ${MONKEYS}\norigin a b\n`, 'line 3: origin must be non-empty without spaces'],
    [`logs/v0\nvkey ${MONKEYS}\nqpd 0\n`, 'line 3: qpd must be a whole number'],
    [
      'logs/v0\nvkey monkeys+00000000+AULaJMvTtDLHPUcUrjdDad9vDlh/PTfC2VV60JUtCfWT\n',
      'line 2: vkey is not',
    ],
    // A cosignature (0x04) key is not a log key.
    [
      'logs/v0\nvkey witness+24b37851+BNYV1Ztajd9BvyjP2HgpwrqYL6TjOwIjGMOq8Bu42xbN\n',
      'line 2: vkey is not',
    ],
    [
      `logs/v0\nvkey ${MONKEYS}\nqpd 1\n\nvkey ${TESSERA}\norigin monkeys\nqpd 2\n`,
      'line 5: conflicting qpd',
    ],
  ])('refuses %j', (text, message) => {
    expect(() => parseLogList(text)).toThrow(
      expect.objectContaining({ code: 'ERR_WITNESS_CONFIG' }),
    );
    expect(() => parseLogList(text)).toThrow(message);
  });
});

describe('key file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kt-witness-key-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is created once with mode 0600 in a 0700 directory, then reloaded', async () => {
    const path = join(dir, 'sub', 'witness.key');
    const [a, b] = await Promise.all([
      loadOrCreateKeyFile(path, { defaultName: 'w.example/1' }),
      loadOrCreateKeyFile(path, { defaultName: 'w.example/1' }),
    ]);
    expect([a.created, b.created].sort()).toEqual([false, true]);
    expect(a.key.vkey).toBe(b.key.vkey);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'sub'))).mode & 0o777).toBe(0o700);
    expect(await readFile(path, 'utf8')).toMatch(
      /^PRIVATE\+KEY\+w\.example\/1\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}\n$/,
    );
    const again = await loadOrCreateKeyFile(path, { defaultName: 'ignored' });
    expect(again).toMatchObject({ created: false, key: { vkey: a.key.vkey, name: 'w.example/1' } });
  });

  it('holds the Go signer key format (known answer)', async () => {
    const path = join(dir, 'ka.key');
    const key = witnessKeyFromSeed(
      'example.org/witness',
      new Uint8Array(32).fill(0).fill(0x11, 0, 1),
    );
    await writeFile(path, `${key.signerKeyString}\n`, { mode: 0o600 });
    const loaded = await loadOrCreateKeyFile(path);
    expect(loaded.key.vkey).toBe(
      'example.org/witness+cacf2e50+BGbguFjkYqYJ5m/nE3DIFtiEb/ED1UmaIqf+w3/bxCSn',
    );
  });

  it('refuses a file others can read, a wrong name, garbage, and a missing file without a name', async () => {
    const path = join(dir, 'ka.key');
    await chmod(path, 0o644);
    await expect(loadOrCreateKeyFile(path)).rejects.toMatchObject({
      code: 'ERR_WITNESS_KEY_FILE',
      message: expect.stringContaining('chmod 600'),
    });
    await chmod(path, 0o600);
    await expect(loadOrCreateKeyFile(path, { name: 'other.example' })).rejects.toMatchObject({
      code: 'ERR_WITNESS_KEY_FILE',
      message: expect.stringContaining('"example.org/witness", not "other.example"'),
    });
    const junk = join(dir, 'junk.key');
    await writeFile(junk, 'PRIVATE+KEY+x+00000000+AAAA\n', { mode: 0o600 });
    await expect(loadOrCreateKeyFile(junk)).rejects.toMatchObject({ code: 'ERR_WITNESS_KEY_FILE' });
    await expect(loadOrCreateKeyFile(join(dir, 'none.key'))).rejects.toMatchObject({
      code: 'ERR_WITNESS_KEY_FILE',
    });
    await expect(
      loadOrCreateKeyFile(join(dir, 'bad.key'), { name: 'has space' }),
    ).rejects.toMatchObject({
      code: 'ERR_WITNESS_KEY_FILE',
    });
  });
});

describe('environment', () => {
  it('has defaults that run without any configuration', () => {
    const c = readConfig({});
    expect(c).toMatchObject({
      databaseUrl: undefined,
      dataDir: join('.keytrail', 'witness'),
      keyFile: join('.keytrail', 'witness', 'witness.key'),
      host: '127.0.0.1',
      port: 7380,
      prefix: '',
      rateLimitPerMinute: 600,
      trustProxy: false,
      logLevel: 'info',
    });
    expect(c.defaultName).toMatch(/\/witness$/);
  });

  it('lists every bad value at once', () => {
    let err: unknown;
    try {
      readConfig({
        KEYTRAIL_WITNESS_PORT: '99999',
        KEYTRAIL_WITNESS_NAME: 'a b',
        KEYTRAIL_WITNESS_PREFIX: 'witness/',
        DATABASE_URL: 'mysql://x',
        KEYTRAIL_WITNESS_LOG_LEVEL: 'loud',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toHaveLength(5);
  });
});
