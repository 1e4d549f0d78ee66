import type { Consumer } from 'kafkajs';
import type { Logger } from 'pino';

export interface RestartOptions {
  /** Connects nothing; calls `consumer.run(...)` with the consumer's settings again. */
  readonly run: () => Promise<void>;
  /** True once the owner stops the consumer on purpose: no restart then. */
  readonly stopping: () => boolean;
  readonly logger: Logger;
  /** The first wait before a restart; doubled after each restart that fails, up to `maxDelayMs`. */
  readonly delayMs?: number;
  readonly maxDelayMs?: number;
}

/**
 * Starts a consumer again when kafkajs gives it up. kafkajs restarts a crashed consumer only
 * when the error is retriable; a broker outage can end in one that is not (the group
 * coordinator not found while the broker comes back), and the consumer then stays stopped for
 * good while the process, its health endpoint and its other work live on. Here every such crash
 * (unless the owner is stopping) is followed by `connect` and `run` again, with backoff, until
 * one succeeds. Messages handed out before the crash and not yet committed are delivered again;
 * the consumers built on this already absorb redeliveries.
 *
 * Returns how many restarts were made so far (for metrics and tests).
 */
/**
 * Consumer retry settings that leave every restart to restartWhenGivenUp: kafkajs's own restart
 * (for errors it deems retriable) runs `start` from a timer, and when that start fails too (the
 * broker it needs still down) the rejection goes nowhere and the consumer stays stopped for good.
 * Seen on three brokers: the report fetcher's group coordinator was killed, kafkajs restarted the
 * consumer while the broker was still down, and the fetcher never consumed again.
 */
export const RESTARTS_LEFT_TO_US = {
  initialRetryTime: 300,
  maxRetryTime: 5000,
  retries: 6,
  restartOnFailure: () => Promise.resolve(false),
};

export function restartWhenGivenUp(consumer: Consumer, options: RestartOptions): () => number {
  const first = options.delayMs ?? 1000;
  const max = options.maxDelayMs ?? 30_000;
  let restarts = 0;
  let restarting = false;
  /**
   * A crash while a restart runs: kafkajs's runner catches a failed join itself and crashes the
   * consumer from inside `run()`, which then resolves as if it had started.
   */
  let crashedWhileStarting = false;

  const restart = async (delay: number): Promise<void> => {
    // Unreferenced: a restart still waiting does not keep a stopping process alive.
    await new Promise((resolve) => setTimeout(resolve, delay).unref());
    if (options.stopping()) {
      restarting = false;
      return;
    }
    crashedWhileStarting = false;
    try {
      await consumer.connect();
      await options.run();
      if (crashedWhileStarting) throw new Error('the consumer crashed again while starting');
      restarts += 1;
      restarting = false;
      options.logger.warn({ restarts }, 'consumer started again');
    } catch (error) {
      const next = Math.min(delay * 2, max);
      options.logger.error(
        { err: error, retry_in_ms: next },
        'starting the consumer again failed; trying later',
      );
      void restart(next);
    }
  };

  consumer.on(consumer.events.CRASH, (event) => {
    const { error, restart: restartedByKafkajs } = event.payload;
    if (restartedByKafkajs || options.stopping()) return;
    if (restarting) {
      crashedWhileStarting = true;
      return;
    }
    restarting = true;
    options.logger.error(
      { err: error, retry_in_ms: first },
      'kafkajs stopped the consumer after an error it does not retry; starting it again',
    );
    void restart(first);
  });

  return () => restarts;
}
