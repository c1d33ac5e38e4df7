/**
 * `@keytrail/core`: the pure key-transparency protocol library. No I/O, no clock, no Node
 * built-ins; `Uint8Array` only. Runs unchanged in Node and browsers.
 *
 * Named exports, one per concept:
 * - `merkle`: RFC 9162 Merkle log hashing, roots, inclusion and consistency proofs, compact ranges.
 * - `note`: C2SP signed-note v1.0.0.
 * - `checkpoint`: C2SP tlog-checkpoint v1.0.0.
 * - `cosignature`: C2SP tlog-cosignature v1.0.1 (`cosignature/v1`, type 0x04) and witness policies.
 * - `vrf`: RFC 9381 ECVRF-EDWARDS25519-SHA512-TAI.
 * - `prefixTree`: the IETF KEYTRANS prefix tree.
 * - `commitment`: IETF KEYTRANS HMAC-SHA256 commitments.
 * - `encoding`: canonical binary encoding with strict decoding.
 * - `epoch`: the directory's epoch record (the leaf of its epoch log).
 * - `bytes`: hex, base64, UTF-8 helpers.
 * @module
 */
export * as merkle from './merkle.ts';
export * as note from './signed-note.ts';
export * as checkpoint from './checkpoint.ts';
export * as cosignature from './cosignature.ts';
export * as vrf from './vrf.ts';
export * as prefixTree from './prefix-tree.ts';
export * as commitment from './commitment.ts';
export * as encoding from './encoding.ts';
export * as epoch from './epoch-record.ts';
export * as bytes from './bytes.ts';
export {
  KtError,
  MalformedError,
  VerificationError,
  InconsistencyError,
  type KtErrorCode,
  type InconsistencyEvidence,
} from './errors.ts';
export {
  setCryptoBackend,
  getCryptoBackend,
  NOBLE_BACKEND,
  sha256,
  ed25519Verify,
  type CryptoBackend,
} from './crypto.ts';
