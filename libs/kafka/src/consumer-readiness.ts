import type { ReadinessCheck } from '@cashflow/observability';
import type { KafkaEventsServer } from './kafka-events.server';
import type { ParallelConsumer } from './parallel-consumer';

/**
 * An app's Kafka consumer, once the transport exists (it is created with the app): ready only
 * once it has joined its group (a rolling deploy then waits for each replica to consume before
 * stopping the next), and stopped first on shutdown.
 */
export class ConsumerReadiness implements ReadinessCheck {
  readonly name = 'kafka-consumer';
  private server: KafkaEventsServer | undefined;

  attach(server: KafkaEventsServer): void {
    this.server = server;
  }

  check(): Promise<void> {
    const consumer = this.server?.unwrap<ParallelConsumer | undefined>();
    return consumer && consumer.groupJoins > 0
      ? Promise.resolve()
      : Promise.reject(new Error('the consumer has not joined its group yet'));
  }

  /** Stops fetching, lets go of messages not started, waits for the rest. */
  async stop(): Promise<void> {
    await this.server?.close();
  }
}
