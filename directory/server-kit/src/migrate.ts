/**
 * Forward-only SQL migrations. Each service has a folder under the repository's `migrations/`
 * (`migrations/<service>/NNNN_name.sql`); files are applied in order, each once, in one
 * transaction, on PostgreSQL and PGlite alike. Concurrent starts are serialised by an
 * advisory lock, so two processes never apply the same file twice.
 * @module
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db } from './db.ts';

/** The repository's `migrations/` folder (the same from `src/` and `dist/`). */
export const MIGRATIONS_ROOT: string = fileURLToPath(
  new URL('../../../migrations/', import.meta.url),
);

const FILE_RE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** One migration file. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** Reads `migrations/<service>/`, in order; rejects gaps and duplicate numbers. */
export async function loadMigrations(
  service: string,
  root: string = MIGRATIONS_ROOT,
): Promise<Migration[]> {
  const dir = join(root, service);
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  const out: Migration[] = [];
  for (const file of files) {
    const m = FILE_RE.exec(file);
    if (!m?.[1] || !m[2])
      throw new Error(`migrations/${service}/${file}: name must be NNNN_name.sql`);
    const version = Number(m[1]);
    if (version !== out.length + 1) {
      throw new Error(
        `migrations/${service}/${file}: expected number ${String(out.length + 1).padStart(4, '0')}`,
      );
    }
    out.push({ version, name: m[2], sql: await readFile(join(dir, file), 'utf8') });
  }
  return out;
}

/** Applies the service's pending migrations; returns the versions applied now. */
export async function migrate(db: Db, service: string, root?: string): Promise<number[]> {
  const migrations = await loadMigrations(service, root);
  return db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('keytrail-migrate'))`);
    await tx.query(`CREATE TABLE IF NOT EXISTS keytrail_migrations (
      service text NOT NULL,
      version integer NOT NULL,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (service, version))`);
    const done = await tx.query<{ version: number }>(
      'SELECT version FROM keytrail_migrations WHERE service = $1',
      [service],
    );
    const applied = new Set(done.rows.map((r) => r.version));
    const now: number[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      // Statements run one by one so that both drivers accept the same files.
      for (const stmt of splitSql(m.sql)) await tx.query(stmt);
      await tx.query(
        'INSERT INTO keytrail_migrations (service, version, name) VALUES ($1, $2, $3)',
        [service, m.version, m.name],
      );
      now.push(m.version);
    }
    return now;
  });
}

/**
 * Splits a migration script into statements at top-level semicolons, honouring quotes,
 * comments and dollar-quoted bodies (for functions).
 */
export function splitSql(script: string): string[] {
  const out: string[] = [];
  let cur = '';
  let i = 0;
  while (i < script.length) {
    const ch = script[i] ?? '';
    const rest = script.slice(i);
    if (rest.startsWith('--')) {
      const end = script.indexOf('\n', i);
      i = end < 0 ? script.length : end + 1;
      cur += '\n';
      continue;
    }
    if (rest.startsWith('/*')) {
      const end = script.indexOf('*/', i + 2);
      i = end < 0 ? script.length : end + 2;
      continue;
    }
    const dollar = /^\$[A-Za-z_]*\$/.exec(rest);
    if (dollar) {
      const tag = dollar[0];
      const end = script.indexOf(tag, i + tag.length);
      const stop = end < 0 ? script.length : end + tag.length;
      cur += script.slice(i, stop);
      i = stop;
      continue;
    }
    if (ch === "'" || ch === '"') {
      let j = i + 1;
      while (j < script.length) {
        if (script[j] === ch) {
          if (script[j + 1] === ch) j += 2;
          else break;
        } else j++;
      }
      cur += script.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (ch === ';') {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
      i++;
      continue;
    }
    cur += ch;
    i++;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}
