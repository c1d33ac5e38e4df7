/**
 * Prometheus metrics of the directory (served at `/metrics`).
 * @module
 */
import { Registry, Counter, Histogram, Gauge, collectDefaultMetrics } from 'prom-client';

/** The directory's metrics, on their own registry. */
export interface DirectoryMetrics {
  readonly registry: Registry;
  readonly epochs: Counter;
  readonly updatesSequenced: Counter;
  readonly updatesAccepted: Counter;
  readonly epochSeconds: Histogram;
  readonly vrfSeconds: Histogram;
  readonly lookups: Counter<'result'>;
  readonly publishedEpoch: Gauge;
  readonly leader: Gauge;
}

/** Creates the metrics (default process metrics included). */
export function createMetrics(): DirectoryMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const r = { registers: [registry] };
  return {
    registry,
    epochs: new Counter({
      name: 'keytrail_epochs_total',
      help: 'Epochs sequenced by this process',
      ...r,
    }),
    updatesSequenced: new Counter({
      name: 'keytrail_updates_sequenced_total',
      help: 'Versions inserted into the prefix tree',
      ...r,
    }),
    updatesAccepted: new Counter({
      name: 'keytrail_updates_accepted_total',
      help: 'Device-list updates accepted (durable)',
      ...r,
    }),
    epochSeconds: new Histogram({
      name: 'keytrail_epoch_seconds',
      help: 'Time to sequence one epoch (VRF, tree, commit, cosign)',
      buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
      ...r,
    }),
    vrfSeconds: new Histogram({
      name: 'keytrail_vrf_batch_seconds',
      help: "Time to prove one epoch's VRF batch",
      buckets: [0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2],
      ...r,
    }),
    lookups: new Counter({
      name: 'keytrail_lookups_total',
      help: 'Lookups served',
      labelNames: ['result'],
      ...r,
    }),
    publishedEpoch: new Gauge({
      name: 'keytrail_published_epoch',
      help: 'Newest released epoch',
      ...r,
    }),
    leader: new Gauge({
      name: 'keytrail_sequencer_leader',
      help: '1 when this process holds the sequencer lock',
      ...r,
    }),
  };
}
