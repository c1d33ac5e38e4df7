/**
 * `npm run bench`: runs every `bench/*.bench.ts` of every workspace (or those whose path
 * contains one of the command-line arguments) and prints each figure beside the machine's raw
 * baseline measured in the same run.
 * @module
 */
import { readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import os from 'node:os';
import { baselineSha256, fmt, type Bench } from './bench-util.ts';

const workspaces = [
  'directory/core',
  'directory/server',
  'directory/client',
  'witness',
  'auditor-cli',
  'messaging/protocol',
];
const filters = process.argv.slice(2);
const files: string[] = [];
for (const ws of workspaces) {
  const dir = join(ws, 'bench');
  if (!existsSync(dir)) continue;
  for (const f of readdirSync(dir).sort()) {
    const path = join(dir, f);
    if (f.endsWith('.bench.ts') && (filters.length === 0 || filters.some((x) => path.includes(x))))
      files.push(path);
  }
}
console.log(
  `Keytrail benchmarks — Node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}`,
);
console.log(`baseline: native SHA-256 of 65 bytes: ${fmt(baselineSha256())} hashes/s\n`);
for (const file of files) {
  console.log(`# ${file}`);
  const mod = (await import(pathToFileURL(file).href)) as { default: Bench };
  await mod.default();
  console.log('');
}
