/**
 * Session reset requests (wire type `resetRequest` 0x05): what a device sends when it cannot
 * decrypt a peer's messages (lost state, a broken ratchet), like libsignal's
 * `DecryptionErrorMessage` in `session_management.rs`, so that the peer archives its session and
 * starts a fresh X3DH.
 *
 * A request names requester and target devices, a timestamp, and optionally the ratchet key of
 * the message that failed; it is signed by the requester's identity key over
 * `Keytrail_ResetRequest_v1` ‖ every preceding byte. It cannot downgrade a session:
 * - it carries no parameters: the new session is negotiated from a fresh, directory-checked
 *   bundle, and neither side accepts a session below the feature floor it has recorded for the
 *   device (`DeviceRecord.floor`, monotonic);
 * - it never revives an old session, it only archives the current one;
 * - it is authenticated (so the relay cannot forge one), bound to both addresses (it cannot be
 *   redirected), replay-checked (timestamps must increase per device) and rate-limited on both
 *   sides, which stops reset loops (session-android #388) and bounds one-time-prekey drain.
 * @module
 */
import { type Address, readAddress, writeAddress } from './address.ts';
import { Writer, decodeStrict } from './codec.ts';
import { LABELS, signatureInput } from './kdf.ts';
import { type IdentityKeyPair, checkX25519PublicKey, sign, verifySignature } from './keys.ts';

/** A decoded reset request. */
export interface ResetRequest {
  readonly requester: Address;
  readonly target: Address;
  /** Milliseconds since the epoch on the requester's clock. */
  readonly timestamp: number;
  /** The ratchet key of the message that failed, when the requester could read it. */
  readonly ratchetKey: Uint8Array | undefined;
  /** Every byte before the signature. */
  readonly signed: Uint8Array;
  readonly signature: Uint8Array;
}

function body(
  requester: Address,
  target: Address,
  timestamp: number,
  ratchetKey: Uint8Array | undefined,
): Uint8Array {
  const w = new Writer(160).header('resetRequest');
  writeAddress(w, requester);
  writeAddress(w, target);
  w.u64(timestamp);
  if (ratchetKey === undefined) w.u8(0);
  else w.u8(1).fixed(ratchetKey, 32);
  return w.finish();
}

/** Creates and signs a reset request. */
export function createResetRequest(params: {
  readonly identity: IdentityKeyPair;
  readonly requester: Address;
  readonly target: Address;
  readonly timestamp: number;
  readonly ratchetKey: Uint8Array | undefined;
}): Uint8Array {
  const signed = body(params.requester, params.target, params.timestamp, params.ratchetKey);
  const signature = sign(params.identity, signatureInput(LABELS.resetRequest, signed));
  const out = new Uint8Array(signed.length + 64);
  out.set(signed);
  out.set(signature, signed.length);
  return out;
}

/**
 * Decodes a reset request (the signature is checked by {@link verifyResetRequest}).
 * @throws MalformedError `ERR_ENCODING_*`, `ERR_ADDRESS_INVALID`, `ERR_KEY_*`
 */
export function decodeResetRequest(bytes: Uint8Array): ResetRequest {
  return decodeStrict(bytes, 2 + 2 * 260 + 8 + 33 + 64, (r) => {
    r.header('resetRequest');
    const requester = readAddress(r);
    const target = readAddress(r);
    const timestamp = r.u64();
    const ratchetKey = r.bool() ? checkX25519PublicKey(r.fixed(32)) : undefined;
    const signed = bytes.slice(0, r.offset);
    return { requester, target, timestamp, ratchetKey, signed, signature: r.fixed(64) };
  });
}

/**
 * Verifies a reset request's signature with the requester's identity key (from the directory).
 * @throws VerificationError `ERR_RESET_INVALID`
 */
export function verifyResetRequest(request: ResetRequest, requesterIdentityKey: Uint8Array): void {
  verifySignature(
    requesterIdentityKey,
    signatureInput(LABELS.resetRequest, request.signed),
    request.signature,
    'ERR_RESET_INVALID',
  );
}
