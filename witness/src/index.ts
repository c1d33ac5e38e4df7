/**
 * `@keytrail/witness`: a standalone C2SP tlog-witness (v1.0.0) for any C2SP log, cosigning with
 * C2SP tlog-cosignature v1.0.1 `cosignature/v1` (Ed25519, type 0x04).
 * @module
 */
export { buildApp, evidenceJson, type WitnessAppDeps, type RateLimitOptions } from './app.ts';
export {
  Witness,
  type WitnessOptions,
  type AddCheckpointResult,
  type WitnessObserver,
} from './witness.ts';
export {
  PgWitnessStore,
  MemoryWitnessStore,
  EMPTY_ROOT,
  type WitnessStore,
  type LogState,
  type FollowedLog,
  type LogListing,
  type CosignedState,
  type Evidence,
  type EvidenceInput,
  type EvidenceKind,
  type AddLogResult,
} from './store.ts';
export {
  parseAddCheckpointRequest,
  formatAddCheckpointRequest,
  canonicalizeSignatureBase64,
  MAX_BODY_BYTES,
  MAX_PROOF_LINES,
  type AddCheckpointRequest,
} from './request.ts';
export {
  witnessKeyFromSeed,
  generateWitnessKey,
  parseWitnessKey,
  loadOrCreateKeyFile,
  loadKeyFile,
  openWitnessKey,
  formatSignatureLine,
  isValidKeyName,
  type WitnessKey,
  type LoadedKey,
  type KeyFileOptions,
} from './key.ts';
export { parseLogList, keyName } from './log-list.ts';
export { readConfig, LOG_LEVELS, type WitnessConfig } from './config.ts';
export { startWitness, openWitnessDb, applyLogsFile, type RunningWitness } from './main.ts';
export { runCli, type CliIo } from './commands.ts';
export {
  WitnessError,
  SizeConflictError,
  WITNESS_ERROR_STATUS,
  type WitnessErrorCode,
} from './errors.ts';
