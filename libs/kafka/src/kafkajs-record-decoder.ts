/**
 * kafkajs 2.2.4 decodes each record of a fetch in `recordBatch/record/v0/decoder.js`, and pays for
 * it three ways a consumer reading thousands of records a second notices (the projector spent
 * about a seventh of its allocations there):
 *
 * - the record's offset and timestamp are computed by parsing the batch's first offset and first
 *   timestamp (decimal strings) into BigInt-backed `Long`s, adding, and printing back, once per
 *   record each;
 * - the timestamp delta is read as a varlong with a BigInt addition and shift per byte;
 * - the headers object is rebuilt by spreading it once per header (a record with ten CloudEvents
 *   headers allocates ten objects of growing size), after an array of `{ key, value }` pairs.
 *
 * This decoder reads the same bytes into the same record: numbers stay numbers while they are
 * exact (below 2^53, which offsets and millisecond timestamps are), with kafkajs's own `Long`
 * arithmetic beyond that, and the headers go into one object as they are read. Keys and values
 * are the same `Buffer` slices of the fetch; a header repeated in a record becomes an array, as in
 * kafkajs. One difference, on purpose: a header named like a member of `Object.prototype`
 * (`toString`, `__proto__`) becomes an own property holding its value, where kafkajs's spread
 * mistakes the inherited member for an earlier value of the header.
 *
 * It is installed by replacing the module in Node's module cache before kafkajs's record batch
 * decoder (which captures it when it loads, on the first fetch) is loaded; `kafka-client.ts` does it
 * when it loads, before any consumer exists.
 * `kafkajs-record-decoder.unit.spec.ts` compares the records with kafkajs's own for every shape the
 * apps read and fails when a kafkajs release changes the decoder, so the patch is looked at again
 * then. `npm run bench:projector` shows the gain.
 */
import { replaceKafkajsModule } from './kafkajs-module';

/* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internals have no types */
const RECORD_DECODER = require.resolve('kafkajs/src/protocol/recordBatch/record/v0/decoder');
const RECORD_BATCH_DECODER = require.resolve('kafkajs/src/protocol/recordBatch/v0/decoder');
const Long = require('kafkajs/src/utils/long') as LongClass;
const LOG_APPEND_TIME = (
  require('kafkajs/src/protocol/timestampTypes') as { LOG_APPEND_TIME: number }
).LOG_APPEND_TIME;
/* eslint-enable @typescript-eslint/no-require-imports */

interface LongValue {
  add(other: LongValue | number): LongValue;
  toString(): string;
}
interface LongClass {
  fromValue(value: string | number | LongValue): LongValue;
}

/** The part of kafkajs's Decoder this decoder uses. */
export interface KafkajsDecoder {
  buffer: Buffer;
  offset: number;
  readInt8(): number;
  readVarInt(): number;
  readVarLong(): LongValue;
  readVarIntBytes(): Buffer | null;
}

export interface BatchContext {
  firstOffset?: string;
  firstTimestamp?: string;
  magicByte?: number;
  isControlBatch?: boolean;
  timestampType?: number;
  maxTimestamp?: string;
}

export type HeaderValue = Buffer | null | (Buffer | null)[];

export interface DecodedRecord {
  magicByte: number | undefined;
  attributes: number;
  timestamp: string;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, HeaderValue>;
  isControlRecord: boolean;
  batchContext: BatchContext;
}

/** Varlongs of up to 7 bytes (49 bits) are exact as numbers. */
const EXACT_VARLONG_BYTES = 7;

/** Reads a zigzag varlong as a number, or returns undefined (offset unmoved) when it is longer. */
function readSmallVarLong(decoder: KafkajsDecoder): number | undefined {
  const buffer = decoder.buffer;
  let at = decoder.offset;
  let result = 0;
  let scale = 1;
  for (let i = 0; i < EXACT_VARLONG_BYTES; i++) {
    const byte = buffer[at++] ?? 0;
    result += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      decoder.offset = at;
      return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
    }
    scale *= 128;
  }
  return undefined;
}

/** `base + delta` in decimal, exact: numbers while the sum is a safe integer, Long beyond. */
function addToDecimal(base: string, delta: number | LongValue): string {
  if (typeof delta === 'number') {
    const sum = Number(base) + delta;
    if (Number.isSafeInteger(sum) && Number.isSafeInteger(Number(base))) return String(sum);
  }
  return Long.fromValue(base).add(delta).toString();
}

function readHeaderKey(decoder: KafkajsDecoder): string {
  const length = decoder.readVarInt();
  const start = decoder.offset;
  decoder.offset += length;
  return decoder.buffer.toString('utf8', start, start + length);
}

function readHeaders(decoder: KafkajsDecoder): Record<string, HeaderValue> {
  const headers: Record<string, HeaderValue> = {};
  const count = decoder.readVarInt();
  for (let i = 0; i < count; i++) {
    const key = readHeaderKey(decoder);
    const value = decoder.readVarIntBytes();
    if (!Object.hasOwn(headers, key)) {
      if (key === '__proto__') {
        Object.defineProperty(headers, key, {
          value,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      } else {
        headers[key] = value;
      }
      continue;
    }
    const earlier = headers[key] as Buffer | null | (Buffer | null)[];
    headers[key] = Array.isArray(earlier) ? [...earlier, value] : [earlier, value];
  }
  return headers;
}

export function decodeRecord(
  decoder: KafkajsDecoder,
  batchContext: BatchContext = {},
): DecodedRecord {
  const {
    firstOffset,
    firstTimestamp,
    magicByte,
    isControlBatch = false,
    timestampType,
    maxTimestamp,
  } = batchContext;
  const attributes = decoder.readInt8();
  const timestampDelta = readSmallVarLong(decoder) ?? decoder.readVarLong();
  const timestamp =
    timestampType === LOG_APPEND_TIME && maxTimestamp
      ? maxTimestamp
      : addToDecimal(firstTimestamp as string, timestampDelta);
  const offset = addToDecimal(firstOffset as string, decoder.readVarInt());
  const key = decoder.readVarIntBytes();
  const value = decoder.readVarIntBytes();
  const headers = readHeaders(decoder);
  return {
    magicByte,
    attributes,
    timestamp,
    offset,
    key,
    value,
    headers,
    isControlRecord: isControlBatch,
    batchContext,
  };
}

let patched = false;

/**
 * Installs `decodeRecord` for the kafkajs of this process. Answers whether it is in use: not when
 * kafkajs's record batch decoder had already loaded (and captured the original), in which case
 * kafkajs keeps decoding as it does (the same records, at its own cost).
 */
export function patchKafkajsRecordDecoder(): boolean {
  if (patched) return true;
  patched = replaceKafkajsModule(RECORD_DECODER, RECORD_BATCH_DECODER, decodeRecord);
  return patched;
}
