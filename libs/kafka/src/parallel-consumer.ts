import type { Logger } from 'pino';
import {
  PartitionAssigners,
  type Consumer,
  type EachBatchPayload,
  type Kafka,
  type KafkaMessage,
} from 'kafkajs';
import { RESTARTS_LEFT_TO_US, restartWhenGivenUp } from './consumer-restarts';
import { PartitionOffsets } from './partition-offsets';
import { Slots } from './slots';
import { Holdings, stickyAssigner, type TopicPartition } from './sticky-assigner';

/**
 * A consumed message with where it came from. `signal` aborts when the message is no longer this
 * consumer's to finish: its partition moved to another member, or the consumer is stopping. A
 * handler that has not yet started its effects (say, a Plaid call) should let it go then: the
 * message is redelivered to whoever owns the partition next.
 */
export type ConsumedMessage = KafkaMessage & {
  readonly topic: string;
  readonly partition: number;
  readonly signal: AbortSignal;
};

/**
 * Handles one message; resolves when the message is fully dealt with (its effects durable).
 * A rejection is retried with backoff, the message staying unfinished, until it succeeds, the
 * consumer stops, its partition moves (its signal aborted), or `giveUpAfterMs` passes.
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
  /**
   * A message whose handler has failed for this long is passed to `onGiveUp` (e.g. dead-lettered
   * with the last error) and counted as finished, so one message that cannot be handled does not
   * hold its partition's commits forever. Without `onGiveUp` a message is retried until it works.
   */
  readonly giveUpAfterMs?: number;
  readonly onGiveUp?: (message: ConsumedMessage, lastError: unknown) => Promise<void>;
}

