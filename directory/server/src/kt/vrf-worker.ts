/**
 * Worker-thread entry of {@link VrfWorkerPool}: the fastest available prover answering batches.
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createFastProver } from './vrf-prover.ts';

const { secretKey } = workerData as { secretKey: Uint8Array };
const prover = createFastProver(secretKey);
parentPort?.on('message', (msg: { id: number; alphas: Uint8Array[] }) => {
  const results = prover.proveMany(msg.alphas);
  parentPort?.postMessage({ id: msg.id, results });
});
