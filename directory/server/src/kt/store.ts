/**
 * The directory's storage: parameterised SQL over server-kit's `Db` (PostgreSQL or PGlite),
 * behind one narrow class. Security-relevant state changes are compare-and-swap (torchwood
 * `persistTreeHead`): the epoch transaction advances `published_epoch` only from the value it
 * read, and the label column is UNIQUE, so no epoch is written twice and no label reused.
 * @module
 */
import type { Db, Queryable } from '@keytrail/server-kit';

/** Advisory lock held (session level) by the one sequencer. */
export const SEQUENCER_LOCK = 0x6b74_7365; // "ktse"
/** Advisory lock: writes hold it shared per transaction, closing an epoch exclusively. */
export const EPOCH_LOCK = 0x6b74_6570; // "ktep"

/** The directory's settings row. */
export interface Settings {
  readonly origin: string;
  readonly logSecret: Uint8Array;
  readonly vrfSecret: Uint8Array;
  readonly openEpoch: number;
  readonly publishedEpoch: number;
}

/** A version row as the read path needs it. */
export interface VersionRow {
  readonly version: number;
  readonly epoch: number;
  readonly value: Uint8Array;
  readonly label: Uint8Array;
  readonly vrfProof: Uint8Array;
  readonly opening: Uint8Array;
  readonly commitment: Uint8Array;
  readonly nextLabel: Uint8Array;
  readonly nextVrfProof: Uint8Array;
}

/** A pending version for the sequencer. */
export interface PendingRow {
  readonly tenant: string;
  readonly account: string;
  readonly version: number;
  readonly value: Uint8Array;
}

/** The leaf columns the sequencer fills. */
export interface LeafUpdate extends PendingRow {
  readonly label: Uint8Array;
  readonly vrfProof: Uint8Array;
  readonly opening: Uint8Array;
  readonly commitment: Uint8Array;
  readonly nextLabel: Uint8Array;
  readonly nextVrfProof: Uint8Array;
}

const hex = (b: Uint8Array): string =>
  Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

interface RawVersion {
  version: number;
  epoch: number;
  value: Uint8Array;
  label: Uint8Array;
  vrf_proof: Uint8Array;
  opening: Uint8Array;
  commitment: Uint8Array;
  next_label: Uint8Array;
  next_vrf_proof: Uint8Array;
}

function toVersion(r: RawVersion): VersionRow {
  return {
    version: r.version,
    epoch: r.epoch,
    value: r.value,
    label: r.label,
    vrfProof: r.vrf_proof,
    opening: r.opening,
    commitment: r.commitment,
    nextLabel: r.next_label,
    nextVrfProof: r.next_vrf_proof,
  };
}

/** SQL of the key directory. */
export class KtStore {
  readonly db: Db;
  constructor(db: Db) {
    this.db = db;
  }

  /** The settings row, or undefined before the first start. */
  async settings(q: Queryable = this.db): Promise<Settings | undefined> {
    const r = await q.query<{
      origin: string;
      log_secret: Uint8Array;
      vrf_secret: Uint8Array;
      open_epoch: number;
      published_epoch: number;
    }>(
      'SELECT origin, log_secret, vrf_secret, open_epoch, published_epoch FROM kt_settings WHERE id = 1',
    );
    const row = r.rows[0];
    return row
      ? {
          origin: row.origin,
          logSecret: row.log_secret,
          vrfSecret: row.vrf_secret,
          openEpoch: row.open_epoch,
          publishedEpoch: row.published_epoch,
        }
      : undefined;
  }

  /** Creates the settings row unless one exists (concurrent first starts agree on one). */
  async initSettings(
    origin: string,
    logSecret: Uint8Array,
    vrfSecret: Uint8Array,
  ): Promise<Settings> {
    await this.db.query(
      `INSERT INTO kt_settings (id, origin, log_secret, vrf_secret, open_epoch, published_epoch)
       VALUES (1, $1, $2, $3, 0, -1) ON CONFLICT (id) DO NOTHING`,
      [origin, logSecret, vrfSecret],
    );
    const s = await this.settings();
    if (!s) throw new Error('kt_settings row missing after insert');
    return s;
  }

