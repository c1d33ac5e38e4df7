/**
 * Unit tests: the consistency-proof arithmetic behind fork evidence (against core's proof
 * generator), the trust file, strict parsing of the Directory HTTP API, and the state store's
 * crash recovery.
 * @module
 */
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, appendFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytes, epoch, merkle } from '@keytrail/core';
import { installNodeCrypto } from '@keytrail/server-kit';
import { rootsFromConsistencyProof, digestOfPacked } from '../src/evidence.ts';
import { parseTrustConfig, parseTrustFile } from '../src/trust.ts';
import { HttpDirectorySource } from '../src/directory-source.ts';
import { StateStore, INITIAL_STATE } from '../src/state-store.ts';
import { AuditError } from '../src/errors.ts';
import { FixtureLog } from './fixture/log.ts';
import { progressFor, SILENT_PROGRESS } from '../src/progress.ts';

installNodeCrypto();

const hex = (b: Uint8Array | undefined): string => (b ? bytes.toHex(b) : 'none');

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return e instanceof AuditError ? e.code : String(e);
  }
  return 'none';
}

async function codeAsync(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return e instanceof AuditError ? e.code : String(e);
  }
  return 'none';
}

describe('rootsFromConsistencyProof', () => {
  const leaves = Array.from({ length: 70 }, (_, i) => merkle.leafHash(Uint8Array.of(i)));
  const isPow2 = (n: number): boolean => (n & (n - 1)) === 0;

  it('recovers both roots from every proof 1 ≤ m < n ≤ 70', () => {
    for (let n = 2; n <= 70; n++) {
      const all = leaves.slice(0, n);
      for (let m = 1; m < n; m++) {
        const proof = merkle.consistencyProof(all, m);
        const oldRoot = merkle.rootHash(all.slice(0, m));
        const r = rootsFromConsistencyProof(m, n, proof, isPow2(m) ? oldRoot : undefined);
        expect(hex(r?.oldRoot)).toBe(hex(oldRoot));
        expect(hex(r?.newRoot)).toBe(hex(merkle.rootHash(all)));
      }
    }
  });

  it('never lets a changed proof reach both roots (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 70 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        (n, mSeed, which, bit) => {
          const m = 1 + (mSeed % (n - 1));
          const all = leaves.slice(0, n);
          const proof = merkle.consistencyProof(all, m);
          const oldRoot = merkle.rootHash(all.slice(0, m));
          const i = which % proof.length;
          const bad = proof.map((p, j) => {
            if (j !== i) return p;
            const c = new Uint8Array(p); // a copy: proof elements may be Buffers (slice shares)
            c[bit >> 3] = (c[bit >> 3] ?? 0) ^ (1 << (bit & 7));
            return c;
          });
          const r = rootsFromConsistencyProof(m, n, bad, isPow2(m) ? oldRoot : undefined);
          const both =
            hex(r?.oldRoot) === hex(oldRoot) && hex(r?.newRoot) === hex(merkle.rootHash(all));
          expect(both).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects proofs of the wrong shape', () => {
    const all = leaves.slice(0, 10);
    const proof = merkle.consistencyProof(all, 3);
    expect(rootsFromConsistencyProof(3, 10, [...proof, proof[0] as Uint8Array])).toBeNull();
    expect(rootsFromConsistencyProof(3, 10, [])).toBeNull();
    expect(rootsFromConsistencyProof(0, 10, proof)).toBeNull();
    expect(rootsFromConsistencyProof(10, 10, proof)).toBeNull();
    expect(rootsFromConsistencyProof(4, 10, merkle.consistencyProof(all, 4))).toBeNull(); // old root needed
  });
});

describe('digestOfPacked', () => {
  it('equals core insertsDigest for any order of distinct labels', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.uint8Array({ minLength: 32, maxLength: 32 }), {
          maxLength: 20,
          selector: (k) => bytes.toHex(k),
        }),
        (labels) => {
          const inserts = labels.map((label, i) => ({
            label,
            commitment: new Uint8Array(32).fill(i),
          }));
          const packed = bytes.concatBytes(...inserts.flatMap((x) => [x.label, x.commitment]));
          expect(hex(digestOfPacked(packed))).toBe(hex(epochDigest(inserts)));
        },
      ),
      { numRuns: 100 },
    );
  });
});

function epochDigest(inserts: { label: Uint8Array; commitment: Uint8Array }[]): Uint8Array {
  return epoch.insertsDigest(inserts);
}

