/**
 * Keytrail's epoch record: the leaf of the directory's RFC 9162 epoch log. It plays the role of
 * IETF KEYTRANS `LogEntry{uint64 timestamp; opaque prefix_tree[Nh]}` (draft-ietf-keytrans-protocol
 * §11.8) and adds what an auditor needs to replay the epoch:
 *
 * ```
 * struct {
 *   uint8  version = 1;
 *   uint64 epoch;
 *   uint64 timestamp_ms;
 *   opaque prefix_root[32];
 *   uint32 insert_count;
 *   opaque inserts_digest[32];
 * } EpochRecord;                               // 85 bytes
 *
 * inserts_digest = SHA-256( concat over the epoch's inserts, sorted by label,
 *                           of label[32] || commitment[32] )
 * ```
 *
 * Here "label" is the prefix-tree search key, the 32-byte VRF output of the label-version pair.
 * The log leaf hash is RFC 9162 `SHA-256(0x00 || EpochRecord)`.
 * @module
 */
import { sha256 } from './crypto.ts';
import { KtError, MalformedError } from './errors.ts';
import { Reader, Writer } from './encoding.ts';

/** The only record version defined. */
export const EPOCH_RECORD_VERSION = 1;
/** Length of an encoded record. */
export const EPOCH_RECORD_SIZE = 85;

/** A decoded epoch record. Integers are safe integers (at most 2^53-1). */
export interface EpochRecord {
  /** Epoch number, counting from 0. */
  readonly epoch: number;
  /** When the epoch was sealed, in milliseconds since the Unix epoch. */
  readonly timestampMs: number;
  /** Root of the prefix tree after the epoch's inserts (32 bytes). */
  readonly prefixRoot: Uint8Array;
  /** Number of prefix-tree inserts in the epoch (uint32). */
  readonly insertCount: number;
  /** {@link insertsDigest} of the epoch's inserts (32 bytes). */
  readonly insertsDigest: Uint8Array;
}

/** One prefix-tree insert: search key (VRF output) and commitment, 32 bytes each. */
export interface EpochInsert {
  readonly label: Uint8Array;
  readonly commitment: Uint8Array;
}

/**
 * Encodes a record (85 bytes).
 * @throws RangeError if a field is out of range or a hash is not 32 bytes.
 */
export function encodeEpochRecord(record: EpochRecord): Uint8Array {
  return new Writer(EPOCH_RECORD_SIZE)
    .u8(EPOCH_RECORD_VERSION)
    .u64(record.epoch)
    .u64(record.timestampMs)
    .fixed(record.prefixRoot, 32)
    .u32(record.insertCount)
    .fixed(record.insertsDigest, 32)
    .finish();
}

/**
 * Decodes a record strictly: exactly 85 bytes, version 1, integers at most 2^53-1.
 * @throws MalformedError `ERR_ENCODING_MALFORMED` (too short), `ERR_ENCODING_TRAILING_BYTES`
 *   (too long), `ERR_ENCODING_TOO_LARGE` (an integer above 2^53-1),
 *   `ERR_EPOCH_RECORD_MALFORMED` (unknown version).
 */
export function decodeEpochRecord(bytes: Uint8Array): EpochRecord {
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== EPOCH_RECORD_VERSION) {
    throw new MalformedError(
      'ERR_EPOCH_RECORD_MALFORMED',
      `unknown epoch record version ${version}`,
    );
  }
  const epoch = r.u64Number();
  const timestampMs = r.u64Number();
  const prefixRoot = r.fixed(32);
  const insertCount = r.u32();
  const digest = r.fixed(32);
  r.end();
  return { epoch, timestampMs, prefixRoot, insertCount, insertsDigest: digest };
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/**
 * SHA-256 over the inserts sorted by label, each contributing `label[32] || commitment[32]`.
 * The input order does not matter. An epoch with no inserts digests the empty string.
 * @throws RangeError if a label or commitment is not 32 bytes.
 * @throws KtError `ERR_PREFIX_TREE_DUPLICATE_KEY` if a label occurs twice.
 */
export function insertsDigest(inserts: readonly EpochInsert[]): Uint8Array {
  for (const { label, commitment } of inserts) {
    if (label.length !== 32 || commitment.length !== 32) {
      throw new RangeError('insertsDigest: labels and commitments must be 32 bytes');
    }
  }
  const sorted = [...inserts].sort((a, b) => compareBytes(a.label, b.label));
  const buf = new Uint8Array(sorted.length * 64);
  let prev: Uint8Array | undefined;
  sorted.forEach(({ label, commitment }, i) => {
    if (prev !== undefined && compareBytes(prev, label) === 0) {
      throw new KtError('ERR_PREFIX_TREE_DUPLICATE_KEY', 'a label is inserted twice in one epoch');
    }
    prev = label;
    buf.set(label, i * 64);
    buf.set(commitment, i * 64 + 32);
  });
  return sha256(buf);
}
