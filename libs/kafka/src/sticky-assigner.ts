import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';
import { z } from 'zod';

/** One partition of one topic. */
export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

/** A member of the group and the partitions it held before this rebalance. */
export interface MemberHoldings {
  readonly memberId: string;
  readonly owned: readonly TopicPartition[];
}

const key = (p: TopicPartition) => `${p.topic}\u0000${p.partition}`;
const byTopicPartition = (a: TopicPartition, b: TopicPartition) =>
  a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1;

/**
 * Balanced and sticky: every member gets ⌊n/m⌋ or ⌈n/m⌉ of the n partitions, and keeps as many
 * of those it held as that balance allows, so a rebalance moves only the partitions it must (a
 * member joining takes its share from the others; a member leaving hands over only its own).
 * A partition claimed by two members (one of them was presumed dead) stays with the first by
 * member id. Pure: the same members and partitions give the same assignment.
 */
export function stickyAssignment(
  partitions: readonly TopicPartition[],
  members: readonly MemberHoldings[],
): Map<string, TopicPartition[]> {
  const sorted = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : 1));
  const result = new Map<string, TopicPartition[]>(sorted.map((m) => [m.memberId, []]));
  if (sorted.length === 0) return result;
  const base = Math.floor(partitions.length / sorted.length);
  let extra = partitions.length % sorted.length;
  const free = new Map(partitions.map((p) => [key(p), p]));

  // Each member keeps up to its base share of what it held and what still exists.
  const leftovers = new Map<string, TopicPartition[]>();
  for (const member of sorted) {
    const kept = result.get(member.memberId)!;
    const held = [...member.owned].sort(byTopicPartition).filter((p) => free.has(key(p)));
    for (const p of held) {
      if (kept.length >= base) break;
      kept.push(free.get(key(p))!);
      free.delete(key(p));
    }
    leftovers.set(
      member.memberId,
      held.filter((p) => free.has(key(p))),
    );
  }
  // Members that held more keep one more, while the uneven remainder allows.
  const targets = new Map(sorted.map((m) => [m.memberId, base]));
  for (const member of sorted) {
    if (extra === 0) break;
    const more = leftovers.get(member.memberId)!.find((p) => free.has(key(p)));
    if (!more) continue;
    result.get(member.memberId)!.push(free.get(key(more))!);
    free.delete(key(more));
    targets.set(member.memberId, base + 1);
    extra -= 1;
  }
  for (const member of sorted) {
    if (extra === 0) break;
    if (targets.get(member.memberId) === base) {
      targets.set(member.memberId, base + 1);
      extra -= 1;
    }
  }
  // What nobody keeps goes to the members below their share, in partition order.
  const unassigned = [...free.values()].sort(byTopicPartition);
  for (const member of sorted) {
    const list = result.get(member.memberId)!;
    while (list.length < targets.get(member.memberId)! && unassigned.length > 0) {
      list.push(unassigned.shift()!);
    }
    list.sort(byTopicPartition);
  }
  return result;
}

/** What this consumer holds now, as its GROUP_JOIN events said; sent with its next join. */
export class Holdings {
  private current: TopicPartition[] = [];

  /** kafkajs's GROUP_JOIN payload: `{ topic: [partition, ...] }`. */
  update(memberAssignment: Readonly<Record<string, readonly number[]>>): void {
    this.current = Object.entries(memberAssignment).flatMap(([topic, list]) =>
      list.map((partition) => ({ topic, partition })),
    );
  }

  get owned(): readonly TopicPartition[] {
    return this.current;
  }
}

/**
 * A kafkajs partition assigner for stickyAssignment: each member sends what it holds in its
 * join's user data, and the group's leader keeps it where the balance allows. kafkajs has no
 * cooperative rebalancing, so every partition is still revoked and reassigned at each rebalance;
 * what stickiness saves is the moves: a partition that stays needs no hand-over (its in-flight
 * work, caches and per-Item order stay in one process). Listed before kafkajs's round robin, so
 * a group with members that only know round robin still agrees on one.
 */
export function stickyAssigner(holdings: Holdings): PartitionAssigner {
  return ({ cluster }) => ({
    name: 'CashflowStickyAssigner',
    version: 0,
    assign({ members, topics }) {
      const partitions = topics.flatMap((topic) =>
        cluster.findTopicPartitionMetadata(topic).map((m) => ({ topic, partition: m.partitionId })),
      );
      const holdingsOf = members.map(({ memberId, memberMetadata }) => ({
        memberId,
        owned: decodeOwned(AssignerProtocol.MemberMetadata.decode(memberMetadata)?.userData),
      }));
      const assignment = stickyAssignment(partitions, holdingsOf);
      return Promise.resolve(
        [...assignment].map(([memberId, list]) => {
          const byTopic: Record<string, number[]> = {};
          for (const p of list) (byTopic[p.topic] ??= []).push(p.partition);
          return {
            memberId,
            memberAssignment: AssignerProtocol.MemberAssignment.encode({
              version: 0,
              assignment: byTopic,
              userData: Buffer.alloc(0),
            }),
          };
        }),
      );
    },
    protocol({ topics }) {
      return {
        name: 'CashflowStickyAssigner',
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: 0,
          topics,
          userData: Buffer.from(JSON.stringify(holdings.owned)),
        }),
      };
    },
  });
}

const Owned = z.array(z.object({ topic: z.string(), partition: z.number().int().min(0) }));

/** A member's user data as sent by `protocol`; anything else (another client) holds nothing. */
function decodeOwned(userData: Buffer | undefined): TopicPartition[] {
  if (!userData || userData.length === 0) return [];
  try {
    const parsed = Owned.safeParse(JSON.parse(userData.toString('utf8')));
    return parsed.success ? parsed.data : [];
  } catch {
    return [];
  }
}