  /** Epoch records from `start` (inclusive) to `end` (exclusive), in order. */
  async records(start: number, end: number, q: Queryable = this.db): Promise<Uint8Array[]> {
    const r = await q.query<{ record: Uint8Array }>(
      'SELECT record FROM kt_epochs WHERE epoch >= $1 AND epoch < $2 ORDER BY epoch',
      [start, end],
    );
    return r.rows.map((x) => x.record);
  }

  /** The newest committed epoch, -1 if none. */
  async latestEpoch(q: Queryable = this.db): Promise<number> {
    const r = await q.query<{ e: number | null }>('SELECT max(epoch)::bigint AS e FROM kt_epochs');
    return r.rows[0]?.e ?? -1;
  }

  /** The checkpoint note of tree size `size`. */
  async checkpoint(size: number): Promise<{ note: string; released: boolean } | undefined> {
    const r = await this.db.query<{ note: string; released: boolean }>(
      'SELECT note, released FROM kt_checkpoints WHERE size = $1',
      [size],
    );
    return r.rows[0];
  }

  /** Stores the cosigned note and marks the checkpoint released. */
  async releaseCheckpoint(size: number, note: string): Promise<void> {
    await this.db.query('UPDATE kt_checkpoints SET note = $2, released = true WHERE size = $1', [
      size,
      note,
    ]);
  }

  /** Every leaf (label, commitment) of epochs ≤ `epoch`, sorted by label, for a rebuild. */
  async leaves(epoch: number): Promise<{ key: Uint8Array; commitment: Uint8Array }[]> {
    const r = await this.db.query<{ label: Uint8Array; commitment: Uint8Array }>(
      'SELECT label, commitment FROM kt_versions WHERE epoch <= $1 AND label IS NOT NULL ORDER BY label',
      [epoch],
    );
    return r.rows.map((x) => ({ key: x.label, commitment: x.commitment }));
  }

  /** One epoch's inserts, sorted by label, after `after`, at most `limit`. */
  async epochInserts(
    epoch: number,
    after: Uint8Array | undefined,
    limit: number,
    q: Queryable = this.db,
  ): Promise<{ label: Uint8Array; commitment: Uint8Array }[]> {
    const r = await q.query<{ label: Uint8Array; commitment: Uint8Array }>(
      `SELECT label, commitment FROM kt_versions
        WHERE epoch = $1 AND label IS NOT NULL AND ($2::bytea IS NULL OR label > $2::bytea)
        ORDER BY label LIMIT $3`,
      [epoch, after ?? null, limit],
    );
    return r.rows;
  }

  /** Published versions (epoch ≤ `epoch`) of an account: numbers and epochs only. */
  async versionList(
    tenant: string,
    account: string,
    epoch: number,
  ): Promise<{ version: number; epoch: number }[]> {
    const r = await this.db.query<{ version: number; epoch: number }>(
      `SELECT version, epoch FROM kt_versions
        WHERE tenant_id = $1 AND account_id = $2 AND epoch <= $3 AND label IS NOT NULL ORDER BY version`,
      [tenant, account, epoch],
    );
    return r.rows;
  }

  /** Full rows of the given published versions (all of them when `versions` is omitted). */
  async versions(
    tenant: string,
    account: string,
    epoch: number,
    versions?: readonly number[],
  ): Promise<VersionRow[]> {
    const r = await this.db.query<RawVersion>(
      `SELECT version, epoch, value, label, vrf_proof, opening, commitment, next_label, next_vrf_proof
         FROM kt_versions
        WHERE tenant_id = $1 AND account_id = $2 AND epoch <= $3 AND label IS NOT NULL
          AND ($4::bigint[] IS NULL OR version = ANY($4::bigint[]))
        ORDER BY version`,
      [tenant, account, epoch, versions ? versions.map(String) : null],
    );
    return r.rows.map(toVersion);
  }

