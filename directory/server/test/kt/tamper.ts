/**
 * Building blocks of the lying-server tests: flip a bit, replace one element, and mutations
 * that decode a proof from an answer, change it and encode it back.
 * @module
 */
import { bytes } from '@keytrail/core';
import {
  decodeHistoryProof,
  decodeLookupProof,
  encodeHistoryProof,
  encodeLookupProof,
  type ClientErrorCode,
  type HistoryProof,
  type LookupProof,
} from '@keytrail/client';

/** A copy of `b` with one bit of byte `i` flipped. */
export const flip = (b: Uint8Array, i = 0): Uint8Array => {
  const c = b.slice();
  c[i % c.length] = (c[i % c.length] ?? 0) ^ 0x01;
  return c;
};

/** A copy of `list` with element `i` replaced. */
export function replaceAt<T>(list: readonly T[], i: number, v: T): T[] {
  const c = [...list];
  c[i] = v;
  return c;
}

/** A named change to a JSON answer and the error code the client must answer it with. */
export type Mutation = [
  name: string,
  mutate: (json: Record<string, unknown>) => Record<string, unknown>,
  code: ClientErrorCode,
];

function withProof(
  json: Record<string, unknown>,
  f: (proof: Uint8Array) => Uint8Array,
): Record<string, unknown> {
  return { ...json, proof: bytes.toBase64(f(bytes.fromBase64(json['proof'] as string))) };
}

/** A change to a lookup answer's proof. */
export function proofMutation(
  name: string,
  f: (p: LookupProof) => LookupProof,
  code: ClientErrorCode,
): Mutation {
  return [name, (json) => withProof(json, (b) => encodeLookupProof(f(decodeLookupProof(b)))), code];
}

/** A change to an owner-history answer's proof. */
export function historyMutation(
  name: string,
  f: (p: HistoryProof) => HistoryProof,
  code: ClientErrorCode,
): Mutation {
  return [
    name,
    (json) => withProof(json, (b) => encodeHistoryProof(f(decodeHistoryProof(b)))),
    code,
  ];
}
