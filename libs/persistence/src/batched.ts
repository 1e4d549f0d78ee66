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

  constructor(
    private readonly run: (inputs: readonly I[]) => Promise<readonly O[]>,
    private readonly options: { readonly maxBatch?: number; readonly concurrency?: number } = {},
  ) {}

  call(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (this.running < (this.options.concurrency ?? 4)) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running += 1;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.options.maxBatch ?? 500);
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
