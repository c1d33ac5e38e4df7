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
