/**
 * `@keytrail/directory`: the directory service as a library, for embedding and for
 * cross-component tests. `main.ts` is the process entry point (`npm start`).
 * @module
 */
export { buildApp, type AppDeps } from './app.ts';
export { loadConfig, type DirectoryConfig } from './config.ts';
export { runMigrations } from './migrate-cli.ts';
export { Directory, DEFAULT_ORIGIN, type DirectoryOptions } from './kt/directory.ts';
export { KtStore } from './kt/store.ts';
export { KtDeviceDirectory } from './kt/device-directory.ts';
export type { CheckpointCosigner } from './kt/cosigner.ts';
export { WitnessCollector } from './witnessing/collector.ts';
export { parseWitnessPolicy, type WitnessPolicy } from './witnessing/policy.ts';
export { PgWitnessingStore } from './witnessing/store.ts';
export {
  attachLatePublisher,
  createWitnessCollector,
  mergeCosignedNotes,
  witnessConfig,
} from './witnessing/wiring.ts';
export {
  registerIdentity,
  readIdentityConfig,
  identityConfig,
  type IdentityDeps,
  type IdentityHandle,
} from './identity/index.ts';
