/**
 * The seam for witness cosigning (C2SP tlog-witness, tlog-cosignature; issue 4). After each
 * epoch's transaction commits, the sequencer hands the log-signed checkpoint to a
 * {@link CheckpointCosigner} and publishes what it returns: the same note with cosignature
 * lines added. The witness worker's collector implements it; the default publishes with the
 * log's signature only.
 * @module
 */

/** What a cosigner gets for one checkpoint. */
export interface CosignRequest {
  /** The checkpoint note, signed by the log. */
  readonly checkpoint: string;
  /** Its tree size. */
  readonly size: number;
  /** The RFC 9162 consistency proof from `oldSize` to `size` (for `old <size>` requests). */
  consistencyProof(oldSize: number): Uint8Array[];
}

/** Collects witness cosignatures for a checkpoint. */
export interface CheckpointCosigner {
  /**
   * @returns the note with cosignature lines added (or unchanged). Must not throw for an
   *   unreachable witness: the sequencer publishes whatever comes back.
   */
  cosign(request: CosignRequest): Promise<string>;
}

/** The default: publish with the log's signature only. */
export const LOG_SIGNATURE_ONLY: CheckpointCosigner = {
  cosign: (request) => Promise.resolve(request.checkpoint),
};
