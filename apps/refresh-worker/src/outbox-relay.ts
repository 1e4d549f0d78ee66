/**
 * The timer of an outbox relay: runs `round` every `everyMs`, one round at a time, so while
 * Kafka is away a round waits and no other starts (nor piles up copies of the same rows).
 */
export class OutboxRelay {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  start(everyMs: number, round: () => Promise<void>): void {
    this.timer = setInterval(() => {
      this.running ??= round().finally(() => {
        this.running = undefined;
      });
    }, everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