describe('trust file', () => {
  const good = new FixtureLog().trust();

  it('accepts the fixture trust and the /v1/config witness shape', () => {
    expect(parseTrustConfig(good)).toEqual(good);
    const objects = {
      ...good,
      witnesses: good.witnesses.map((vkey) => ({ vkey, name: 'x', url: '' })),
    };
    expect(parseTrustConfig(objects).witnesses).toEqual(good.witnesses);
    const { origin: _origin, ...noOrigin } = good;
    expect(parseTrustConfig(noOrigin).origin).toBe('keytrail.test/directory');
  });

  it('names the field at fault', () => {
    const msg = (v: unknown): string => {
      try {
        parseTrustConfig(v);
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(msg({ ...good, logKey: good.witnesses[0] })).toContain(
      '"logKey" is not a valid verifier key (ERR_VKEY_UNSUPPORTED_TYPE)',
    );
    expect(msg({ ...good, witnesses: [good.logKey] })).toContain(
      '"witnesses"[0] is not a cosignature/v1',
    );
    expect(msg({ ...good, witnesses: [good.witnesses[0], good.witnesses[0]] })).toContain(
      'listed twice',
    );
    expect(msg({ ...good, vrfPublicKey: 'AAAA' })).toContain('"vrfPublicKey" must be 32 bytes');
    expect(msg({ ...good, quorum: -1 })).toContain('"quorum" must be a non-negative integer');
    expect(msg({ ...good, maxAgeSeconds: 0 })).toContain(
      '"maxAgeSeconds" must be a positive integer',
    );
    expect(msg({ ...good, origin: 'a\nb' })).toContain('"origin"');
    expect(code(() => parseTrustFile('{'))).toBe('ERR_AUDIT_TRUST_FILE');
    expect(code(() => parseTrustFile('[]'))).toBe('ERR_AUDIT_TRUST_FILE');
  });
});

describe('HttpDirectorySource', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => {
      if (server)
        server.close(() => {
          resolve();
        });
      else resolve();
    });
    server = undefined;
  });

  async function serve(
    body: (path: string, n: number) => { status?: number; text: string } | 'cut',
  ): Promise<string> {
    let n = 0;
    server = createServer((req, res) => {
      const r = body(req.url ?? '', n++);
      if (r === 'cut') {
        res.writeHead(200, { 'content-length': '100' });
        res.write('{"proof":[', () => setTimeout(() => res.destroy(), 10));
        return;
      }
      res.writeHead(r.status ?? 200, { 'content-type': 'application/json' });
      res.end(r.text);
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const A32 = bytes.toBase64(new Uint8Array(32));

  it('decodes well-formed answers', async () => {
    const url = await serve((path) => {
      if (path.startsWith('/v1/epochs/3/inserts')) {
        return { text: JSON.stringify({ inserts: [{ label: A32, commitment: A32 }], next: A32 }) };
      }
      return { text: JSON.stringify({ proof: [A32, A32] }) };
    });
    const src = new HttpDirectorySource(`${url}/`, { retries: 0 });
    expect(src.name).toBe(url);
    expect((await src.consistency(1, 2)).length).toBe(2);
    const page = await src.inserts(3, new Uint8Array(32), 10);
    expect(page.count).toBe(1);
    expect(page.entries.length).toBe(64);
    expect(page.next?.length).toBe(32);
  });

  it('rejects every malformed shape with ERR_AUDIT_DOWNLOAD_MALFORMED', async () => {
    const bodies = [
      '{"proof": "x"}',
      `{"proof": ["${A32.slice(0, -2)}=="]}`,
      `{"proof": ["${'A'.repeat(42)}B="]}`, // non-zero trailing bits
      `{"proof": [${Array(129).fill(`"${A32}"`).join(',')}]}`,
      'not json',
      '{"inserts": [], "next": "' + A32 + '"}',
      `{"inserts": [{"label": "${A32}"}], "next": null}`,
      `{"inserts": [{"label": "${A32}", "commitment": "${A32}"}, {"label": "${A32}", "commitment": "${A32}"}], "next": null}`,
      '{"leaves": ["AA=="]}',
      '{"leaves": ["A"]}',
    ];
    let i = 0;
    const url = await serve(() => ({ text: bodies[i] ?? '' }));
    const src = new HttpDirectorySource(url, { retries: 0 });
    const calls = [
      () => src.consistency(1, 2),
      () => src.consistency(1, 2),
      () => src.consistency(1, 2),
      () => src.consistency(1, 2),
      () => src.consistency(1, 2),
      () => src.inserts(1, null, 10),
      () => src.inserts(1, null, 10),
      () => src.inserts(1, null, 1),
      () => src.leaves(0, 2),
      () => src.leaves(0, 1),
    ];
    for (const call of calls) {
      expect(`${i}: ${await codeAsync(call())}`).toBe(`${i}: ERR_AUDIT_DOWNLOAD_MALFORMED`);
      i++;
    }
  });

  it('caps bodies, reports HTTP errors with their code, and retries a cut-short body', async () => {
    const url = await serve((path, n) => {
      if (path.startsWith('/v1/log/leaves')) return { text: `{"leaves": ["${'A'.repeat(2000)}"]}` };
      if (path.startsWith('/v1/checkpoint'))
        return { status: 404, text: '{"code":"ERR_NOT_FOUND","message":"x"}' };
      return n < 3 ? 'cut' : { text: `{"proof": ["${A32}"]}` };
    });
    expect(await codeAsync(new HttpDirectorySource(url, { maxBodyBytes: 100 }).leaves(0, 1))).toBe(
      'ERR_AUDIT_DOWNLOAD_MALFORMED',
    );
    const src = new HttpDirectorySource(url, { retries: 2 });
    let msg = '';
    try {
      await src.checkpoint();
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toBe('GET /v1/checkpoint: HTTP 404 ERR_NOT_FOUND');
    // requests 0 and 1 went to leaves/checkpoint; 2 is cut, 3 answers: one retry suffices
    expect((await src.consistency(1, 2)).length).toBe(1);
  });

  it('refuses non-http URLs and fails fast on a refused connection', async () => {
    expect(code(() => new HttpDirectorySource('file:///etc/passwd'))).toBe('ERR_AUDIT_USAGE');
    expect(code(() => new HttpDirectorySource('not a url'))).toBe('ERR_AUDIT_USAGE');
    const url = await serve(() => ({ text: '' }));
    await new Promise<void>((resolve) =>
      server?.close(() => {
        resolve();
      }),
    );
    server = undefined;
    const start = performance.now();
    expect(await codeAsync(new HttpDirectorySource(url).checkpoint())).toBe('ERR_AUDIT_NETWORK');
    expect(performance.now() - start).toBeLessThan(2000);
  });

  it('turns an abort into ERR_AUDIT_INTERRUPTED', async () => {
    const url = await serve(() => ({ text: '{}' }));
    const controller = new AbortController();
    controller.abort();
    expect(
      await codeAsync(new HttpDirectorySource(url, { signal: controller.signal }).checkpoint()),
    ).toBe('ERR_AUDIT_INTERRUPTED');
  });
});

describe('StateStore', () => {
  let dir = '';
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('drops bytes appended after the last commit and keeps what was committed', async () => {
    dir = await mkdtemp(join(tmpdir(), 'keytrail-audit-state-'));
    const trust = new FixtureLog().trust();
    await StateStore.init(dir, { url: 'http://x', trust });
    const s = await StateStore.open(dir);
    await s.appendLeaves(new Uint8Array(128).fill(1));
    await s.commit({ ...INITIAL_STATE, leaves: 2 });
    await s.appendLeaves(new Uint8Array(64).fill(2)); // never committed: a crash right here
    await s.close();
    await appendFile(join(dir, 'checkpoints.jsonl'), '"half a line'); // a torn write
    const again = await StateStore.open(dir);
    expect(again.leavesWritten).toBe(2);
    expect(await again.readCheckpoints()).toEqual([]);
    const chunks: Uint8Array[] = [];
    await again.forEachLeavesChunk((c) => chunks.push(c.slice()));
    expect(chunks.map((c) => c.length)).toEqual([128]);
    await again.close();
    expect((await readFile(join(dir, 'leaves.bin'))).length).toBe(128);
  });

  it('refuses a state whose files are shorter than committed, or a corrupt state.json', async () => {
    dir = await mkdtemp(join(tmpdir(), 'keytrail-audit-state-'));
    await StateStore.init(dir, { url: 'http://x', trust: new FixtureLog().trust() });
    const s = await StateStore.open(dir);
    await s.appendLeaves(new Uint8Array(64));
    await s.commit({ ...INITIAL_STATE, leaves: 1 });
    await s.close();
    await writeFile(join(dir, 'leaves.bin'), new Uint8Array(10));
    expect(await codeAsync(StateStore.open(dir))).toBe('ERR_AUDIT_STATE_CORRUPT');
    await writeFile(join(dir, 'state.json'), '{"format":"other"}');
    expect(await codeAsync(StateStore.open(dir))).toBe('ERR_AUDIT_STATE_CORRUPT');
    expect(await codeAsync(StateStore.open(join(dir, 'nothing')))).toBe(
      'ERR_AUDIT_NOT_INITIALISED',
    );
  });
});

describe('progress bar', () => {
  it('draws on a terminal, throttled, and clears its line; stays silent when piped', () => {
    let out = '';
    const tty = { isTTY: true, columns: 100, write: (t: string) => ((out += t), true) };
    const bar = progressFor(tty);
    bar.start('replay', 10);
    bar.update(1);
    bar.update(2); // within 100 ms of the first: not drawn
    bar.update(10, '5 inserts'); // the end is always drawn
    bar.stop();
    const frames = out.split('\r\x1b[2K').filter((f) => f !== '');
    expect(frames).toHaveLength(2);
    expect(frames[0]).toMatch(/^replay {5}\[#{2,4}\.+\] 1\/10 \d+\/s$/);
    expect(frames[1]).toMatch(/^replay {5}\[#+\] 10\/10 \d+\/s 5 inserts$/);
    expect(out.endsWith('\r\x1b[2K')).toBe(true);
    let piped = '';
    const quiet = progressFor({ isTTY: false, write: (t: string) => ((piped += t), true) });
    quiet.start('replay', 3);
    quiet.update(3);
    quiet.stop();
    expect(piped).toBe('');
    expect(progressFor(tty, false)).toBe(SILENT_PROGRESS);
  });
});
