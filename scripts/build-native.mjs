// Builds the project's two Node-API addons with the machine's C compiler:
//
// - vrf: the directory's native VRF prover (directory/server/native/vrf_prove.c →
//   directory/server/native/build/keytrail_vrf.node), linked against Debian's static libsodium
//   (package libsodium-dev);
// - attachments: messaging-core's attachment chunks on the thread pool
//   (messaging/protocol/native/attachment_chunks.c →
//   messaging/protocol/native/build/keytrail_attachments.node), against the OpenSSL inside Node
//   (its headers ship with Node's; the symbols resolve from the node binary at load time).
//
//   node scripts/build-native.mjs             build what is missing or stale; fail when one cannot
//   node scripts/build-native.mjs --optional  the same, but only warn when one cannot (npm start:
//                                             the directory then proves with sodium-native, at
//                                             about half the rate; attachments use worker threads)
//   node scripts/build-native.mjs --force     rebuild even if up to date
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = new Set(process.argv.slice(2));
for (const a of args) {
  if (!['--optional', '--force', '--help'].includes(a)) {
    console.error(`build-native: unknown option ${a} (try --help)`);
    process.exit(2);
  }
}
if (args.has('--help')) {
  console.log('usage: node scripts/build-native.mjs [--optional] [--force]');
  console.log('builds the directory VRF prover and the messaging attachment addon');
  process.exit(0);
}
const optional = args.has('--optional');

class BuildError extends Error {}

function firstExisting(paths) {
  return paths.find((p) => p !== undefined && existsSync(p));
}

function run(cmd, argv) {
  return execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** The flags and inputs for linking the static libsodium. */
function libsodium() {
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
  if (!archive) {
    throw new BuildError('the static libsodium (libsodium.a from libsodium-dev) was not found');
  }
  return { flags: includeFlags, inputs: [archive, '-Wl,--exclude-libs,ALL'] };
}

const targets = [
  {
    name: 'VRF prover',
    source: 'directory/server/native/vrf_prove.c',
    output: 'directory/server/native/build/keytrail_vrf.node',
    deps: libsodium,
    hint: 'install a C compiler and libsodium-dev (Debian: apt-get install gcc libsodium-dev)',
    fallback: 'the directory will prove VRFs with sodium-native',
  },
  {
    name: 'attachment chunks',
    source: 'messaging/protocol/native/attachment_chunks.c',
    output: 'messaging/protocol/native/build/keytrail_attachments.node',
    // OpenSSL's headers come with Node's (openssl/ under the same include directory).
    deps: () => ({ flags: ['-pthread'], inputs: [] }),
    hint: 'install a C compiler (Debian: apt-get install gcc)',
    fallback: 'attachments will run on JavaScript worker threads',
  },
];

function nodeInclude() {
  const dir = firstExisting([
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include/node'),
    join(dirname(dirname(process.execPath)), 'include/node'),
    '/usr/include/node',
    '/usr/local/include/node',
  ]);
  if (!dir || !existsSync(join(dir, 'node_api.h')) || !existsSync(join(dir, 'openssl/evp.h'))) {
    throw new BuildError("Node's headers (node_api.h, openssl/evp.h) were not found");
  }
  return dir;
}

function build(target) {
  const source = join(root, target.source);
  const output = join(root, target.output);
  if (
    !args.has('--force') &&
    existsSync(output) &&
    statSync(output).mtimeMs >= statSync(source).mtimeMs
  ) {
    return;
  }
  const include = nodeInclude();
  const deps = target.deps();
  const cc = process.env.CC ?? 'cc';
  mkdirSync(dirname(output), { recursive: true });
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
        `-I${include}`,
        ...deps.flags,
        source,
        ...deps.inputs,
        '-o',
        output,
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
  } catch (err) {
    throw new BuildError(
      `compiling ${target.source} failed (${err instanceof Error ? err.message : String(err)})`,
    );
  }
  console.log(
    `build-native: built ${target.output} in ${Math.round(performance.now() - started)} ms`,
  );
}

let failed = false;
for (const target of targets) {
  try {
    build(target);
  } catch (err) {
    if (!(err instanceof BuildError)) throw err;
    if (optional) {
      console.warn(
        `build-native: ${target.name}: ${err.message}; ${target.fallback} (${target.hint} and ` +
          'run `npm run build:native`)',
      );
    } else {
      console.error(`build-native: ${target.name}: ${err.message}; ${target.hint}`);
      failed = true;
    }
  }
}
process.exit(failed ? 1 : 0);
