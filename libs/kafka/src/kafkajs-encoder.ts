/**
 * kafkajs 2.2.4 (unmaintained since 2023) encodes every record, and every header of a record,
 * with an Encoder of its own whose constructor allocates a zero-filled 512-byte Buffer outside
 * Node's buffer pool, and grows by allocating again the same way. For the report fetcher's
 * changelog (a record and three headers per transaction) that allocation was the largest single
 * cost of producing; the worker's outcomes (ten CloudEvents headers each) pay it eleven times a
 * record. This changes how the Encoder gets its memory, not what it writes:
 *
 * - `ensureAvailable` grows the buffer to the next power of two from `Buffer.allocUnsafe`, which
 *   hands out slices of Node's shared pool for sizes under 4 KiB. The memory is not zeroed: the
 *   Encoder only ever writes at its offset, after making room, and only `buffer` (a slice up to
 *   the offset) leaves it, so bytes past the offset are never read.
 * - The constructor sizes its first buffer with `Encoder.nextPowerOfTwo(initialSize)`; that static
 *   method has no other caller once `ensureAvailable` is replaced, so it answers 0 and the first
 *   write allocates what is needed.
 *
 * `kafkajs-encoder.unit.spec.ts` checks that the bytes written are kafkajs's own, byte for byte,
 * and fails when a kafkajs release changes the Encoder, so the patch is looked at again then.
 * `npm run bench:fetcher` shows the gain.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internals have no types */
const Encoder = require('kafkajs/src/protocol/encoder') as KafkajsEncoderClass;
/* eslint-enable @typescript-eslint/no-require-imports */

interface KafkajsEncoder {
  buf: Buffer;
  offset: number;
}

interface KafkajsEncoderClass {
  new (initialSize?: number): KafkajsEncoder;
  nextPowerOfTwo(value: number): number;
  prototype: KafkajsEncoder & { ensureAvailable(this: KafkajsEncoder, length: number): void };
}

/** kafkajs's own Encoder class source, kept to tell whether a release changed it (see the test). */
export const KAFKAJS_ENCODER_SOURCE = String(Encoder);

/** The smallest buffer the patched Encoder allocates. */
const MIN_CAPACITY = 64;

let patched = false;

export function patchKafkajsEncoder(): void {
  if (patched) return;
  patched = true;
  Encoder.nextPowerOfTwo = () => 0;
  Encoder.prototype.ensureAvailable = function (this: KafkajsEncoder, length: number) {
    const needed = this.offset + length;
    if (needed <= this.buf.length) return;
    const capacity = Math.max(MIN_CAPACITY, 2 ** Math.ceil(Math.log2(needed)));
    const grown = Buffer.allocUnsafe(capacity);
    this.buf.copy(grown, 0, 0, this.offset);
    this.buf = grown;
  };
}
