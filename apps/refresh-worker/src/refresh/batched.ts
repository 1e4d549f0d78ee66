/**
 * Group commit for one store operation: calls that arrive while a batch is being written go
 * together in the next one, so a busy worker makes one round trip for many calls and an idle
 * one adds no delay. `run` answers each input of a batch, in order; when it fails, every call
 * of the batch fails with its error.
 */
export class Batched<I, O> {
  private queue: { input: I; resolve: (output: O) => void; reject: (error: unknown) => void }[] =
    [];
  private running = false;

  constructor(
    private readonly run: (inputs: readonly I[]) => Promise<readonly O[]>,
    private readonly maxBatch = 500,
  ) {}

  call(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      try {
        const outputs = await this.run(batch.map((b) => b.input));
        batch.forEach((b, i) => b.resolve(outputs[i]!));
      } catch (error) {
        batch.forEach((b) => b.reject(error));
      }
    }
    this.running = false;
  }
}
