import { Kafka, logLevel, type KafkaConfig, type LogEntry } from 'kafkajs';
import type { Logger } from 'pino';
import { patchKafkajsCrc32c } from './kafkajs-crc32c';
import { patchKafkajsEncoder } from './kafkajs-encoder';
import { patchKafkajsForNode } from './kafkajs-node-compat';
import { patchKafkajsRecordDecoder } from './kafkajs-record-decoder';
import { murmur2Partitioner } from './murmur2-partitioner';

// Before any connection: see kafkajs-node-compat.ts, kafkajs-encoder.ts, kafkajs-record-decoder.ts,
// kafkajs-crc32c.ts.
patchKafkajsForNode();
patchKafkajsEncoder();
patchKafkajsRecordDecoder();
patchKafkajsCrc32c();

export interface KafkaOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  /** Put in front of every topic name, so several deployments can share one cluster. */
  readonly topicPrefix: string;
  readonly logger: Logger;
}

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** A kafkajs client that logs through pino. kafkajs stays behind this library's interface. */
export function createKafka(options: KafkaOptions, overrides: Partial<KafkaConfig> = {}): Kafka {
  const log = options.logger.child({ component: 'kafkajs' });
  return new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    connectionTimeout: 3000,
    requestTimeout: 30000,
    // About 15 s of retries: long enough to ride out a broker restart, short enough that an
    // app pointed at a wrong address fails start-up promptly instead of hanging.
    retry: { initialRetryTime: 300, maxRetryTime: 5000, retries: 6 },
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ namespace, level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        log[LEVELS[level] ?? 'info']({ namespace, ...rest }, message);
      },
    ...overrides,
  });
}

/**
 * Java's murmur2 partitioner, so a key lands on the same partition whichever client produced it
 * (librdkafka clients such as kcat need `-X partitioner=murmur2_random` to agree): kafkajs's
 * DefaultPartitioner with a faster hash of the same value (murmur2-partitioner.ts).
 */
export const partitioner = murmur2Partitioner;
