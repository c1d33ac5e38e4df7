import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPglite, migrate, loadMigrations, splitSql, type Db } from '../src/index.ts';
import { createTestDatabase, type TestDatabase } from '../src/testing.ts';

let tmp: string;
let pgDb: TestDatabase;
let lite: Db;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'kt-kit-'));
  await mkdir(join(tmp, 'svc'));
  await writeFile(
    join(tmp, 'svc', '0001_init.sql'),
    `-- a comment; with a semicolon
     CREATE TABLE t (id int8 PRIMARY KEY, b bytea, s text DEFAULT 'a;b');
     CREATE FUNCTION bump() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;`,
  );
  await writeFile(
    join(tmp, 'svc', '0002_more.sql'),
    `ALTER TABLE t ADD COLUMN at timestamptz DEFAULT now();`,
  );
  pgDb = await createTestDatabase('kit');
  lite = await openPglite();
});

afterAll(async () => {
  await pgDb.drop();
  await lite.close();
  await rm(tmp, { recursive: true, force: true });
});

describe.each([
  ['pg', () => pgDb.db],
  ['pglite', () => lite],
])('Db on %s', (kind, get) => {
  it('applies migrations once, in order', async () => {
    const db = get();
    expect(db.kind).toBe(kind);
    expect(await migrate(db, 'svc', tmp)).toEqual([1, 2]);
    expect(await migrate(db, 'svc', tmp)).toEqual([]);
    const r = await db.query<{ s: string }>(`INSERT INTO t (id) VALUES (1) RETURNING s`);
    expect(r.rows[0]?.s).toBe('a;b');
  });

  it('returns int8 as number, bytea as Uint8Array, timestamptz as Date', async () => {
    const db = get();
    await db.query('INSERT INTO t (id, b) VALUES ($1, $2)', [
      9007199254740991,
      new Uint8Array([1, 2, 255]),
    ]);
    const r = await db.query<{ id: number; b: Uint8Array; at: Date }>(
      'SELECT id, b, at FROM t WHERE id = $1',
      [9007199254740991],
    );
    expect(r.rows[0]?.id).toBe(9007199254740991);
    expect([...(r.rows[0]?.b ?? [])]).toEqual([1, 2, 255]);
    expect(r.rows[0]?.at).toBeInstanceOf(Date);
    if (kind === 'pg') {
      await expect(db.query(`SELECT 9007199254740993::int8 AS big`)).rejects.toThrow(
        /exceeds 2\^53/,
      );
    } else {
      const big = await db.query<{ big: unknown }>(`SELECT 9007199254740993::int8 AS big`);
      expect(big.rows[0]?.big).toBe(9007199254740993n);
    }
  });

  it('rolls a failed transaction back entirely', async () => {
    const db = get();
    await expect(
      db.transaction(async (tx) => {
        await tx.query('INSERT INTO t (id) VALUES (100)');
        await tx.query('INSERT INTO t (id) VALUES (100)'); // duplicate key
      }),
    ).rejects.toThrow();
    const r = await db.query('SELECT 1 FROM t WHERE id = 100');
    expect(r.rowCount).toBe(0);
    const ok = await db.transaction(async (tx) => {
      await tx.query('INSERT INTO t (id) VALUES (101)');
      return 'done';
    }, 'serializable');
    expect(ok).toBe('done');
    expect((await db.query('SELECT 1 FROM t WHERE id = 101')).rowCount).toBe(1);
  });

  it('holds session-level advisory locks on one session', async () => {
    const db = get();
    const held = await db.withSession(async (s) => {
      const r = await s.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(42) AS ok');
      await s.query('SELECT pg_advisory_unlock(42)');
      return r.rows[0]?.ok;
    });
    expect(held).toBe(true);
  });
});

describe('migration files', () => {
  it('rejects gaps in numbering and bad names', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kt-mig-'));
    await mkdir(join(dir, 'gap'));
    await writeFile(join(dir, 'gap', '0001_a.sql'), 'SELECT 1;');
    await writeFile(join(dir, 'gap', '0003_c.sql'), 'SELECT 1;');
    await expect(loadMigrations('gap', dir)).rejects.toThrow(/expected number 0002/);
    await mkdir(join(dir, 'bad'));
    await writeFile(join(dir, 'bad', '1_a.sql'), 'SELECT 1;');
    await expect(loadMigrations('bad', dir)).rejects.toThrow(/NNNN_name\.sql/);
    await rm(dir, { recursive: true, force: true });
  });

  it('every real service migration folder loads', async () => {
    for (const s of ['directory']) expect((await loadMigrations(s)).length).toBeGreaterThan(0);
  });

  it('splits scripts at top-level semicolons only', () => {
    expect(
      splitSql(`SELECT 'a;b'; SELECT "x;y" FROM z; -- c; d\n/* e; f */ SELECT $q$ g; h $q$;`),
    ).toEqual([`SELECT 'a;b'`, `SELECT "x;y" FROM z`, `SELECT $q$ g; h $q$`]);
    expect(splitSql(`SELECT 'it''s;'; `)).toEqual([`SELECT 'it''s;'`]);
  });
});
