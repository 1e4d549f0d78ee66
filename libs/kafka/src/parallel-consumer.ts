import type { Logger } from 'pino';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import { PartitionOffsets } from './partition-offsets';
import { Slots } from './slots';

/** A consumed message with where it came from. */
export type ConsumedMessage = KafkaMessage & { readonly topic: string; readonly partition: number };

/**
 * Handles one message; resolves when the message is fully dealt with (its effects durable).
 * A rejection is retried with backoff, the message staying unfinished, until it succeeds or
 * the consumer stops.
 */
export type MessageHandler = (message: ConsumedMessage) => Promise<void>;

export interface ParallelConsumerOptions {
  readonly groupId: string;
  readonly topics: readonly string[];
  /** Messages being handled at once, across partitions. */
  readonly maxInFlight: number;
  readonly commitIntervalMs?: number;
  readonly sessionTimeoutMs?: number;
  readonly fromBeginning?: boolean;
  readonly logger: Logger;
  /** Called each time the consumer joins its group (the first join, then every rebalance). */
  readonly onGroupJoin?: () => void;
}

const HEARTBEAT_EVERY_MS = 1000;

/**
 * A Kafka consumer whose throughput is not bounded by its partition count. Messages are taken
 * from each batch as fast as slots allow and handled concurrently; ordering within a key is the
 * handler's business (messages are dispatched in offset order). Offsets are committed per
 * partition only below the lowest unfinished message, so a crash loses nothing: at-least-once in.
 *
 * The batch callback never waits on a handler, only for a free slot, and heartbeats while it
 * waits: a slow Plaid call cannot push the consumer out of its group (kafkajs has no background
 * heartbeat).
 */
export class ParallelConsumer {
  private readonly consumer: Consumer;
  private readonly slots: Slots;
  private readonly partitions = new Map<string, PartitionOffsets>();
  private readonly committed = new Map<string, bigint>();
  private commitTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private joins = 0;

  constructor(
    kafka: Kafka,
    private readonly options: ParallelConsumerOptions,
    private readonly handler: MessageHandler,
  ) {
    this.slots = new Slots(options.maxInFlight);
    const sessionTimeout = options.sessionTimeoutMs ?? 30_000;
    this.consumer = kafka.consumer({
      groupId: options.groupId,
      sessionTimeout,
      rebalanceTimeout: Math.max(60_000, sessionTimeout * 2),
      heartbeatInterval: 3000,
      // The fetch long-poll; shutdown waits for the one under way, so keep it short.
      maxWaitTimeInMs: 500,
      // Slots, not fetch size, bound the work in hand: do not buffer megabytes ahead of them.
      maxBytesPerPartition: 64 * 1024,
      maxBytes: 256 * 1024,
      allowAutoTopicCreation: false,
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
      this.joins += 1;
      options.onGroupJoin?.();
      this.forgetRevoked(event.payload.memberAssignment);
    });
  }

  /** Times this consumer joined its group: more than one means a rebalance happened. */
  get groupJoins(): number {
    return this.joins;
  }

  get inFlight(): number {
    return this.slots.inUse;
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({
      topics: [...this.options.topics],
      fromBeginning: this.options.fromBeginning ?? true,
    });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 64,
      eachBatch: (payload) => this.takeBatch(payload),
    });
    this.commitTimer = setInterval(() => void this.commit(), this.options.commitIntervalMs ?? 1000);
  }

  /**
   * Stops fetching, lets handlers finish for up to `graceMs`, commits what finished and leaves
   * the group. Unfinished messages are redelivered to whoever consumes next.
   */
  async stop(graceMs: number): Promise<{ drained: boolean }> {
    if (this.stopping) return { drained: this.slots.inUse === 0 };
    this.stopping = true;
    this.consumer.pause(this.options.topics.map((topic) => ({ topic })));
    const drained = await this.slots.drained(graceMs);
    clearInterval(this.commitTimer);
    await this.commit();
    await this.consumer.disconnect();
    return { drained };
  }

  private async takeBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const heartbeat = () => payload.heartbeat();
    const usable = () => payload.isRunning() && !payload.isStale();
    const offsets = this.offsetsOf(batch.topic, batch.partition);
    for (const message of batch.messages) {
      if (!(await this.waitForSlot(heartbeat, usable))) break;
      const offset = BigInt(message.offset);
      const fresh = offsets.start(offset);
      payload.resolveOffset(message.offset);
      if (!fresh) {
        this.slots.release();
        continue;
      }
      void this.run(
        { ...message, topic: batch.topic, partition: batch.partition },
        offsets,
        offset,
      );
    }
    await heartbeat();
  }

  /** Waits for a free slot, heartbeating meanwhile; false when the batch is no longer ours. */
  private async waitForSlot(heartbeat: () => Promise<void>, usable: () => boolean) {
    for (;;) {
      if (this.stopping || !usable()) return false;
      if (await this.slots.acquire(HEARTBEAT_EVERY_MS)) {
        if (this.stopping || !usable()) {
          this.slots.release();
          return false;
        }
        return true;
      }
      await heartbeat();
    }
  }

  private async run(
    message: ConsumedMessage,
    offsets: PartitionOffsets,
    offset: bigint,
  ): Promise<void> {
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.handler(message);
          offsets.finish(offset);
          return;
        } catch (error) {
          this.options.logger.error(
            {
              err: error,
              topic: message.topic,
              partition: message.partition,
              offset: message.offset,
              attempt,
            },
            'handling a message failed; retrying',
          );
          if (this.stopping) return;
          await new Promise((r) => setTimeout(r, Math.min(30_000, 100 * 2 ** attempt)));
          if (this.stopping) return;
        }
      }
    } finally {
      this.slots.release();
    }
  }

  private offsetsOf(topic: string, partition: number): PartitionOffsets {
    const key = `${topic}\u0000${partition}`;
    let offsets = this.partitions.get(key);
    if (!offsets) {
      offsets = new PartitionOffsets();
      this.partitions.set(key, offsets);
    }
    return offsets;
  }

  /** After a rebalance, partitions now owned by another member are no longer ours to commit. */
  private forgetRevoked(assignment: Record<string, number[]>): void {
    for (const key of [...this.partitions.keys()]) {
      const [topic, partition] = key.split('\u0000') as [string, string];
      if (!assignment[topic]?.includes(Number(partition))) {
        this.partitions.delete(key);
        this.committed.delete(key);
      }
    }
  }

  private async commit(): Promise<void> {
    const changes: { topic: string; partition: number; offset: string }[] = [];
    for (const [key, offsets] of this.partitions) {
      const next = offsets.committable();
      if (next === undefined || this.committed.get(key) === next) continue;
      const [topic, partition] = key.split('\u0000') as [string, string];
      changes.push({ topic, partition: Number(partition), offset: next.toString() });
    }
    if (changes.length === 0) return;
    try {
      await this.consumer.commitOffsets(changes);
      for (const c of changes)
        this.committed.set(`${c.topic}\u0000${c.partition}`, BigInt(c.offset));
    } catch (error) {
      // A rebalance in progress rejects commits; the next tick tries again.
      this.options.logger.warn({ err: error }, 'committing offsets failed; will retry');
    }
  }
}
