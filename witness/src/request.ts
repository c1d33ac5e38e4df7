/**
 * The C2SP tlog-witness v1.0.0 `add-checkpoint` request body:
 *
 * ```
 * old <N>\n
 * <base64 hash>\n        (0..63 RFC 6962 consistency-proof lines)
 * \n
 * <checkpoint signed note>
 * ```
 *
 * Everything here is attacker-controlled; every failure is an `ERR_WITNESS_MALFORMED`
 * {@link WitnessError} (HTTP 400), never a stray `SyntaxError`.
 * @module
 */
import { bytes, KtError } from '@keytrail/core';
import { WitnessError } from './errors.ts';

/** The largest request body the witness reads (C2SP notes: cap bodies at 16 KiB). */
export const MAX_BODY_BYTES = 16 * 1024;

/** The most consistency-proof lines a client may send (tlog-witness: "MUST NOT send more than 63"). */
export const MAX_PROOF_LINES = 63;

/** A parsed `add-checkpoint` request. */
export interface AddCheckpointRequest {
  /** The tree size the client believes the witness holds. */
  readonly oldSize: number;
  /** The RFC 6962 consistency proof from `oldSize` to the checkpoint's size; 32-byte hashes. */
  readonly proof: readonly Uint8Array[];
  /** The signed checkpoint note, exactly as sent (not yet parsed or verified). */
  readonly note: string;
}

// "ASCII decimal with no leading zeroes (unless the size is zero)".
const OLD_LINE = /^old (0|[1-9][0-9]{0,15})$/;

function malformed(message: string, cause?: unknown): WitnessError {
  return new WitnessError('ERR_WITNESS_MALFORMED', message, cause ? { cause } : undefined);
}

/**
 * Parses an `add-checkpoint` body.
 * @throws WitnessError `ERR_WITNESS_MALFORMED`: invalid UTF-8, a bad `old` line, a size above
 *   2^53 − 1 (sizes are stored as exact JavaScript numbers), a proof line that is not strict
 *   base64 of 32 bytes, more than 63 proof lines, or no blank line before the note.
 * @example
 * parseAddCheckpointRequest(utf8('old 0\n\nexample.com/log\n1\n…\n\n— example.com/log …\n'));
 */
export function parseAddCheckpointRequest(body: Uint8Array): AddCheckpointRequest {
  if (body.length > MAX_BODY_BYTES) throw malformed('request body too large');
  let text: string;
  try {
    text = bytes.fromUtf8(body);
  } catch (err) {
    throw malformed('request body is not valid UTF-8', err);
  }
  const split = text.indexOf('\n\n');
  if (split < 0) throw malformed('request body has no blank line before the checkpoint');
  const lines = text.slice(0, split).split('\n');
  const note = text.slice(split + 2);
  const old = OLD_LINE.exec(lines[0] ?? '');
  if (!old?.[1]) throw malformed('first line must be "old <size>"');
  const oldSize = Number(old[1]);
  if (!Number.isSafeInteger(oldSize)) throw malformed('old size too large');
  const proofLines = lines.slice(1);
  if (proofLines.length > MAX_PROOF_LINES) throw malformed('too many consistency proof lines');
  const proof = proofLines.map((line) => {
    let hash: Uint8Array;
    try {
      // Lenient like Go's tlog.ParseHash: unused padding bits are ignored.
      hash = bytes.fromBase64(canonicalBase64(line));
    } catch (err) {
      throw malformed(
        'consistency proof line is not base64',
        err instanceof KtError ? err : undefined,
      );
    }
    if (hash.length !== 32) throw malformed('consistency proof hash is not 32 bytes');
    return hash;
  });
  return { oldSize, proof, note: canonicalizeSignatureBase64(note) };
}

/** Formats an `add-checkpoint` body (the inverse of {@link parseAddCheckpointRequest}). */
export function formatAddCheckpointRequest(
  oldSize: number,
  proof: readonly Uint8Array[],
  note: string,
): string {
  if (!Number.isSafeInteger(oldSize) || oldSize < 0) {
    throw new RangeError(`formatAddCheckpointRequest: bad old size ${String(oldSize)}`);
  }
  if (proof.length > MAX_PROOF_LINES) {
    throw new RangeError('formatAddCheckpointRequest: more than 63 proof lines');
  }
  let out = `old ${String(oldSize)}\n`;
  for (const h of proof) out += `${bytes.toBase64(h)}\n`;
  return `${out}\n${note}`;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Clears the bits of the last base64 symbol that padding leaves unused (what Go ignores). */
function canonicalBase64(text: string): string {
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  if (pad === 0) return text;
  const at = text.length - pad - 1;
  const v = B64.indexOf(text.charAt(at));
  if (v < 0) return text;
  return text.slice(0, at) + B64.charAt(v & (pad === 2 ? 0x30 : 0x3c)) + text.slice(at + 1);
}

/**
 * Clears the unused low bits of the last base64 symbol of every signature line, which Go's
 * (non-strict) `encoding/base64` decoder ignores. `@keytrail/core` decodes strictly and would
 * call such a line malformed (400); Go witnesses decode it to the same bytes as the canonical
 * form, find that the signature fails, and answer 403 (the litewitness scenario, step 2). The
 * decoded bytes are unchanged, so nothing unsigned becomes signed.
 */
export function canonicalizeSignatureBase64(noteText: string): string {
  const split = noteText.lastIndexOf('\n\n');
  if (split < 0) return noteText;
  const lines = noteText.slice(split + 2).split('\n');
  const fixed = lines.map((line) => (line.startsWith('\u2014 ') ? canonicalBase64(line) : line));
  return noteText.slice(0, split + 2) + fixed.join('\n');
}
