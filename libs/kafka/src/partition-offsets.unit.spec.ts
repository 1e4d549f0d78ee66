import { PartitionOffsets } from './partition-offsets';

describe('PartitionOffsets', () => {
  it('commits only below the lowest unfinished message', () => {
    const p = new PartitionOffsets();
    expect(p.committable()).toBeUndefined();
    [10n, 11n, 12n, 13n].forEach((o) => p.start(o));
    expect(p.committable()).toBe(10n);
    p.finish(12n);
    p.finish(11n);
    expect(p.committable()).toBe(10n);
    p.finish(10n);
    expect(p.committable()).toBe(13n);
    p.finish(13n);
    expect(p.committable()).toBe(14n);
    expect(p.inFlight).toBe(0);
  });

  it('skips gaps in offsets (compaction, transaction markers)', () => {
    const p = new PartitionOffsets();
    p.start(5n);
    p.start(9n);
    p.finish(5n);
    expect(p.committable()).toBe(9n);
    p.finish(9n);
    expect(p.committable()).toBe(10n);
  });

  it('refuses a message seen before, finished or not', () => {
    const p = new PartitionOffsets();
    expect(p.start(1n)).toBe(true);
    expect(p.start(2n)).toBe(true);
    p.finish(1n);
    expect(p.start(1n)).toBe(false);
    expect(p.start(2n)).toBe(false);
    expect(p.start(3n)).toBe(true);
  });
});
