/**
 * Storage of the directory's witnessing state (`migrations/witnessing/`): the size each
 * witness holds for this log, and every verified cosignature. SQL is kept visible and
 * parameterised; the collector works without it too (memory only), for tests and tools.
 * @module
 */
import type { Queryable } from '@keytrail/server-kit';

/** One verified cosignature to keep. */
export interface StoredCosignature {
  readonly size: number;
  readonly root: Uint8Array;
  readonly vkey: string;
  /** The signature line with its newline. */
  readonly line: string;
  /** POSIX seconds. */
  readonly timestamp: number;
}

/** Storage used by the collector. */
export interface WitnessingStore {
  /** Known sizes by witness vkey. */
  sizes(vkeys: readonly string[]): Promise<Map<string, number>>;
  setSize(vkey: string, size: number): Promise<void>;
  addCosignature(c: StoredCosignature): Promise<void>;
  /** Every stored cosignature line of a tree size, newest timestamp per witness. */
  cosignatures(size: number): Promise<StoredCosignature[]>;
}

/** {@link WitnessingStore} on the directory's database. */
export class PgWitnessingStore implements WitnessingStore {
  readonly #db: Queryable;

  constructor(db: Queryable) {
    this.#db = db;
  }

  async sizes(vkeys: readonly string[]): Promise<Map<string, number>> {
    const r = await this.#db.query<{ vkey: string; tree_size: number }>(
      'SELECT vkey, tree_size FROM witnessing_witnesses WHERE vkey = ANY($1::text[])',
      [vkeys],
    );
    return new Map(r.rows.map((row) => [row.vkey, row.tree_size]));
  }

  async setSize(vkey: string, size: number): Promise<void> {
    await this.#db.query(
      `INSERT INTO witnessing_witnesses (vkey, tree_size) VALUES ($1, $2)
       ON CONFLICT (vkey) DO UPDATE SET tree_size = EXCLUDED.tree_size, updated_at = now()`,
      [vkey, size],
    );
  }

  async addCosignature(c: StoredCosignature): Promise<void> {
    await this.#db.query(
      `INSERT INTO witnessing_cosignatures (tree_size, root_hash, vkey, line, cosigned_at)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (tree_size, vkey) DO UPDATE
         SET line = EXCLUDED.line, cosigned_at = EXCLUDED.cosigned_at, received_at = now()
         WHERE witnessing_cosignatures.cosigned_at < EXCLUDED.cosigned_at`,
      [c.size, c.root, c.vkey, c.line, c.timestamp],
    );
  }

  async cosignatures(size: number): Promise<StoredCosignature[]> {
    const r = await this.#db.query<{
      tree_size: number;
      root_hash: Uint8Array;
      vkey: string;
      line: string;
      cosigned_at: number;
    }>(
      `SELECT tree_size, root_hash, vkey, line, cosigned_at FROM witnessing_cosignatures
        WHERE tree_size = $1 ORDER BY vkey`,
      [size],
    );
    return r.rows.map((row) => ({
      size: row.tree_size,
      root: new Uint8Array(row.root_hash),
      vkey: row.vkey,
      line: row.line,
      timestamp: row.cosigned_at,
    }));
  }
}
