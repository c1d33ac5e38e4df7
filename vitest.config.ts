import { defineConfig } from 'vitest/config';

// One project per workspace. Pure libraries run without a database; services and
// cross-component tests talk to the real PostgreSQL server named by DATABASE_URL.
const conditions = ['@keytrail/source'];
const project = (name: string, root: string, extra: Record<string, unknown> = {}) => ({
  extends: true as const,
  test: { name, root, include: ['test/**/*.test.ts'], ...extra },
});

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: conditions } },
  test: {
    passWithNoTests: false,
    // The pure protocol library is held to full line and branch coverage (STYLE.md §7);
    // services have no threshold.
    coverage: {
      provider: 'v8',
      include: ['directory/core/src/**'],
      exclude: ['directory/core/src/index.ts'],
      reporter: ['text-summary'],
      thresholds: { lines: 100, branches: 100, functions: 100, statements: 100 },
    },
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      project('core', 'directory/core'),
      project('messaging-core', 'messaging/protocol'),
      project('client', 'directory/client'),
      project('server-kit', 'directory/server-kit'),
      project('directory', 'directory/server'),
      project('witness', 'witness'),
      project('auditor', 'auditor-cli'),
      project('e2e', 'test', { include: ['**/*.test.ts'] }),
    ],
  },
});
