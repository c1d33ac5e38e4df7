/**
 * Runs the `keytrail-audit` executable as a child process and records golden transcripts
 * (stdout, stderr, exit code) in the style of age's `cmd/age/testdata/*.txt`.
 *
 * The built CLI (`dist/cli.js`, which `tsc -b` produces before the tests run in CI) is used when
 * it is at least as new as every source file it is built from; otherwise the sources run
 * through tsx, so that a stale build never hides a change. Set `UPDATE_GOLDEN=1` to rewrite
 * the transcripts.
 * @module
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const REPO = join(ROOT, '..');
const GOLDEN = join(ROOT, 'test', 'golden');

function newestSource(dir: string): number {
  let newest = 0;
  for (const f of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, f.name);
    if (f.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (f.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * Whether `tsc -b` ran after the last source change of the CLI and what it imports. tsc leaves
 * unchanged outputs untouched, so the build info file, rewritten by every build, is the clock.
 */
function builtIsFresh(): boolean {
  if (!existsSync(join(ROOT, 'dist', 'cli.js'))) return false;
  for (const ws of ['auditor-cli', 'directory/core', 'directory/server-kit', 'directory/client']) {
    const info = join(REPO, ws, 'tsconfig.tsbuildinfo');
    if (!existsSync(info)) return false;
    if (statSync(info).mtimeMs < newestSource(join(REPO, ws, 'src'))) return false;
  }
  return true;
}

/** How the CLI is started: `node dist/cli.js` or `node --import tsx src/cli.ts`. */
export const CLI_ARGS: readonly string[] = builtIsFresh()
  ? [join(ROOT, 'dist', 'cli.js')]
  : [
      '--conditions=@keytrail/source',
      '--import',
      pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href,
      join(ROOT, 'src', 'cli.ts'),
    ];

/** Output of one run. */
export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
}

/** A running CLI process. */
export interface Running {
  readonly pid: number;
  readonly done: Promise<RunResult>;
  kill(signal: NodeJS.Signals): void;
}

/** Starts the CLI in `cwd` with `args`. */
export function start(
  args: readonly string[],
  cwd: string,
  env: Record<string, string> = {},
): Running {
  const child = spawn(process.execPath, [...CLI_ARGS, ...args], {
    cwd,
    env: { ...process.env, ...env, NO_COLOR: '1', FORCE_COLOR: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ stdout, stderr, code });
    });
  });
  return {
    pid: child.pid ?? -1,
    done,
    kill: (signal) => child.kill(signal),
  };
}

/** Runs the CLI to completion. */
export function run(
  args: readonly string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<RunResult> {
  return start(args, cwd, env).done;
}

/** Formats one step of a transcript. */
export function transcriptStep(args: readonly string[], r: RunResult): string {
  const block = (name: string, text: string): string =>
    text === ''
      ? `[${name}: empty]\n`
      : `[${name}]\n${text}${text.endsWith('\n') ? '' : '\n[no newline]\n'}`;
  return `$ keytrail-audit ${args.join(' ')}\n${block('stdout', r.stdout)}${block('stderr', r.stderr)}[exit ${String(r.code)}]\n`;
}

/**
 * The expected transcript `test/golden/<name>.txt` (written from `actual` with UPDATE_GOLDEN=1;
 * a missing file fails the comparison).
 */
export function golden(name: string, actual: string): string {
  const path = join(GOLDEN, `${name}.txt`);
  if (process.env.UPDATE_GOLDEN === '1') {
    writeFileSync(path, actual);
    return actual;
  }
  if (!existsSync(path)) return `missing golden file ${path} (run with UPDATE_GOLDEN=1)\n`;
  return readFileSync(path, 'utf8');
}
