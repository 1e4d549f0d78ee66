import { createHash } from 'node:crypto';
import { KAFKAJS_ENCODER_SOURCE, patchKafkajsEncoder } from './kafkajs-encoder';

type ProduceRequest = (options: {
  acks: number;
  timeout: number;
  compression?: number;
  topicData: {
    topic: string;
    partitions: {
      partition: number;
      firstSequence?: number;
      messages: {
        key: Buffer | string | null;
        value: Buffer | string | null;
        headers?: Record<string, string | Buffer | (string | Buffer)[]>;
        timestamp: number;
      }[];
    }[];
  }[];
}) => { encode(): Promise<{ buffer: Buffer }> };

/* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internals have no types */

/** kafkajs's Produce v3 request with the Encoder of this test file's module registry. */
const produceRequest = (): ProduceRequest =>
  require('kafkajs/src/protocol/requests/produce/v3/request') as ProduceRequest;

/** The same request with an Encoder no patch has touched: a module registry of its own. */
function stockProduceRequest(): ProduceRequest {
  let request: ProduceRequest | undefined;
  jest.isolateModules(() => {
    request = require('kafkajs/src/protocol/requests/produce/v3/request') as ProduceRequest;
  });
  return request!;
}

/** Records of every shape the apps send: small and large, keyless, tombstones, many headers. */
function topicData(): Parameters<ProduceRequest>[0]['topicData'] {
  const at = 1_790_000_000_000;
  const sizes = [0, 1, 63, 64, 65, 511, 512, 4095, 4096, 4097, 70_000];
  const messages = sizes.map((size, i) => ({
    key: i % 3 === 0 ? null : `item-${i}:txn-${'k'.repeat(i * 7)}`,
    value: i === 1 ? null : Buffer.alloc(size, 97 + (i % 26)),
    headers: {
      'content-type': 'application/json',
      ce_id: `6f1c2d0e-5b7a-4c1e-9a43-${String(i).padStart(12, '0')}`,
      ce_source: 'cashflow-refresh/test',
      ce_type: 'RefreshAccepted',
      repeated: ['a', Buffer.from('b'.repeat(600))],
      ...(i % 2 === 0 ? { ce_traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01` } : {}),
    },
    timestamp: at + i,
  }));
  return [
    {
      topic: 'cashflow.refresh-outcomes',
      partitions: [
        { partition: 0, firstSequence: 7, messages },
        { partition: 5, messages: messages.slice(0, 2) },
      ],
    },
    { topic: 'cashflow.transactions-changelog', partitions: [{ partition: 2, messages }] },
  ];
}

describe('kafkajs record encoding', () => {
  it('is the kafkajs Encoder the patch was written for (look at the patch again if this fails)', () => {
    expect(createHash('sha256').update(KAFKAJS_ENCODER_SOURCE).digest('hex')).toBe(
      '1f763192c693e21bac5fb94da7272ef3c46403771b848b46dd5c370eb8734bb1',
    );
  });

  it("takes a record's buffers from Node's pool instead of a zero-filled 512 bytes each", () => {
    patchKafkajsEncoder();
    const Encoder = require('kafkajs/src/protocol/encoder') as new () => {
      buf: Buffer;
      writeVarIntString(value: string): unknown;
    };
    const encoder = new Encoder();
    encoder.writeVarIntString('content-type');
    expect(encoder.buf.length).toBe(64);
    expect(encoder.buf.buffer.byteLength).toBe(Buffer.poolSize);
  });

  it("writes kafkajs's own bytes, byte for byte, never a byte it did not write", async () => {
    const options = { acks: -1, timeout: 30_000, topicData: topicData() };
    const stock = (await stockProduceRequest()(options).encode()).buffer;
    patchKafkajsEncoder();
    // Memory that is not zeroed shows itself: every buffer the patch takes comes filled with 0xaa,
    // so a byte kafkajs skipped would differ from its own (zero-filled) encoding.
    const allocUnsafe = jest
      .spyOn(Buffer, 'allocUnsafe')
      .mockImplementation((size: number) => Buffer.alloc(size, 0xaa));
    try {
      const patched = (await produceRequest()(options).encode()).buffer;
      expect(allocUnsafe).toHaveBeenCalled();
      expect(patched.length).toBe(stock.length);
      expect(patched.equals(stock)).toBe(true);
    } finally {
      allocUnsafe.mockRestore();
    }
  });

  it('is applied once, however often it is called', async () => {
    patchKafkajsEncoder();
    const Encoder = require('kafkajs/src/protocol/encoder') as {
      prototype: { ensureAvailable: unknown };
    };
    const first = Encoder.prototype.ensureAvailable;
    patchKafkajsEncoder();
    expect(Encoder.prototype.ensureAvailable).toBe(first);
    const options = { acks: 1, timeout: 1000, topicData: topicData().slice(1) };
    const stock = (await stockProduceRequest()(options).encode()).buffer;
    expect((await produceRequest()(options).encode()).buffer.equals(stock)).toBe(true);
  });
});
