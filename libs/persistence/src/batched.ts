export interface BatchedOptions<I> {
  /** Inputs per batch at most (500). */
  readonly maxBatch?: number;
  /** Batches written at once (4). */
  readonly concurrency?: number;
  /** An input's weight; a batch holds inputs up to `maxWeight` together, and at least one. */
  readonly weigh?: (input: I) => number;
  readonly maxWeight?: number;
  /**
   * Start writing on the event loop's next turn rather than at once, so calls made in one turn
   * (the handlers of one Kafka fetch) go together even into the first batch.
   */
  readonly gatherTurn?: boolean;
}

/**
 * Group commit for one store operation: calls that arrive while batches are being written go
 * together in the next one, so a busy worker makes one round trip for many calls and an idle one
 * adds no delay. Up to `concurrency` batches are written at once (the pool has connections to
 * spare, and one slow batch should not hold up the next). `run` answers each input of a batch,
 * in order; when it fails, every call of the batch fails with its error.
 */
export class Batched<I, O> {
  private queue: { input: I; resolve: (output: O) => void; reject: (error: unknown) => void }[] =
    [];
  private running = 0;
  private gathering = false;

  constructor(
    private readonly run: (inputs: readonly I[]) => Promise<readonly O[]>,
    private readonly options: BatchedOptions<I> = {},
  ) {}

  call(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (!this.options.gatherTurn) return this.startDrains();
      if (this.gathering) return;
      this.gathering = true;
      setImmediate(() => {
        this.gathering = false;
        this.startDrains();
      });
    });
  }

  private startDrains(): void {
    while (this.running < (this.options.concurrency ?? 4) && this.queue.length > 0) {
      void this.drain();
    }
  }

  /** The next batch: up to `maxBatch` inputs, and up to `maxWeight` of them after the first. */
  private take() {
    const { maxBatch = 500, weigh, maxWeight = Infinity } = this.options;
    let count = 0;
    let weight = 0;
    while (count < this.queue.length && count < maxBatch) {
      weight += weigh ? weigh(this.queue[count]!.input) : 0;
      if (count > 0 && weight > maxWeight) break;
      count += 1;
    }
    return this.queue.splice(0, count);
  }

  private async drain(): Promise<void> {
    this.running += 1;
    try {
      while (this.queue.length > 0) {
        const batch = this.take();
        try {
          const outputs = await this.run(batch.map((b) => b.input));
          batch.forEach((b, i) => b.resolve(outputs[i]!));
        } catch (error) {
          batch.forEach((b) => b.reject(error));
        }
      }
    } finally {
      this.running -= 1;
    }
  }
}