  /** Versions that joined `epoch` (closed), for the sequencer. */
  async pending(epoch: number, q: Queryable): Promise<PendingRow[]> {
    const r = await q.query<{
      tenant_id: string;
      account_id: string;
      version: number;
      value: Uint8Array;
    }>(
      `SELECT tenant_id, account_id, version, value FROM kt_versions
        WHERE epoch = $1 AND label IS NULL ORDER BY tenant_id, account_id, version`,
      [epoch],
    );
    return r.rows.map((x) => ({
      tenant: x.tenant_id,
      account: x.account_id,
      version: x.version,
      value: x.value,
    }));
  }

  /** Number of versions waiting in `epoch`. */
  async pendingCount(epoch: number): Promise<number> {
    const r = await this.db.query<{ n: number }>(
      'SELECT count(*)::bigint AS n FROM kt_versions WHERE epoch = $1 AND label IS NULL',
      [epoch],
    );
    return r.rows[0]?.n ?? 0;
  }

  /** The stored VRF of `version + 1` for each (account, version) row already sequenced. */
  async nextProbes(
    rows: readonly { tenant: string; account: string; version: number }[],
    q: Queryable,
  ): Promise<Map<string, { label: Uint8Array; proof: Uint8Array }>> {
    const out = new Map<string, { label: Uint8Array; proof: Uint8Array }>();
    if (rows.length === 0) return out;
    const r = await q.query<{
      tenant_id: string;
      account_id: string;
      version: number;
      next_label: Uint8Array;
      next_vrf_proof: Uint8Array;
    }>(
      `SELECT v.tenant_id, v.account_id, v.version, v.next_label, v.next_vrf_proof
         FROM unnest($1::text[], $2::text[], $3::bigint[]) AS k(t, a, ver)
         JOIN kt_versions v ON v.tenant_id = k.t AND v.account_id = k.a AND v.version = k.ver
        WHERE v.next_label IS NOT NULL`,
      [rows.map((x) => x.tenant), rows.map((x) => x.account), rows.map((x) => String(x.version))],
    );
    for (const x of r.rows) {
      out.set(`${x.tenant_id}\u0000${x.account_id}\u0000${x.version}`, {
        label: x.next_label,
        proof: x.next_vrf_proof,
      });
    }
    return out;
  }

  /** Fills the leaf columns of an epoch's versions (one statement). */
  async writeLeaves(leaves: readonly LeafUpdate[], q: Queryable): Promise<number> {
    if (leaves.length === 0) return 0;
    const col = (f: (l: LeafUpdate) => Uint8Array): string[] => leaves.map((l) => hex(f(l)));
    const r = await q.query(
      `UPDATE kt_versions v SET label = decode(k.label, 'hex'), vrf_proof = decode(k.proof, 'hex'),
              opening = decode(k.opening, 'hex'), commitment = decode(k.commitment, 'hex'),
              next_label = decode(k.next_label, 'hex'), next_vrf_proof = decode(k.next_proof, 'hex')
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
              AS k(t, a, ver, label, proof, opening, commitment, next_label, next_proof)
        WHERE v.tenant_id = k.t AND v.account_id = k.a AND v.version = k.ver AND v.label IS NULL`,
      [
        leaves.map((l) => l.tenant),
        leaves.map((l) => l.account),
        leaves.map((l) => String(l.version)),
        col((l) => l.label),
        col((l) => l.vrfProof),
        col((l) => l.opening),
        col((l) => l.commitment),
        col((l) => l.nextLabel),
        col((l) => l.nextVrfProof),
      ],
    );
    return r.rowCount;
  }
}
