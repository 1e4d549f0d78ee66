import { fetchEndOffsets, partitionKey } from './end-offsets';

describe('fetchEndOffsets', () => {
  it('files every partition of every topic by topic:partition, offsets as bigints', async () => {
    const asked: string[] = [];
    const admin = {
      fetchTopicOffsets: (topic: string) => {
        asked.push(topic);
        return Promise.resolve(
          topic === 'a'
            ? [
                { partition: 0, offset: '7', high: '7', low: '0' },
                { partition: 1, offset: '0', high: '0', low: '0' },
              ]
            : [{ partition: 0, offset: '12', high: '12', low: '10' }],
        );
      },
    };
    const ends = await fetchEndOffsets(admin, ['a', 'b']);
    expect(asked).toEqual(['a', 'b']);
    expect([...ends.keys()]).toEqual(['a:0', 'a:1', 'b:0']);
    expect(ends.get(partitionKey('a', 0))).toEqual({ topic: 'a', partition: 0, low: 0n, high: 7n });
    expect(ends.get(partitionKey('b', 0))).toEqual({
      topic: 'b',
      partition: 0,
      low: 10n,
      high: 12n,
    });
  });

  it('returns nothing for no topics', async () => {
    const admin = { fetchTopicOffsets: () => Promise.reject(new Error('not asked')) };
    expect((await fetchEndOffsets(admin, [])).size).toBe(0);
  });
});
