/**
 * The auditor's local state directory (`--state DIR`, default `.keytrail-audit/`), resumable and
 * safe against interruption at any instant.
 *
 * ```
 * config.json        {format, url, trust}                       written once by `init`
 * state.json         progress (see {@link AuditState})          replaced atomically
 * records.bin        epoch records, 85 bytes each, epoch order  append-only
 * leaves.bin         replayed inserts, label||commitment        append-only
 * checkpoints.jsonl  every accepted checkpoint note, one JSON string per line
 * evidence/          one JSON file per finding (re-check with `verify-evidence`)
 * lock               the pid of the process using the directory
 * ```
 *
 * Appends go to the end of the append-only files first and are fsynced; only then does
 * `state.json`, which records how many bytes of each file are committed, move forward by an
 * atomic replace. On open, bytes past the committed lengths (left by a crash between the two
 * steps) are truncated away, so a resumed sync starts from exactly the last committed state.
 * @module
 */
import { mkdir, open, readFile, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { bytes, epoch as epochRecord } from '@keytrail/core';
import { AuditError } from './errors.ts';
import { parseTrustConfig, type TrustConfig } from './trust.ts';
import { writeFileAtomic, syncDir } from './atomic-file.ts';
import { INSERT_SIZE } from './directory-source.ts';

/** Format tag of `config.json` and `state.json`. */
export const STATE_FORMAT = 'keytrail-audit-state/v1';

/** Default state directory, relative to the working directory. */
export const DEFAULT_STATE_DIR = '.keytrail-audit';

const RECORD_SIZE = epochRecord.EPOCH_RECORD_SIZE;

/** What `init` pins. */
export interface AuditConfig {
  readonly url: string;
  readonly trust: TrustConfig;
}

/** Progress of the audit, as committed. */
export interface AuditState {
  /** The latest accepted checkpoint note (exactly as served), or null before the first sync. */
  readonly checkpoint: string | null;
  /** Accepted checkpoints kept in `checkpoints.jsonl`. */
  readonly checkpointsCount: number;
  /** Committed length of `checkpoints.jsonl` in bytes. */
  readonly checkpointsBytes: number;
  /** Epoch records verified against the accepted checkpoint (its tree size). */
  readonly records: number;
  /** Frontier of the epoch log over those records (base64 hashes, largest subtree first). */
  readonly recordsFrontier: readonly string[];
  /** Epochs whose inserts were replayed and verified. */
  readonly replayed: number;
  /** Inserts committed in `leaves.bin`. */
  readonly leaves: number;
  /** Prefix root after the replayed epochs (base64), null before epoch 0 is replayed. */
  readonly prefixRoot: string | null;
  /** Newest cosignature timestamp seen from each trusted witness (vkey → seconds). */
  readonly witnessTimes: Readonly<Record<string, number>>;
}

/** The state of a freshly initialised directory. */
export const INITIAL_STATE: AuditState = Object.freeze({
  checkpoint: null,
  checkpointsCount: 0,
  checkpointsBytes: 0,
  records: 0,
  recordsFrontier: [],
  replayed: 0,
  leaves: 0,
  prefixRoot: null,
  witnessTimes: {},
});

function corrupt(dir: string, what: string, cause?: unknown): AuditError {
  return new AuditError('ERR_AUDIT_STATE_CORRUPT', `state directory ${dir}: ${what}`, { cause });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function parseState(dir: string, text: string): AuditState {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw corrupt(dir, 'state.json is not JSON', e);
  }
  if (!isRecord(j) || j.format !== STATE_FORMAT) throw corrupt(dir, 'state.json has no format tag');
  const ok =
    (j.checkpoint === null || typeof j.checkpoint === 'string') &&
    isCount(j.checkpointsCount) &&
    isCount(j.checkpointsBytes) &&
    isCount(j.records) &&
    Array.isArray(j.recordsFrontier) &&
    j.recordsFrontier.every((h) => typeof h === 'string') &&
    isCount(j.replayed) &&
    isCount(j.leaves) &&
    (j.prefixRoot === null || typeof j.prefixRoot === 'string') &&
    isRecord(j.witnessTimes) &&
    Object.values(j.witnessTimes).every(isCount) &&
    j.replayed <= j.records;
  if (!ok) throw corrupt(dir, 'state.json does not have the expected fields');
  return {
    checkpoint: j.checkpoint as string | null,
    checkpointsCount: j.checkpointsCount as number,
    checkpointsBytes: j.checkpointsBytes as number,
    records: j.records as number,
    recordsFrontier: j.recordsFrontier as string[],
    replayed: j.replayed as number,
    leaves: j.leaves as number,
    prefixRoot: j.prefixRoot as string | null,
    witnessTimes: j.witnessTimes as Record<string, number>,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** An append-only file whose committed length lives in `state.json`. */
class AppendFile {
  readonly #fh: FileHandle;
  #length: number;
  #dirty = false;
  private constructor(fh: FileHandle, length: number) {
    this.#fh = fh;
    this.#length = length;
  }

  /** Opens (creating) `path` and cuts it back to `committed` bytes. */
  static async open(dir: string, path: string, committed: number): Promise<AppendFile> {
    const fh = await open(path, (await exists(path)) ? 'r+' : 'w+');
    const { size } = await fh.stat();
    if (size < committed) {
      await fh.close();
      throw corrupt(dir, `${path} is shorter (${size} bytes) than committed (${committed})`);
    }
    // Bytes past the committed length were appended by an interrupted run: drop them.
    if (size > committed) await fh.truncate(committed);
    return new AppendFile(fh, committed);
  }

  get length(): number {
    return this.#length;
  }

  async append(data: Uint8Array): Promise<void> {
    if (data.length === 0) return;
    let off = 0;
    while (off < data.length) {
      const { bytesWritten } = await this.#fh.write(
        data,
        off,
        data.length - off,
        this.#length + off,
      );
      off += bytesWritten;
    }
    this.#length += data.length;
    this.#dirty = true;
  }

  async read(position: number, length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let off = 0;
    while (off < length) {
      const { bytesRead } = await this.#fh.read(out, off, length - off, position + off);
      if (bytesRead === 0) throw new RangeError('read past the end of an append-only file');
      off += bytesRead;
    }
    return out;
  }

  async sync(): Promise<void> {
    if (this.#dirty) await this.#fh.sync();
    this.#dirty = false;
  }

  async close(): Promise<void> {
    await this.#fh.close();
  }
}

/** An open, locked state directory. */
export class StateStore {
  readonly dir: string;
  readonly config: AuditConfig;
  #state: AuditState;
  readonly #records: AppendFile;
  readonly #leaves: AppendFile;
  readonly #checkpoints: AppendFile;
  #closed = false;

  private constructor(
    dir: string,
    config: AuditConfig,
    state: AuditState,
    files: { records: AppendFile; leaves: AppendFile; checkpoints: AppendFile },
  ) {
    this.dir = dir;
    this.config = config;
    this.#state = state;
    this.#records = files.records;
    this.#leaves = files.leaves;
    this.#checkpoints = files.checkpoints;
  }

  /**
   * Creates a state directory for `config`.
   * @throws AuditError `ERR_AUDIT_USAGE` if it is already initialised (unless `force`).
   */
  static async init(dir: string, config: AuditConfig, force = false): Promise<void> {
    await mkdir(dir, { recursive: true });
    if (!force && (await exists(join(dir, 'config.json')))) {
      throw new AuditError(
        'ERR_AUDIT_USAGE',
        `${dir} is already initialised (use --force to start over)`,
      );
    }
    await withLock(dir, async () => {
      for (const f of ['records.bin', 'leaves.bin', 'checkpoints.jsonl']) {
        await unlink(join(dir, f)).catch(() => undefined);
      }
      await writeFileAtomic(
        join(dir, 'config.json'),
        JSON.stringify({ format: STATE_FORMAT, url: config.url, trust: config.trust }, null, 2) +
          '\n',
      );
      await writeFileAtomic(join(dir, 'state.json'), stateText(INITIAL_STATE));
    });
  }

  /** Reads `config.json` without locking (for `status`). */
  static async readConfig(dir: string): Promise<AuditConfig> {
    let text: string;
    try {
      text = await readFile(join(dir, 'config.json'), 'utf8');
    } catch {
      throw new AuditError(
        'ERR_AUDIT_NOT_INITIALISED',
        `no audit state in ${dir} (run \`keytrail-audit init\` first)`,
      );
    }
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch (e) {
      throw corrupt(dir, 'config.json is not JSON', e);
    }
    if (!isRecord(j) || j.format !== STATE_FORMAT || typeof j.url !== 'string') {
      throw corrupt(dir, 'config.json does not have the expected fields');
    }
    return { url: j.url, trust: parseTrustConfig(j.trust) };
  }

  /** Reads `state.json` without locking (for `status`). */
  static async readState(dir: string): Promise<AuditState> {
    let text: string;
    try {
      text = await readFile(join(dir, 'state.json'), 'utf8');
    } catch (e) {
      throw corrupt(dir, 'state.json is missing', e);
    }
    return parseState(dir, text);
  }

  /**
   * Opens and locks a state directory, cutting the append-only files back to their committed
   * lengths.
   * @throws AuditError `ERR_AUDIT_NOT_INITIALISED`, `ERR_AUDIT_STATE_LOCKED`,
   *   `ERR_AUDIT_STATE_CORRUPT`
   */
  static async open(dir: string): Promise<StateStore> {
    const config = await StateStore.readConfig(dir);
    await acquireLock(dir);
    try {
      const state = await StateStore.readState(dir);
      const records = await AppendFile.open(
        dir,
        join(dir, 'records.bin'),
        state.records * RECORD_SIZE,
      );
      const leaves = await AppendFile.open(
        dir,
        join(dir, 'leaves.bin'),
        state.leaves * INSERT_SIZE,
      );
      const checkpoints = await AppendFile.open(
        dir,
        join(dir, 'checkpoints.jsonl'),
        state.checkpointsBytes,
      );
      return new StateStore(dir, config, state, { records, leaves, checkpoints });
    } catch (e) {
      await releaseLock(dir);
      throw e;
    }
  }

  /** The committed state. */
  get state(): AuditState {
    return this.#state;
  }

  /** Number of records in `records.bin`, committed or pending. */
  get recordsWritten(): number {
    return this.#records.length / RECORD_SIZE;
  }

  /** Number of inserts in `leaves.bin`, committed or pending. */
  get leavesWritten(): number {
    return this.#leaves.length / INSERT_SIZE;
  }

  /** Appends encoded epoch records (not committed until {@link commit}). */
  async appendRecords(records: readonly Uint8Array[]): Promise<void> {
    const buf = new Uint8Array(records.length * RECORD_SIZE);
    records.forEach((r, i) => {
      if (r.length !== RECORD_SIZE) throw new RangeError('appendRecords: record is not 85 bytes');
      buf.set(r, i * RECORD_SIZE);
    });
    await this.#records.append(buf);
  }

  /** Appends packed inserts (not committed until {@link commit}). */
  async appendLeaves(packed: Uint8Array): Promise<void> {
    await this.#leaves.append(packed);
  }

  /** Appends an accepted checkpoint note (not committed until {@link commit}). */
  async appendCheckpoint(noteText: string): Promise<void> {
    await this.#checkpoints.append(bytes.utf8(JSON.stringify(noteText) + '\n'));
  }

  /** Encoded records `start ≤ i < end` from `records.bin`. */
  async readRecords(start: number, end: number): Promise<Uint8Array[]> {
    if (start < 0 || end > this.recordsWritten || start > end) {
      throw new RangeError(`readRecords: [${start}, ${end}) outside the stored records`);
    }
    const buf = await this.#records.read(start * RECORD_SIZE, (end - start) * RECORD_SIZE);
    const out: Uint8Array[] = [];
    for (let i = 0; i < end - start; i++)
      out.push(buf.subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE));
    return out;
  }

  /**
   * Calls `fn` with consecutive chunks of the first `count` packed inserts (in insert order;
   * by default the committed ones).
   */
  async forEachLeavesChunk(
    fn: (packed: Uint8Array) => void,
    chunkInserts = 65536,
    count = this.#state.leaves,
  ): Promise<void> {
    if (count > this.leavesWritten) throw new RangeError('forEachLeavesChunk: past the end');
    const total = count;
    for (let i = 0; i < total; i += chunkInserts) {
      const n = Math.min(chunkInserts, total - i);
      fn(await this.#leaves.read(i * INSERT_SIZE, n * INSERT_SIZE));
    }
  }

  /** Every accepted checkpoint note, oldest first. */
  async readCheckpoints(): Promise<string[]> {
    const text = bytes.fromUtf8(await this.#checkpoints.read(0, this.#state.checkpointsBytes));
    const out: string[] = [];
    for (const line of text.split('\n')) {
      if (line === '') continue;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch (e) {
        throw corrupt(this.dir, 'checkpoints.jsonl has a line that is not JSON', e);
      }
      if (typeof v !== 'string') throw corrupt(this.dir, 'checkpoints.jsonl has a non-string line');
      out.push(v);
    }
    return out;
  }

  /**
   * Makes `next` the committed state: fsyncs the appended files, then replaces `state.json`
   * atomically. `next` must count exactly what was appended.
   */
  async commit(next: Omit<AuditState, 'checkpointsBytes'>): Promise<void> {
    if (next.records * RECORD_SIZE !== this.#records.length) {
      throw new RangeError('commit: record count does not match records.bin');
    }
    if (next.leaves * INSERT_SIZE !== this.#leaves.length) {
      throw new RangeError('commit: leaf count does not match leaves.bin');
    }
    await this.#records.sync();
    await this.#leaves.sync();
    await this.#checkpoints.sync();
    const state: AuditState = { ...next, checkpointsBytes: this.#checkpoints.length };
    await writeFileAtomic(join(this.dir, 'state.json'), stateText(state));
    this.#state = state;
  }

  /** Writes an evidence file under `evidence/` atomically; returns its path. */
  async writeEvidence(name: string, text: string): Promise<string> {
    const dir = join(this.dir, 'evidence');
    await mkdir(dir, { recursive: true });
    const path = join(dir, name);
    await writeFileAtomic(path, text);
    return path;
  }

  /** Closes the files and releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#records.close();
    await this.#leaves.close();
    await this.#checkpoints.close();
    await releaseLock(this.dir);
  }
}

function stateText(state: AuditState): string {
  return JSON.stringify({ format: STATE_FORMAT, ...state }, null, 2) + '\n';
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}

async function acquireLock(dir: string): Promise<void> {
  const path = join(dir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
      await syncDir(dir);
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== 'EEXIST') throw e;
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      // A lock left by a process that no longer runs (killed, power loss) is stale.
      if (Number.isSafeInteger(pid) && pid > 0 && pidAlive(pid)) {
        throw new AuditError(
          'ERR_AUDIT_STATE_LOCKED',
          `${dir} is in use by process ${pid} (another sync is running)`,
        );
      }
      await unlink(path).catch(() => undefined);
    }
  }
  throw new AuditError('ERR_AUDIT_STATE_LOCKED', `${dir}: could not take the lock`);
}

async function releaseLock(dir: string): Promise<void> {
  await unlink(join(dir, 'lock')).catch(() => undefined);
}

async function withLock(dir: string, fn: () => Promise<void>): Promise<void> {
  await acquireLock(dir);
  try {
    await fn();
  } finally {
    await releaseLock(dir);
  }
}
