/**
 * `@keytrail/auditor`: the engine behind `keytrail-audit` — replay and verification of a Keytrail
 * directory's epoch log (ARCHITECTURE.md §Protocol 9), with sources injected, so that other
 * programs and end-to-end tests can drive an audit without the CLI.
 * @module
 */
export { sync, loadReplayTree, type SyncOptions, type SyncReport } from './sync.ts';
export {
  HttpDirectorySource,
  INSERT_SIZE,
  MAX_INSERTS_PER_REQUEST,
  MAX_LEAVES_PER_REQUEST,
  type DirectorySource,
  type InsertsPage,
  type HttpSourceOptions,
} from './directory-source.ts';
export { StateStore, DEFAULT_STATE_DIR, type AuditConfig, type AuditState } from './state-store.ts';
export {
  parseTrustFile,
  parseTrustConfig,
  trustPolicy,
  type TrustConfig,
  type TrustPolicy,
} from './trust.ts';
export { ReplayTree } from './replay-tree.ts';
export { PartialTree } from './partial-tree.ts';
export {
  parseEvidence,
  verifyEvidence,
  formatEvidence,
  rootsFromConsistencyProof,
  EVIDENCE_FORMAT,
  type Evidence,
  type EvidenceVerdict,
} from './evidence.ts';
export {
  verifyAnyCheckpoint,
  type AnyCheckpointPolicy,
  type AnyCheckpointResult,
} from './any-checkpoint.ts';
export { CHECKS, type CheckName, type Finding } from './findings.ts';
export { AuditError, MisbehaviourError, type AuditErrorCode } from './errors.ts';
export { runCli, COMMANDS, type CliIo } from './commands.ts';
