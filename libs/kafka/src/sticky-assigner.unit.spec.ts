import fc from 'fast-check';
import { stickyAssignment, type MemberHoldings, type TopicPartition } from './sticky-assigner';

const partitionsOf = (topic: string, count: number): TopicPartition[] =>
  Array.from({ length: count }, (_, partition) => ({ topic, partition }));

const PARTITIONS = [...partitionsOf('requests', 12), ...partitionsOf('outcomes', 6)];

/** Partitions whose owner differs between two assignments (a partition new to both counts). */
function moved(
  before: Map<string, TopicPartition[]>,
  after: Map<string, TopicPartition[]>,
): number {
  const owner = (assignment: Map<string, TopicPartition[]>) =>
    new Map(
      [...assignment].flatMap(([member, list]) =>
        list.map((p) => [`${p.topic}/${p.partition}`, member] as const),
      ),
    );
  const was = owner(before);
  return [...owner(after)].filter(([p, member]) => was.get(p) !== member).length;
}

const holdings = (assignment: Map<string, TopicPartition[]>): MemberHoldings[] =>
  [...assignment].map(([memberId, owned]) => ({ memberId, owned }));

function sizes(assignment: Map<string, TopicPartition[]>): number[] {
  return [...assignment.values()].map((l) => l.length).sort((a, b) => a - b);
}

describe('stickyAssignment', () => {
  it('given a new group, when it assigns, then every partition has one member and shares differ by one at most', () => {
    const assignment = stickyAssignment(PARTITIONS, [
      { memberId: 'a', owned: [] },
      { memberId: 'b', owned: [] },
      { memberId: 'c', owned: [] },
      { memberId: 'd', owned: [] },
    ]);
    expect(sizes(assignment)).toEqual([4, 4, 5, 5]);
    const all = [...assignment.values()].flat().map((p) => `${p.topic}/${p.partition}`);
    expect(new Set(all).size).toBe(PARTITIONS.length);
  });

  it('given two members, when a third joins, then it takes its share and nothing else moves', () => {
    const two = stickyAssignment(PARTITIONS, [
      { memberId: 'a', owned: [] },
      { memberId: 'b', owned: [] },
    ]);
    const three = stickyAssignment(PARTITIONS, [...holdings(two), { memberId: 'c', owned: [] }]);
    expect(sizes(three)).toEqual([6, 6, 6]);
    // Only the newcomer's six partitions changed hands (round robin by member id moves 12).
    expect(moved(two, three)).toBe(6);
  });

  it('given three members, when one leaves, then only its partitions move', () => {
    const three = stickyAssignment(PARTITIONS, [
      { memberId: 'a', owned: [] },
      { memberId: 'b', owned: [] },
      { memberId: 'c', owned: [] },
    ]);
    const leftB = holdings(three).filter((m) => m.memberId !== 'b');
    const two = stickyAssignment(PARTITIONS, leftB);
    expect(sizes(two)).toEqual([9, 9]);
    expect(moved(three, two)).toBe(three.get('b')!.length);
    for (const member of ['a', 'c']) {
      expect(two.get(member)).toEqual(expect.arrayContaining(three.get(member)!));
    }
  });

  it('given a member that restarted under a new id with its old holdings, when it rejoins, then it keeps them', () => {
    const before = stickyAssignment(PARTITIONS, [
      { memberId: 'a', owned: [] },
      { memberId: 'b', owned: [] },
    ]);
    const after = stickyAssignment(PARTITIONS, [
      { memberId: 'a', owned: before.get('a')! },
      { memberId: 'z-restarted', owned: before.get('b')! },
    ]);
    expect(after.get('z-restarted')).toEqual(before.get('b'));
    expect(moved(before, after)).toBe(before.get('b')!.length);
  });

  it('given two members claiming one partition and a partition that no longer exists, when it assigns, then each partition that exists has one owner', () => {
    const assignment = stickyAssignment(partitionsOf('t', 4), [
      { memberId: 'a', owned: [{ topic: 't', partition: 0 }] },
      {
        memberId: 'b',
        owned: [
          { topic: 't', partition: 0 },
          { topic: 't', partition: 9 },
        ],
      },
    ]);
    expect(assignment.get('a')).toContainEqual({ topic: 't', partition: 0 });
    expect(assignment.get('b')).not.toContainEqual({ topic: 't', partition: 0 });
    expect([...assignment.values()].flat()).toHaveLength(4);
  });

  it('keeps every partition assigned once, shares within one, and moves no more than a balance needs (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 }),
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 }),
        (count, first, second) => {
          const partitions = partitionsOf('t', count);
          const before = stickyAssignment(
            partitions,
            first.map((memberId) => ({ memberId, owned: [] })),
          );
          const stay = new Set(second);
          const after = stickyAssignment(
            partitions,
            second.map((memberId) => ({ memberId, owned: before.get(memberId) ?? [] })),
          );
          const all = [...after.values()].flat().map((p) => p.partition);
          expect(new Set(all).size).toBe(count);
          expect(all).toHaveLength(count);
          const s = sizes(after);
          expect(s.at(-1)! - s[0]!).toBeLessThanOrEqual(1);
          // A member that stays keeps at least min(what it had, its new share's floor).
          const floor = Math.floor(count / second.length);
          for (const [member, had] of before) {
            if (!stay.has(member)) continue;
            const kept = after
              .get(member)!
              .filter((p) => had.some((h) => h.partition === p.partition));
            expect(kept.length).toBeGreaterThanOrEqual(Math.min(had.length, floor));
          }
        },
      ),
    );
  });
});
