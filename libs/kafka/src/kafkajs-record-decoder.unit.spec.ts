import { createHash } from 'node:crypto';
import type { BatchContext, DecodedRecord, KafkajsDecoder } from './kafkajs-record-decoder';

/* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internals have no types */

interface Record {
  offsetDelta: number;
  timestampDelta: number | bigint;
  key: Buffer | null;
  value: Buffer | null;
  headers: { [name: string]: string | Buffer | (string | Buffer)[] };
}

interface DecodedBatch extends BatchContext {
  records: DecodedRecord[];
}

type DecoderClass = new (buffer: Buffer) => KafkajsDecoder;
type RecordDecoder = (decoder: KafkajsDecoder, context?: BatchContext) => DecodedRecord;
type BatchDecoder = (decoder: KafkajsDecoder) => Promise<DecodedBatch>;

const CLOUDEVENTS_HEADERS = {
  'content-type': 'application/json',
  ce_specversion: '1.0',
  ce_id: '6f1c2d0e-5b7a-4c1e-9a43-000000000001',
  ce_source: 'cashflow-refresh/refresh-worker',
  ce_type: 'RefreshAccepted',
  ce_subject: 'item-42',
  ce_time: '2026-12-05T01:00:00.000Z',
  ce_traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`,
  ce_correlationid: 'req-1',
  ce_dataschema: 'cashflow-refresh/refresh-accepted/1',
};

/** Records of every shape the apps read, and the edges of the number paths. */
function records(): Record[] {
  return [
    {
      offsetDelta: 0,
      timestampDelta: 0,
      key: Buffer.from('item-1'),
      value: Buffer.from('{}'),
      headers: CLOUDEVENTS_HEADERS,
    },
    { offsetDelta: 1, timestampDelta: 17, key: null, value: Buffer.from('{"a":1}'), headers: {} },
    {
      offsetDelta: 2,
      timestampDelta: -250,
      key: Buffer.from('k'),
      value: null,
      headers: { traceparent: 'x' },
    },
    {
      offsetDelta: 3,
      timestampDelta: 2 ** 40,
      key: Buffer.from(''),
      value: Buffer.alloc(70_000, 97),
      headers: { repeated: ['a', 'b', 'c'], ['ключ ✓']: 'ü' },
    },
    {
      offsetDelta: 4,
      timestampDelta: 2n ** 49n + 3n,
      key: Buffer.from('eight-byte varlong'),
      value: Buffer.from('v'),
      headers: { two: ['x', Buffer.from([0, 255])] },
    },
    {
      offsetDelta: 5,
      timestampDelta: -(2n ** 52n),
      key: Buffer.from('negative, long'),
      value: Buffer.from('v'),
      headers: {},
    },
    {
      offsetDelta: 6,
      timestampDelta: 2n ** 55n + 1n,
      key: Buffer.from('inexact as a number'),
      value: Buffer.from('v'),
      headers: {},
    },
    {
      offsetDelta: 300,
      timestampDelta: 2 ** 48 - 1,
      key: Buffer.from('seven-byte varlong'),
      value: Buffer.from('v'),
      headers: {},
    },
  ];
}

/** A record batch as the broker sends it, written by kafkajs's own encoder. */
async function batchBytes(firstOffset: string, firstTimestamp: number): Promise<Buffer> {
  const Long = require('kafkajs/src/utils/long') as {
    fromValue(value: string | number | bigint): unknown;
  };
  const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as {
    RecordBatch: (options: object) => Promise<{ buffer: Buffer }>;
  };
  const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (
    record: object,
  ) => unknown;
  const all = records();
  const encoder = await RecordBatch({
    firstOffset: Long.fromValue(firstOffset),
    firstTimestamp,
    maxTimestamp: firstTimestamp + 1000,
    lastOffsetDelta: all[all.length - 1]!.offsetDelta,
    records: all.map((record) =>
      Record({ ...record, timestampDelta: Long.fromValue(record.timestampDelta) }),
    ),
  });
  return encoder.buffer;
}

/** A fresh module registry: kafkajs as installed, or with the patch applied first. */
function kafkajs(patch: boolean): {
  Decoder: DecoderClass;
  decodeBatch: BatchDecoder;
  decodeRecord: RecordDecoder;
} {
  let loaded: ReturnType<typeof kafkajs> | undefined;
  jest.isolateModules(() => {
    if (patch)
      (
        require('./kafkajs-record-decoder') as typeof import('./kafkajs-record-decoder')
      ).patchKafkajsRecordDecoder();
    loaded = {
      Decoder: require('kafkajs/src/protocol/decoder') as DecoderClass,
      decodeBatch: require('kafkajs/src/protocol/recordBatch/v0/decoder') as BatchDecoder,
      decodeRecord: require('kafkajs/src/protocol/recordBatch/record/v0/decoder') as RecordDecoder,
    };
  });
  return loaded!;
}

describe("kafkajs's record decoder, patched", () => {
  it.each([
    ['small offsets and timestamps', '0', 1_790_000_000_000],
    ['a large offset', '987654321012', 1_790_000_000_000],
    ['offsets past 2^53, where numbers are no longer exact', '9007199254740990', 1_790_000_000_000],
    ['timestamps near 2^53', '7', 2 ** 53 - 10],
  ])(
    'decodes a record batch into the records kafkajs decodes: %s',
    async (_name, firstOffset, firstTimestamp) => {
      const bytes = await batchBytes(firstOffset, firstTimestamp);
      const stock = kafkajs(false);
      const patched = kafkajs(true);

      expect(patched.decodeRecord).not.toBe(stock.decodeRecord);
      const expected = await stock.decodeBatch(new stock.Decoder(bytes));
      const actual = await patched.decodeBatch(new patched.Decoder(bytes));

      expect(actual.records).toHaveLength(records().length);
      expect(actual).toEqual(expected);
      expect(actual.records.map((record) => Object.keys(record.headers))).toEqual(
        expected.records.map((record) => Object.keys(record.headers)),
      );
    },
  );

  it("takes the batch's maximum timestamp when the broker set the time (LOG_APPEND_TIME), as kafkajs does", async () => {
    const bytes = await batchBytes('5', 1_790_000_000_000);
    const stock = kafkajs(false);
    const patched = kafkajs(true);
    const context = (await stock.decodeBatch(new stock.Decoder(bytes))).records[0]!.batchContext;
    const logAppend: BatchContext = { ...context, timestampType: 1, maxTimestamp: '1790000000999' };
    // The first record, on its own: skip the batch header and the record's length.
    const first = (Decoder: DecoderClass): KafkajsDecoder => {
      const decoder = new Decoder(bytes.subarray(61));
      decoder.readVarInt();
      return decoder;
    };

    const expected = stock.decodeRecord(first(stock.Decoder), logAppend);
    const actual = patched.decodeRecord(first(patched.Decoder), logAppend);

    expect(actual.timestamp).toBe('1790000000999');
    expect(actual).toEqual(expected);
  });

  it('keeps a header named like a member of Object.prototype as a header', () => {
    const Long = require('kafkajs/src/utils/long') as { fromValue(value: number): unknown };
    const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (record: object) => {
      buffer: Buffer;
    };
    const bytes = Record({
      timestampDelta: Long.fromValue(0),
      key: null,
      value: null,
      headers: { toString: 'a', ['__proto__']: 'b' },
    }).buffer;
    const patched = kafkajs(true);
    const decoder = new patched.Decoder(bytes);
    decoder.readVarInt();

    const record = patched.decodeRecord(decoder, { firstOffset: '0', firstTimestamp: '0' });

    expect(Object.keys(record.headers)).toEqual(['toString', '__proto__']);
    expect(String(record.headers.toString)).toBe('a');
    expect(Object.getPrototypeOf(record.headers)).toBe(Object.prototype);
  });

  it("leaves kafkajs as it is, and says so, once kafkajs's record batch decoder has loaded the original", () => {
    jest.isolateModules(() => {
      const stock = require('kafkajs/src/protocol/recordBatch/record/v0/decoder') as RecordDecoder;
      require('kafkajs/src/protocol/recordBatch/v0/decoder');
      const { patchKafkajsRecordDecoder } =
        require('./kafkajs-record-decoder') as typeof import('./kafkajs-record-decoder');

      expect(patchKafkajsRecordDecoder()).toBe(false);
      expect(require('kafkajs/src/protocol/recordBatch/record/v0/decoder')).toBe(stock);
    });
  });

  it('replaces a kafkajs decoder this patch was written against (a kafkajs release changing it fails here)', () => {
    const source = String(kafkajs(false).decodeRecord);
    expect(createHash('sha256').update(source).digest('hex')).toBe(
      'fbe3525528b41bced97fb4ab8a5669fcdc18b56179a1e565690feae7b5f80ac7',
    );
  });
});
