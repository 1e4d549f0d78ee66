import type { TopicKey } from '@cashflow/contracts';

/** The topics the projection is built from: every event topic (not the dead letters). */
export const PROJECTED_TOPICS: readonly TopicKey[] = [
  'refreshRequested',
  'refreshOutcomes',
  'reportOutcomes',
  'reportFetches',
  'plaidWebhooks',
  'itemHealth',
];

/** The live projector's name in consumer_checkpoints and dead-letter records. */
export const PROJECTOR_CONSUMER = 'projector';
