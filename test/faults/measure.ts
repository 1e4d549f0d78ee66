import type { FaultSystem } from './fault-system';

/** The sum of a Prometheus metric's samples (optionally those whose labels contain `match`). */
export async function metric(url: string, name: string, match = ''): Promise<number> {
  const response = await fetch(url).catch(() => undefined);
  if (!response?.ok) return Number.NaN;
  let sum = 0;
  for (const line of (await response.text()).split('\n')) {
    if (!line.startsWith(name) || line.startsWith('#')) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    if (match && !rest.includes(match)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

const ANSWERED = "SELECT count(*) AS n FROM refresh_requests WHERE status <> 'requested'";

/**
 * Requests answered (projected with an outcome) over time, sampled twice a second from the
 * projection: how a scenario measures when the system made progress again after a fault.
 */
export function answeredTimeline(system: FaultSystem) {
  const samples: { at: number; answered: number }[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const answered = await system.count(ANSWERED);
      if (answered !== undefined) samples.push({ at: Date.now(), answered });
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  })();
  return {
    latest: () => samples.at(-1)?.answered ?? 0,
    /** Seconds from `at` until more requests were answered than at `at` (null: never). */
    progressAfter(at: number): number | null {
      const before = [...samples].reverse().find((s) => s.at <= at)?.answered ?? 0;
      const next = samples.find((s) => s.at > at && s.answered > before);
      return next ? round((next.at - at) / 1000) : null;
    },
    /** Seconds from `at` until `total` requests were answered (null: not yet). */
    drainedAfter(at: number, total: number): number | null {
      const done = samples.find((s) => s.answered >= total);
      return done ? round(Math.max(0, done.at - at) / 1000) : null;
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

export type Timeline = ReturnType<typeof answeredTimeline>;

export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

export { ANSWERED };
