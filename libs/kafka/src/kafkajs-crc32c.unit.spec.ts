import { randomBytes } from 'node:crypto';
import { nativeCrc32c } from './kafkajs-crc32c';

/* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internals have no types; each test loads its own copy */

type Crc = (buffer: Buffer) => number;
type RecordBatch = (batch: {
  firstTimestamp: number;
  maxTimestamp: number;
  lastOffsetDelta: number;
  records: unknown[];
}) => Promise<{ buffer: Buffer }>;
type RecordOf = (record: {
  key: Buffer;
  value: Buffer;
  headers: { [name: string]: string };
  offsetDelta: number;
  timestampDelta: number;
}) => unknown;

/** A fresh module registry: kafkajs as installed, or with the patch applied first. */
function kafkajs(patch: boolean): {
  crc32C: Crc;
  RecordBatch: RecordBatch;
  Record: RecordOf;
  patched: boolean;
} {
  let loaded: ReturnType<typeof kafkajs> | undefined;
  jest.isolateModules(() => {
    const patched = patch
      ? (require('./kafkajs-crc32c') as typeof import('./kafkajs-crc32c')).patchKafkajsCrc32c()
      : false;
    loaded = {
      crc32C: require('kafkajs/src/protocol/recordBatch/crc32C') as Crc,
      RecordBatch: (require('kafkajs/src/protocol/recordBatch/v0') as { RecordBatch: RecordBatch })
        .RecordBatch,
      Record: require('kafkajs/src/protocol/recordBatch/record/v0') as RecordOf,
      patched,
    };
  });
  return loaded!;
}

describe("kafkajs's CRC-32C, native", () => {
  it('is the native one once patched, on this platform', () => {
    expect(nativeCrc32c()).toBeDefined();
    const patched = kafkajs(true);
    expect(patched.patched).toBe(true);
    expect(patched.crc32C).not.toBe(kafkajs(false).crc32C);
  });

  it("checksums every length as kafkajs's own does (the slicing edges and a produce request's size)", () => {
    const stock = kafkajs(false).crc32C;
    const native = kafkajs(true).crc32C;
    for (const length of [0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4096, 1_048_577]) {
      const buffer = randomBytes(length);
      expect({ length, crc: native(buffer) }).toEqual({ length, crc: stock(buffer) });
      // An offset view (a slice of a larger buffer), as kafkajs's encoder hands it over.
      const slice = Buffer.concat([randomBytes(5), buffer]).subarray(5);
      expect(native(slice)).toBe(stock(buffer));
    }
    // Kafka's own test vector for CRC-32C ("123456789").
    expect(native(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it("encodes a record batch byte for byte as kafkajs's own does", async () => {
    const records = Array.from({ length: 50 }, (_, i) => ({
      key: Buffer.from(`{"item_id":"item-${i}","transaction_id":"t-${i}"}`),
      value: randomBytes(300 + i),
      headers: { 'ce-type': 'transaction', 'ce-id': `id-${i}` },
      offsetDelta: i,
      timestampDelta: i,
    }));
    const encode = ({ RecordBatch, Record }: ReturnType<typeof kafkajs>) =>
      RecordBatch({
        firstTimestamp: 1_790_000_000_000,
        maxTimestamp: 1_790_000_000_049,
        lastOffsetDelta: 49,
        records: records.map((r) => Record(r)),
      });
    const stock = await encode(kafkajs(false));
    const patched = await encode(kafkajs(true));
    expect(patched.buffer.equals(stock.buffer)).toBe(true);
  });

  it("leaves kafkajs as it is, and says so, once kafkajs's record batch encoder has loaded the original", () => {
    jest.isolateModules(() => {
      const stock = require('kafkajs/src/protocol/recordBatch/crc32C') as Crc;
      require('kafkajs/src/protocol/recordBatch/v0');
      const { patchKafkajsCrc32c } =
        require('./kafkajs-crc32c') as typeof import('./kafkajs-crc32c');

      expect(patchKafkajsCrc32c()).toBe(false);
      expect(require('kafkajs/src/protocol/recordBatch/crc32C')).toBe(stock);
    });
  });
});
