/**
 * Checkpoints, C2SP tlog-checkpoint v1.0.0 (`c2sp.org/tlog-checkpoint@v1.0.0`): the note text of a
 * log's signed tree head. At least three lines, each ending in a newline:
 *
 * 1. the origin, a non-empty unique identifier of the log (it SHOULD be a schema-less URL, but
 *    clients must not assume so — only the signed-note rules apply: no control characters);
 * 2. the tree size in ASCII decimal without leading zeros;
 * 3. the RFC 6962 root hash in standard base64 (exactly 32 bytes);
 * 4. optional, non-empty, opaque extension lines (NOT RECOMMENDED; they carry no guarantees).
 *
 * This module handles the note *text* only; signatures are `signed-note.ts` and
 * `cosignature.ts`. Parsing is strict: `format(parse(text)) === text` for every accepted text.
 * Sizes are limited to 2^53 − 1.
 * @module
 */
import { fromBase64, toBase64 } from './bytes.ts';
import { MalformedError } from './errors.ts';
import { isCleanText } from './signed-note-keys.ts';

/** A parsed checkpoint body. */
export interface Checkpoint {
  /** The log's origin line. */
  origin: string;
  /** Number of leaves. */
  size: number;
  /** RFC 6962 tree head, 32 bytes. */
  root: Uint8Array;
  /** Extension lines, without their newlines (usually none). */
  extensions: string[];
}

const SIZE = /^(0|[1-9][0-9]*)$/;

function malformed(message: string): MalformedError {
  return new MalformedError('ERR_CHECKPOINT_MALFORMED', message);
}

/**
 * Parses checkpoint note text (the part before the signatures, with its final newline).
 * @throws MalformedError `ERR_CHECKPOINT_MALFORMED`
 * @example
 * ```ts
 * const { text } = note.open(signed, [logVerifier]);
 * const cp = checkpoint.parse(text); // { origin, size, root, extensions }
 * ```
 */
export function parse(bodyText: string): Checkpoint {
  if (typeof bodyText !== 'string') throw malformed('checkpoint is not text');
  if (!bodyText.endsWith('\n')) throw malformed('checkpoint must end in a newline');
  if (!isCleanText(bodyText)) throw malformed('checkpoint has control characters');
  const lines = bodyText.slice(0, -1).split('\n');
  const [origin = '', sizeLine = '', rootLine = '', ...extensions] = lines;
  if (lines.length < 3) throw malformed('checkpoint needs origin, size and root lines');
  if (origin === '') throw malformed('empty origin');
  if (!SIZE.test(sizeLine)) throw malformed('tree size is not a canonical decimal');
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) throw malformed('tree size exceeds 2^53 - 1');
  let root: Uint8Array;
  try {
    root = fromBase64(rootLine);
  } catch {
    throw malformed('root hash is not base64');
  }
  if (root.length !== 32) throw malformed('root hash is not 32 bytes');
  if (extensions.some((line) => line === '')) throw malformed('empty extension line');
  return { origin, size, root, extensions };
}

/**
 * Formats a checkpoint as note text (ending in a newline). Inverse of {@link parse}.
 * @throws TypeError/RangeError for an empty origin, a line containing a newline or control
 *   character, a size that is not a safe non-negative integer, a root that is not 32 bytes, or
 *   an empty extension line.
 */
export function format(cp: Checkpoint): string {
  const line = (s: string, what: string): string => {
    if (typeof s !== 'string' || s === '' || s.includes('\n') || !isCleanText(s)) {
      throw new TypeError(`checkpoint.format: invalid ${what}`);
    }
    return `${s}\n`;
  };
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) {
    throw new RangeError('checkpoint.format: size must be a non-negative safe integer');
  }
  if (!(cp.root instanceof Uint8Array) || cp.root.length !== 32) {
    throw new RangeError('checkpoint.format: root must be 32 bytes');
  }
  return (
    line(cp.origin, 'origin') +
    `${cp.size}\n` +
    `${toBase64(cp.root)}\n` +
    cp.extensions.map((e) => line(e, 'extension line')).join('')
  );
}
