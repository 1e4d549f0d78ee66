/**
 * Offsets of one partition whose messages finish out of order. The committable offset is the
 * lowest message still unfinished (everything below it is done), or one past the highest seen
 * when nothing is unfinished: a crash then redelivers only unfinished work, never skips any.
 */
export class PartitionOffsets {
  private readonly unfinished = new Set<bigint>();
  private highestSeen: bigint | undefined;

  /** Marks `offset` started; false when it was already seen (redelivered after a rebalance). */
  start(offset: bigint): boolean {
    if (this.highestSeen !== undefined && offset <= this.highestSeen) return false;
    this.highestSeen = offset;
    this.unfinished.add(offset);
    return true;
  }

  finish(offset: bigint): void {
    this.unfinished.delete(offset);
  }

  get inFlight(): number {
    return this.unfinished.size;
  }

  /** The offset to commit (Kafka's "next to read"), or undefined before any message. */
  committable(): bigint | undefined {
    if (this.highestSeen === undefined) return undefined;
    let lowest: bigint | undefined;
    for (const offset of this.unfinished)
      if (lowest === undefined || offset < lowest) lowest = offset;
    return lowest ?? this.highestSeen + 1n;
  }
}
