/**
 * The Kafka topics of cashflow-refresh: the one place their names, keys and retention live.
 *
 * The event topics are the system's log: the projection is rebuilt from them, so they keep
 * events indefinitely (no time- or size-based deletion).
 */
import type { EventType } from './events';

export type TopicKey =
  | 'refreshRequested'
  | 'refreshOutcomes'
  | 'reportOutcomes'
  | 'reportFetches'
  | 'plaidWebhooks'
  | 'itemHealth'
  | 'transactions'
  | 'deadLetter';

/** What a topic's records are: CloudEvents, dead letters, or a changelog of rows. */
export type TopicRecords = 'events' | 'dead-letters' | 'transactions-changelog';

export interface TopicDefinition {
  readonly key: TopicKey;
  /** Name without the deployment's prefix (KAFKA_TOPIC_PREFIX). */
  readonly name: string;
  readonly description: string;
  readonly records: TopicRecords;
  /** Event types carried by the topic; empty for topics whose records are not events. */
  readonly events: readonly EventType[];
  /** Kafka topic configs applied when the project creates the topic. */
  readonly configs: Readonly<Record<string, string>>;
}

/** Partitions per topic when the project creates it (KAFKA_PARTITIONS overrides). */
export const DEFAULT_PARTITIONS = 12;

const KEEP_FOREVER = { 'cleanup.policy': 'delete', 'retention.ms': '-1', 'retention.bytes': '-1' };

export const TOPICS: Readonly<Record<TopicKey, TopicDefinition>> = {
  refreshRequested: {
    key: 'refreshRequested',
    name: 'cashflow-refresh.refresh-requested.v1',
    description: 'Upstream services ask for a fresh Cashflow Report for one Item.',
    records: 'events',
    events: ['RefreshRequested'],
    // The broker stamps each request as it appends it: the worker's coalescing compares that
    // time with its calls, and a producer's clock (or a request's own ce_time) may be off.
    configs: { ...KEEP_FOREVER, 'message.timestamp.type': 'LogAppendTime' },
  },
  refreshOutcomes: {
    key: 'refreshOutcomes',
    name: 'cashflow-refresh.refresh-outcomes.v1',
    description:
      'The refresh worker answers every RefreshRequested with exactly one RefreshAccepted or RefreshFailed.',
    records: 'events',
    events: ['RefreshAccepted', 'RefreshFailed'],
    configs: KEEP_FOREVER,
  },
  reportOutcomes: {
    key: 'reportOutcomes',
    name: 'cashflow-refresh.report-outcomes.v1',
    description:
      "The webhook ingress publishes Plaid's verified CASHFLOW_REPORT_READY webhooks as ReportReady or ReportFailed.",
    records: 'events',
    events: ['ReportReady', 'ReportFailed', 'ReportOverdue'],
    configs: KEEP_FOREVER,
  },
  reportFetches: {
    key: 'reportFetches',
    name: 'cashflow-refresh.report-fetches.v1',
    description:
      'The report fetcher reads each ready report from Plaid and stores it: ReportFetched (what changed) or ReportFetchFailed.',
    records: 'events',
    events: ['ReportFetched', 'ReportFetchFailed'],
    configs: KEEP_FOREVER,
  },
  plaidWebhooks: {
    key: 'plaidWebhooks',
    name: 'cashflow-refresh.plaid-webhooks.v1',
    description:
      'Every other verified Plaid webhook about an Item (any webhook_code but CASHFLOW_REPORT_READY), as Plaid sent it, for other consumers.',
    records: 'events',
    events: ['PlaidWebhookReceived'],
    configs: KEEP_FOREVER,
  },
  itemHealth: {
    key: 'itemHealth',
    name: 'cashflow-refresh.item-health.v1',
    description:
      "The refresh worker's view of each Item's health, from Plaid's Item webhooks and its own refresh answers: ItemNeedsAttention when it turns bad, ItemHealthRestored when it recovers, once per change.",
    records: 'events',
    events: ['ItemNeedsAttention', 'ItemHealthRestored'],
    configs: KEEP_FOREVER,
  },
  transactions: {
    key: 'transactions',
    name: 'cashflow-refresh.transactions.v1',
    description:
      "Every stored transaction's latest state (people's bank transactions: restrict with ACLs), log-compacted: key item_id + transaction_id, value the transaction as Plaid gave it plus item_id and fetch_id, a tombstone when removed. Off when REPORT_CHANGELOG_ENABLED=false.",
    records: 'transactions-changelog',
    events: [],
    // Compacted: the latest record of each transaction is kept, and a tombstone (removed) for a
    // day, so a consumer that reads at least daily sees removals; then it goes too.
    configs: { 'cleanup.policy': 'compact', 'delete.retention.ms': '86400000' },
  },
  deadLetter: {
    key: 'deadLetter',
    name: 'cashflow-refresh.dead-letter.v1',
    description:
      'Records a consumer could not decode or validate: the original key, value and headers, plus dlq_* headers with the reason.',
    records: 'dead-letters',
    events: [],
    configs: KEEP_FOREVER,
  },
};

export const TOPIC_KEYS = Object.keys(TOPICS) as TopicKey[];

/** The full topic name in a deployment whose topics share `prefix` (may be empty). */
export function topicName(key: TopicKey, prefix = ''): string {
  return `${prefix}${TOPICS[key].name}`;
}

/** The topic an event type is published to. */
export function topicKeyForEvent(type: EventType): TopicKey {
  const found = TOPIC_KEYS.find((key) => TOPICS[key].events.includes(type));
  if (!found) throw new Error(`No topic carries ${type}`);
  return found;
}
