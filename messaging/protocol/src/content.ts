/**
 * The plaintext inside a pairwise ratchet message or a group message (wire type `content` 0x0a):
 * a kind byte, the body, and zero padding to a multiple of {@link CONTENT_PADDING_BLOCK} bytes so
 * that ciphertext lengths reveal only a coarse size (Signal pads in the same place, to 160 B).
 * Padding is canonical: exactly the bytes needed, all zero.
 * @module
 */
import { Writer, decodeStrict } from './codec.ts';
import { MalformedError } from './errors.ts';

/** Padding granularity in bytes. */
export const CONTENT_PADDING_BLOCK: number = 64;

/** Largest application body in one message; attachments carry anything bigger. */
export const MAX_CONTENT_BODY: number = 64 * 1024;

/** What a content carries. */
export type ContentKind = 'data' | 'sender-key-distribution';

const KIND_BYTE: Record<ContentKind, number> = { data: 1, 'sender-key-distribution': 2 };

/** A decoded content. */
export interface Content {
  readonly kind: ContentKind;
  readonly body: Uint8Array;
}

/** Encodes and pads a content. */
export function encodeContent(content: Content): Uint8Array {
  if (content.body.length > MAX_CONTENT_BODY) throw new RangeError('content body too large');
  const unpadded = 2 + 1 + 4 + content.body.length;
  const padded = Math.ceil(unpadded / CONTENT_PADDING_BLOCK) * CONTENT_PADDING_BLOCK;
  return new Writer(padded)
    .header('content')
    .u8(KIND_BYTE[content.kind])
    .opaque32(content.body)
    .bytes(new Uint8Array(padded - unpadded))
    .finish();
}

/**
 * Decodes a content and checks its padding.
 * @throws MalformedError `ERR_ENCODING_*`, `ERR_PADDING_INVALID`, `ERR_UNEXPECTED_TYPE`
 */
export function decodeContent(bytes: Uint8Array): Content {
  return decodeStrict(bytes, MAX_CONTENT_BODY + 2 * CONTENT_PADDING_BLOCK, (r) => {
    r.header('content');
    const k = r.u8();
    const kind: ContentKind | undefined =
      k === 1 ? 'data' : k === 2 ? 'sender-key-distribution' : undefined;
    if (kind === undefined) throw new MalformedError('ERR_UNEXPECTED_TYPE', 'unknown content kind');
    const body = r.opaque32(MAX_CONTENT_BODY);
    const pad = r.view_(r.remaining);
    if (bytes.length % CONTENT_PADDING_BLOCK !== 0 || pad.length >= CONTENT_PADDING_BLOCK) {
      throw new MalformedError('ERR_PADDING_INVALID', 'padding length not canonical');
    }
    for (const b of pad) {
      if (b !== 0) throw new MalformedError('ERR_PADDING_INVALID', 'non-zero padding');
    }
    return { kind, body };
  });
}
