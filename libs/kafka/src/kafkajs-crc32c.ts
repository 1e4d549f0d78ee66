/**
 * kafkajs 2.2.4 checksums every record batch it produces with CRC-32C computed in JavaScript, a
 * table lookup per byte (`recordBatch/crc32C`): a tenth of the report fetcher's CPU samples while
 * it produces the transactions changelog (a profile of `npm run bench:fetcher`). `@node-rs/crc32`
 * computes the same checksum natively (the CPU's CRC32 instructions where it has them), so the
 * checksum stays a library's job rather than ours.
 *
 * It is installed by replacing kafkajs's module in Node's module cache before kafkajs's record
 * batch encoder (which captures it when it loads, on the first produce) is loaded;
 * `kafka-client.ts` does it when it loads, before any producer exists. Where the native package
 * cannot load (a platform it ships no binary for), or the encoder had already loaded, kafkajs
 * keeps its own: the same bytes either way. `kafkajs-crc32c.unit.spec.ts` compares the checksums
 * and whole record batches with kafkajs's own.
 */
import { replaceKafkajsModule } from './kafkajs-module';

/* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internals have no types */
const CRC32C = require.resolve('kafkajs/src/protocol/recordBatch/crc32C');
const RECORD_BATCH = require.resolve('kafkajs/src/protocol/recordBatch/v0');

let patched = false;

/**
 * The native CRC-32C, or undefined when `@node-rs/crc32` has no binary for this platform (required
 * here rather than imported: loading it throws then).
 */
export function nativeCrc32c(): ((buffer: Buffer) => number) | undefined {
  try {
    const native = require('@node-rs/crc32') as {
      crc32c: (input: Buffer, initialState?: number) => number;
    };
    return (buffer) => native.crc32c(buffer) >>> 0;
  } catch {
    return undefined;
  }
}
/* eslint-enable @typescript-eslint/no-require-imports */

/**
 * Gives the kafkajs of this process the native CRC-32C. Answers whether it is in use: not when the
 * native package cannot load, nor when kafkajs's record batch encoder had already loaded (and
 * captured its own).
 */
export function patchKafkajsCrc32c(): boolean {
  if (patched) return true;
  if (require.cache[RECORD_BATCH] !== undefined) return false;
  const native = nativeCrc32c();
  if (native === undefined) return false;
  patched = replaceKafkajsModule(CRC32C, RECORD_BATCH, native);
  return patched;
}
