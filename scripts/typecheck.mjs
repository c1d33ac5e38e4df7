// Type-checks every workspace: `tsc -b` builds the sources (emitting dist/), then each
// workspace's test/tsconfig.json is checked without emitting.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const tsc = join('node_modules', '.bin', 'tsc');
const run = (args) => {
  const r = spawnSync(tsc, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
run(['-b', 'tsconfig.build.json']);
const workspaces = [
  'directory/core',
  'directory/server-kit',
  'directory/client',
  'directory/server',
  'witness',
  'auditor-cli',
  'messaging/protocol',
  'test',
];
for (const ws of workspaces) {
  const cfg = ws === 'test' ? join(ws, 'tsconfig.json') : join(ws, 'test', 'tsconfig.json');
  const dir = ws === 'test' ? ws : join(ws, 'test');
  if (existsSync(cfg) && readdirSync(dir).some((f) => f.endsWith('.ts') || !f.includes('.')))
    run(['-p', cfg]);
}
