import fc from 'fast-check';
import { Partitioners, type PartitionerArgs } from 'kafkajs';
import { murmur2, murmur2Partitioner } from './murmur2-partitioner';

// kafkajs's own murmur2 (Java-compatible, 64-bit Long emulation): the reference.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const kafkajsMurmur2 = require('kafkajs/src/producer/partitioners/default/murmur2') as (
  key: Buffer,
) => number;

function args(key: Buffer | string | null, partitions: number): PartitionerArgs {
  return {
    topic: 't',
    partitionMetadata: Array.from({ length: partitions }, (_, partitionId) => ({
      partitionId,
      leader: 0,
      partitionErrorCode: 0,
      replicas: [0],
      isr: [0],
    })),
    message: { key, value: 'v' },
  };
}

describe('murmur2 and the partitioner', () => {
  it('hashes every key as kafkajs (and Java) does', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const key = Buffer.from(bytes);
        expect(murmur2(key)).toBe(kafkajsMurmur2(key));
      }),
      { numRuns: 5000 },
    );
  });

  it("matches Kafka's known hashes", () => {
    // From Kafka's UtilsTest.testMurmur2.
    const cases: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ];
    for (const [key, hash] of cases) expect(murmur2(Buffer.from(key))).toBe(hash);
  });

  it('puts every keyed record on the partition kafkajs would', () => {
    const reference = Partitioners.DefaultPartitioner();
    const ours = murmur2Partitioner();
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 1, max: 64 }), (key, partitions) => {
        expect(ours(args(key, partitions))).toBe(reference(args(key, partitions)));
        const bytes = Buffer.from(key);
        expect(ours(args(bytes, partitions))).toBe(reference(args(bytes, partitions)));
      }),
      { numRuns: 2000 },
    );
  });

  it('spreads records without a key over the partitions with a leader', () => {
    const ours = murmur2Partitioner();
    const input = args(null, 3);
    const withoutLeader = {
      ...input,
      partitionMetadata: input.partitionMetadata.map((p) =>
        p.partitionId === 1 ? { ...p, leader: -1 } : p,
      ),
    };
    const seen = new Set(Array.from({ length: 20 }, () => ours(withoutLeader)));
    expect([...seen].sort()).toEqual([0, 2]);
  });
});