/** How long a failing handler is retried before its message is given up, by default. */
export const DEFAULT_GIVE_UP_AFTER_MS = 15 * 60_000;
/** However long it has failed, a message is tried at least this often before it is given up. */
const MIN_ATTEMPTS_BEFORE_GIVING_UP = 3;

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
  /** Messages being handled, by partition: aborted when the partition leaves us. */
  private readonly handling = new Map<string, Set<AbortController>>();
  private commitTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private joins = 0;
  /** The member id of the last join (kafkajs gives a new one each time the consumer rejoins). */
  private memberId: string | undefined;
  /** What this consumer holds, sent with its next join so the group's leader can keep it here. */
  private readonly holdings = new Holdings();

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
      // A rebalance moves only the partitions the balance needs (see stickyAssigner).
      partitionAssigners: [stickyAssigner(this.holdings), PartitionAssigners.roundRobin],
      // kafkajs never restarts the consumer itself; restartWhenGivenUp does, failures included.
      retry: RESTARTS_LEFT_TO_US,
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
      this.holdings.update(event.payload.memberAssignment);
      this.joins += 1;
      options.onGroupJoin?.();
      const { memberId, memberAssignment } = event.payload;
      // A new member id: this consumer left the group (kafkajs crashed and restarted it, or its
      // session ran out) and another member may have owned and committed its partitions since.
      // Nothing it knew is its own any more: kafkajs delivers again from the group's offsets.
      if (this.memberId !== undefined && memberId !== this.memberId) this.forgetAll();
      else this.forgetRevoked(memberAssignment);
      this.memberId = memberId;
    });
  }

  /** The partitions this consumer was assigned at its last join. */
  get assigned(): readonly TopicPartition[] {
    return this.holdings.owned;
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
    const run = () =>
      this.consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 64,
        eachBatch: (payload) => this.takeBatch(payload),
      });
    restartWhenGivenUp(this.consumer, {
      run,
      stopping: () => this.stopping,
      logger: this.options.logger,
    });
    await run();
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
    for (const controllers of this.handling.values()) controllers.forEach((c) => c.abort());
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
      void this.run(message, batch.topic, batch.partition, offsets, offset);
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
    received: KafkaMessage,
    topic: string,
    partition: number,
    offsets: PartitionOffsets,
    offset: bigint,
  ): Promise<void> {
    const key = partitionKey(topic, partition);
    const controller = new AbortController();
    const controllers = this.handling.get(key) ?? new Set();
    this.handling.set(key, controllers.add(controller));
    const message: ConsumedMessage = { ...received, topic, partition, signal: controller.signal };
    // Counted from the first failure, not from when the message arrived: a handler may rightly
    // take long (a request waiting for its Item's window) and then fail once.
    let failingSince: number | undefined;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.handler(message);
          offsets.finish(offset);
          return;
        } catch (error) {
          // Let go: the partition's new owner, or the next consumer, handles it.
          if (controller.signal.aborted) return;
          failingSince ??= Date.now();
          if (
            this.options.onGiveUp &&
            attempt >= MIN_ATTEMPTS_BEFORE_GIVING_UP &&
            Date.now() - failingSince >= (this.options.giveUpAfterMs ?? DEFAULT_GIVE_UP_AFTER_MS) &&
            (await this.giveUp(message, error))
          ) {
            offsets.finish(offset);
            return;
          }
          this.options.logger.error(
            { err: error, topic, partition, offset: message.offset, attempt },
            'handling a message failed; retrying',
          );
          await backoff(Math.min(30_000, 100 * 2 ** attempt), controller.signal);
          if (controller.signal.aborted) return;
        }
      }
    } finally {
      controllers.delete(controller);
      if (controllers.size === 0 && this.handling.get(key) === controllers)
        this.handling.delete(key);
      this.slots.release();
    }
  }

  private async giveUp(message: ConsumedMessage, error: unknown): Promise<boolean> {
    try {
      await this.options.onGiveUp!(message, error);
      this.options.logger.error(
        { err: error, topic: message.topic, partition: message.partition, offset: message.offset },
        'gave up on a message its handler kept failing on',
      );
      return true;
    } catch (failure) {
      this.options.logger.error({ err: failure }, 'giving up on a message failed; retrying it');
      return false;
    }
  }

  private offsetsOf(topic: string, partition: number): PartitionOffsets {
    const key = partitionKey(topic, partition);
    let offsets = this.partitions.get(key);
    if (!offsets) {
      offsets = new PartitionOffsets();
      this.partitions.set(key, offsets);
    }
    return offsets;
  }

  /**
   * After a rebalance, partitions now owned by another member are no longer ours: their offsets
   * are not ours to commit, and their messages still being handled are let go.
   */
  private forgetRevoked(assignment: Record<string, number[]>): void {
    const ours = (key: string) => {
      const [topic, partition] = key.split('\u0000') as [string, string];
      return assignment[topic]?.includes(Number(partition)) ?? false;
    };
    for (const key of [...this.partitions.keys()]) {
      if (ours(key)) continue;
      this.partitions.delete(key);
      this.committed.delete(key);
    }
    for (const [key, controllers] of this.handling) {
      if (!ours(key)) controllers.forEach((c) => c.abort());
    }
  }

  /** After leaving the group: every offset and every message in hand is let go. */
  private forgetAll(): void {
    this.partitions.clear();
    this.committed.clear();
    for (const controllers of this.handling.values()) controllers.forEach((c) => c.abort());
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
    // kafkajs's commitOffsets resolves without committing while its runner is stopped (between a
    // crash and the restart), and a commit that was retrying then also ends so: what resolves
    // after a join is not taken for committed (the forgetting above ran meanwhile).
    const joins = this.joins;
    try {
      await this.consumer.commitOffsets(changes);
      if (this.joins !== joins) return;
      for (const c of changes)
        this.committed.set(partitionKey(c.topic, c.partition), BigInt(c.offset));
    } catch (error) {
      // A rebalance in progress rejects commits; the next tick tries again.
      this.options.logger.warn({ err: error }, 'committing offsets failed; will retry');
    }
  }
}

const partitionKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/** Waits `ms`, or less when `signal` aborts (a stopping consumer need not wait out a backoff). */
function backoff(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
