/**
 * `@keytrail/client`: the verifying Keytrail directory client, and the account, device-list,
 * ladder and proof encodings the directory and its clients share. Pure and isomorphic.
 * @module
 */
export {
  DirectoryClient,
  type ClientOptions,
  type TrustConfig,
  type ClientState,
  type FetchLike,
  type FetchResponse,
  type LookupResult,
  type VerifiedVersion,
  type MonitorAlert,
  type MonitorReport,
  type AlertKind,
} from './client.ts';
export {
  accountLabel,
  isTenantId,
  isAccountId,
  TENANT_ID_PATTERN,
  ACCOUNT_ID_PATTERN,
  type AccountRef,
} from './account.ts';
export {
  encodeDeviceList,
  decodeDeviceList,
  checkDeviceList,
  deviceListUpdateMessage,
  ownerReadMessage,
  DEVICE_LIST_FORMAT,
  DEVICE_ID_PATTERN,
  MAX_DEVICES,
  type Device,
  type DeviceList,
  type AuthorizationKind,
} from './device-list.ts';
export { fullLadder, lookupProbes, historyProbes, MAX_VERSION, type Probe } from './ladder.ts';
export {
  encodeLookupProof,
  decodeLookupProof,
  encodeHistoryProof,
  decodeHistoryProof,
  verifyLookupProof,
  verifyHistoryProof,
  verifyVrfProofs,
  historyBatches,
  PROOF_FORMAT,
  HISTORY_PROOF_FORMAT,
  HISTORY_BATCH_PROBES,
  MAX_HISTORY_VERSIONS,
  MAX_VALUE,
  type LookupProof,
  type HistoryProof,
  type HistoryEntry,
  type ProofContext,
} from './proof.ts';
export {
  ClientError,
  ServiceError,
  MalformedResponseError,
  ProofError,
  AccountNotFoundError,
  InconsistencyDetectedError,
  type ClientErrorCode,
  type ClientEvidence,
} from './errors.ts';
