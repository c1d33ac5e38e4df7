// Builds the directory's native VRF prover (directory/server/native/vrf_prove.c) into
// directory/server/native/build/keytrail_vrf.node: a Node-API addon linked against Debian's
// static libsodium (package libsodium-dev) and compiled with the machine's C compiler.
//
//   node scripts/build-native.mjs             build if missing or stale; fail when it cannot
//   node scripts/build-native.mjs --optional  the same, but only warn when it cannot (npm start:
//                                             the directory then proves with sodium-native, at
//                                             about half the rate)
//   node scripts/build-native.mjs --force     rebuild even if up to date
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const source = join(root, 'directory/server/native/vrf_prove.c');
const outDir = join(root, 'directory/server/native/build');
const output = join(outDir, 'keytrail_vrf.node');
const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (!['--optional', '--force', '--help'].includes(a)) {
    console.error(`build-native: unknown option ${a} (try --help)`);
    process.exit(2);
  }
}
if (args.has('--help')) {
  console.log('usage: node scripts/build-native.mjs [--optional] [--force]');
  process.exit(0);
}
const optional = args.has('--optional');

function fail(message) {
  const hint =
    'install a C compiler and libsodium-dev (Debian: apt-get install gcc libsodium-dev) and run ' +
    '`npm run build:native`';
  if (optional) {
    console.warn(
      `build-native: ${message}; the directory will prove VRFs with sodium-native (${hint})`,
    );
    process.exit(0);
  }
  console.error(`build-native: ${message}; ${hint}`);
  process.exit(1);
}

function firstExisting(paths) {
  return paths.find((p) => p !== undefined && existsSync(p));
}

function run(cmd, argv) {
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

if (
  !args.has('--force') &&
  existsSync(output) &&
  statSync(output).mtimeMs >= statSync(source).mtimeMs
) {
  process.exit(0);
}

const nodeInclude = firstExisting([
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include/node'),
  join(dirname(dirname(process.execPath)), 'include/node'),
  '/usr/include/node',
  '/usr/local/include/node',
]);
if (!nodeInclude || !existsSync(join(nodeInclude, 'node_api.h'))) {
  fail("Node's headers (node_api.h) were not found");
}

let libdir;
let includeFlags = [];
try {
  libdir = run('pkg-config', ['--variable=libdir', 'libsodium']);
  includeFlags = run('pkg-config', ['--cflags-only-I', 'libsodium']).split(/\s+/).filter(Boolean);
} catch {
  libdir = undefined;
}
const archive = firstExisting([
  libdir && join(libdir, 'libsodium.a'),
  '/usr/lib/x86_64-linux-gnu/libsodium.a',
  '/usr/lib/aarch64-linux-gnu/libsodium.a',
  '/usr/lib/libsodium.a',
  '/usr/local/lib/libsodium.a',
]);
if (!archive) fail('the static libsodium (libsodium.a from libsodium-dev) was not found');

const cc = process.env.CC ?? 'cc';
mkdirSync(outDir, { recursive: true });
const started = performance.now();
try {
  execFileSync(
    cc,
    [
      '-std=c11',
      '-O2',
      '-Wall',
      '-Wextra',
      '-Werror',
      '-shared',
      '-fPIC',
      '-fvisibility=hidden',
      `-I${nodeInclude}`,
      ...includeFlags,
      source,
      archive,
      '-Wl,--exclude-libs,ALL',
      '-o',
      output,
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
} catch (err) {
  fail(`compiling ${source} failed (${err instanceof Error ? err.message : String(err)})`);
}
console.log(
  `build-native: built ${output.slice(root.length + 1)} in ${Math.round(performance.now() - started)} ms`,
);
