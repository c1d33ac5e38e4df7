/**
 * Runs the directory's `main.ts` as a child process (as `npm start` does) and an HTTP replay
 * of its whole log, as an auditor would.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { bytes, epoch as epochRecord, prefixTree, merkle, note } from '@keytrail/core';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

export interface ServerProcess {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly output: string[];
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `main.ts` with `env` and resolves once it prints where it listens. */
export function startServer(env: Record<string, string>): Promise<ServerProcess> {
  const proc = spawn(process.execPath, ['--conditions=@keytrail/source', '--import', 'tsx', MAIN], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) =>
    proc.once('exit', () => {
      resolve();
    }),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`server did not start:\n${output.join('')}`));
    }, 60_000);
    const onData = (chunk: Buffer): void => {
      output.push(chunk.toString());
      const m = /listening on (http:\/\/\S+)/.exec(output.join(''));
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({
          proc,
          url: m[1],
          output,
          async kill(signal = 'SIGKILL') {
            if (proc.exitCode === null) proc.kill(signal);
            await exited;
          },
        });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', (c: Buffer) => output.push(c.toString()));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${String(code)}:\n${output.join('')}`));
    });
  });
}

type Get = (path: string) => Promise<{ status: number; text: string }>;

/**
 * Replays the whole log over HTTP: every leaf's epoch, every epoch's inserts into a fresh
 * prefix tree (root and digest checked, no label twice), the log root against the signed
 * checkpoint.
 * @returns the checkpoint's tree size.
 */
export async function auditReplay(get: Get, logKey: string): Promise<number> {
  const cp = await get('/v1/checkpoint');
  const opened = note.open(cp.text, [note.parseVerifierKey(logKey)]);
  const [, sizeLine = '', rootLine = ''] = opened.text.split('\n');
  const size = Number(sizeLine);
  const leaves: string[] = [];
  for (let start = 0; start < size; start += 1000) {
    const end = Math.min(size, start + 1000);
    leaves.push(
      ...(
        JSON.parse((await get(`/v1/log/leaves?start=${start}&end=${end}`)).text) as {
          leaves: string[];
        }
      ).leaves,
    );
  }
  const tree = new prefixTree.PrefixTree();
  const seen = new Set<string>();
  for (let e = 0; e < size; e++) {
    const rec = epochRecord.decodeEpochRecord(bytes.fromBase64(leaves[e] ?? ''));
    if (rec.epoch !== e) throw new Error(`leaf ${e} holds epoch ${rec.epoch}`);
    const inserts: { label: Uint8Array; commitment: Uint8Array }[] = [];
    let after: string | null = null;
    do {
      const q: string = after ? `&after=${encodeURIComponent(after)}` : '';
      const page = JSON.parse((await get(`/v1/epochs/${e}/inserts?limit=10000${q}`)).text) as {
        inserts: { label: string; commitment: string }[];
        next: string | null;
      };
      for (const x of page.inserts)
        inserts.push({
          label: bytes.fromBase64(x.label),
          commitment: bytes.fromBase64(x.commitment),
        });
      after = page.next;
    } while (after);
    for (const x of inserts) {
      const id = bytes.toHex(x.label);
      if (seen.has(id)) throw new Error(`label inserted twice in epoch ${e}`);
      seen.add(id);
    }
    tree.insertBatch(inserts.map((x) => ({ key: x.label, commitment: x.commitment })));
    if (bytes.toHex(tree.root()) !== bytes.toHex(rec.prefixRoot))
      throw new Error(`prefix root of epoch ${e} differs`);
    if (bytes.toHex(epochRecord.insertsDigest(inserts)) !== bytes.toHex(rec.insertsDigest)) {
      throw new Error(`inserts digest of epoch ${e} differs`);
    }
    if (rec.insertCount !== inserts.length) throw new Error(`insert count of epoch ${e} differs`);
  }
  const root = merkle.rootHash(leaves.map((l) => merkle.leafHash(bytes.fromBase64(l))));
  if (bytes.toBase64(root) !== rootLine) throw new Error('log root differs from the checkpoint');
  return size;
}

/** A `Get` over real HTTP. */
export function httpGet(base: string): Get {
  return async (path) => {
    const res = await fetch(base + path);
    return { status: res.status, text: await res.text() };
  };
}

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => {
        resolve(port);
      });
    });
  });
}
