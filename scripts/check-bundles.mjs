// Proves the pure packages stay browser-safe: each entry point must bundle for the browser
// with no Node built-ins (jose `check:bundles`).
import { build } from 'esbuild';

const entries = [
  'directory/core/src/index.ts',
  'directory/client/src/index.ts',
  'messaging/protocol/src/index.ts',
];
let failed = false;
for (const entry of entries) {
  try {
    const r = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
      conditions: ['@keytrail/source'],
    });
    const size = r.outputFiles.reduce((n, f) => n + f.contents.length, 0);
    console.log(`check:bundles ${entry}: ${(size / 1024).toFixed(1)} KiB`);
  } catch (err) {
    failed = true;
    console.error(`check:bundles ${entry}: does not bundle for the browser`);
    console.error(err instanceof Error ? err.message : err);
  }
}
process.exit(failed ? 1 : 0);
