import { DEFAULT_GET_BEHAVIOUR, GetBehaviour, decideGet } from './get-behaviour';
import { advanceItem, type SandboxItem } from './item';

describe('decideGet', () => {
  it('serves every page, and moves nothing, by default', () => {
    expect(decideGet(DEFAULT_GET_BEHAVIOUR, true)).toEqual({
      decision: { kind: 'serve', advanceAfter: false },
      next: DEFAULT_GET_BEHAVIOUR,
    });
  });

  it('answers the scripted error `count` times, then serves', () => {
    let behaviour = GetBehaviour.parse({ errors: { error_code: 'PLANNED_MAINTENANCE', count: 2 } });
    const kinds: string[] = [];
    for (let call = 0; call < 3; call++) {
      const { decision, next } = decideGet(behaviour, call === 0);
      kinds.push(decision.kind === 'fail' ? decision.code : decision.kind);
      behaviour = next;
    }
    expect(kinds).toEqual(['PLANNED_MAINTENANCE', 'PLANNED_MAINTENANCE', 'serve']);
    expect(behaviour.errors).toBeNull();
  });

  it('advances after the first page of the next n paging loops only', () => {
    let behaviour = GetBehaviour.parse({ mutate_during_pagination: 2 });
    const advances: boolean[] = [];
    // Three loops of two pages: cursor "" then a cursor.
    for (const firstPage of [true, false, true, false, true, false]) {
      const { decision, next } = decideGet(behaviour, firstPage);
      advances.push(decision.kind === 'serve' && decision.advanceAfter);
      behaviour = next;
    }
    expect(advances).toEqual([true, false, true, false, false, false]);
    expect(behaviour.mutate_during_pagination).toBe(0);
  });

  it('fails before it mutates: a failed first page starts no loop', () => {
    const behaviour = GetBehaviour.parse({
      mutate_during_pagination: 1,
      errors: { error_code: 'INTERNAL_SERVER_ERROR', count: 1 },
    });
    const first = decideGet(behaviour, true);
    expect(first.decision).toEqual({ kind: 'fail', code: 'INTERNAL_SERVER_ERROR' });
    expect(first.next.mutate_during_pagination).toBe(1);
    expect(decideGet(first.next, true).decision).toEqual({ kind: 'serve', advanceAfter: true });
  });

  it('refuses knobs that do not make sense', () => {
    expect(GetBehaviour.safeParse({ errors: { error_code: 'NOPE', count: 1 } }).success).toBe(
      false,
    );
    expect(GetBehaviour.safeParse({ errors: { error_code: 'RATE_LIMIT', count: 0 } }).success).toBe(
      false,
    );
    expect(GetBehaviour.safeParse({ latency_ms: -1 }).success).toBe(false);
    expect(GetBehaviour.safeParse({ mutate: 1 }).success).toBe(false);
    expect(GetBehaviour.parse({})).toEqual(DEFAULT_GET_BEHAVIOUR);
  });
});

describe('advanceItem', () => {
  const at = '2026-03-10T12:00:00.000Z';
  const item = () => ({ generation: 3, last_successful_update_time: at }) as unknown as SandboxItem;

  it('moves the generation and the update time to now', () => {
    const it1 = item();
    advanceItem(it1, 2, new Date('2026-03-10T12:00:05.000Z'));
    expect(it1).toEqual({ generation: 5, last_successful_update_time: '2026-03-10T12:00:05.000Z' });
  });

  it('moves the update time even when the clock has not (or went back)', () => {
    const it1 = item();
    advanceItem(it1, 1, new Date(at));
    expect(it1.last_successful_update_time).toBe('2026-03-10T12:00:00.001Z');
    advanceItem(it1, 1, new Date('2026-03-10T11:00:00.000Z'));
    expect(it1.last_successful_update_time).toBe('2026-03-10T12:00:00.002Z');
  });
});
