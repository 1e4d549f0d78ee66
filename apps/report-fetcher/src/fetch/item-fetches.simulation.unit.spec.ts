/**
 * A seeded simulation of one Item, checking the decider's two promises whatever order its inputs
 * come in and however often: no report is fetched twice unless over a larger window, and every
 * accepted refresh ends served (a stored fetch brought its data) or answered otherwise (given up
 * with ReportOverdue, or by a fetch given up). The fetcher's consumer handles messages
 * concurrently and retries them, so in production any order and any repeat happen; the fixed
 * sequences in item-fetches.unit.spec.ts name the cases this found. Deterministic: the same seeds
 * every run, and a failure names its seed and what happened.
 */
import { reportAnswers } from '@cashflow/projection';
import {
  broughtBy,
  decidePoll,
  dueFetch,
  duePoll,
  evolve,
  initialItemFetches,
  type FetchInput,
  type ItemFetches,
  type PollPolicy,
  type StoredFetch,
} from './item-fetches';

const SEEDS = 1500;
const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const S = 1000;
const at = (seconds: number) => new Date(T0 + Math.round(seconds * S)).toISOString();
const policy: PollPolicy = {
  overdueAfterMs: 60 * S,
  giveUpAfterMs: 600 * S,
  backoff: { baseMs: 10 * S, maxMs: 120 * S },
};

/**
 * xorshift32: small, fast, and the same numbers for the same seed everywhere. The seed is spread
 * over the bits first and the first numbers dropped: from a small seed, xorshift's first numbers
 * are small too (every run would have one refresh).
 */
function random(seed: number): () => number {
  let x = Math.imul(seed, 0x9e3779b1) >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
  for (let i = 0; i < 8; i += 1) next();
  return next;
}

interface Refresh {
  readonly id: string;
  readonly acceptedAt: number;
  readonly days: number;
}

interface Message {
  readonly input: FetchInput;
  /** When it can first be read (seconds). */
  readonly at: number;
  read: boolean;
}

interface Stored {
  readonly report: string;
  readonly receivedAt: string;
  readonly days: number;
  readonly dataAt: number;
}

function simulate(seed: number): { problems: string[]; log: string[] } {
  const rnd = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;

  // Plaid: one to four refreshes; most finish (their data later than the acceptance and than the
  // refresh before), and most finished ones send a webhook, read late or early.
  const refreshes: Refresh[] = [];
  const dataTimes = [-100];
  const messages: Message[] = [];
  let t = 0;
  const count = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < count; i += 1) {
    t += pick([0.3, 0.8, 2, 5, 20, 100, 700]);
    const days = pick([30, 90, 365]);
    refreshes.push({ id: `r-${i}`, acceptedAt: t, days });
    messages.push({
      input: { kind: 'accepted', acceptance: { requestId: `r-${i}`, days, acceptedAt: at(t) } },
      at: t + pick([0, 0.1, 1, 30]),
      read: false,
    });
    if (rnd() <= 0.15) continue;
    const dataAt = Math.max(t + pick([1, 3, 8, 200]), dataTimes[dataTimes.length - 1]! + 0.1);
    dataTimes.push(dataAt);
    if (rnd() <= 0.25) continue;
    const receivedAt = dataAt + pick([0, 0.05, 0.5]);
    messages.push({
      input: { kind: 'report_ready', report: { eventId: `rep-${i}`, receivedAt: at(receivedAt) } },
      at: receivedAt + pick([0, 0.1, 2, 40]),
      read: false,
    });
  }
  const dataAtTime = (now: number) => Math.max(...dataTimes.filter((d) => d <= now));

  let state: ItemFetches = initialItemFetches('item-1');
  const stored: Stored[] = [];
  const brought = new Set<string>();
  const answeredOtherwise = new Set<string>();
  const log: string[] = [];
  const apply = (input: FetchInput, now: number) => {
    state = evolve(state, input, T0 + now * S);
    log.push(`${now.toFixed(1)} ${JSON.stringify(input)}`);
  };

  /** Does one thing that can happen now, picked at random; false when nothing can. */
  const step = (now: number, settling: boolean): boolean => {
    const actions: (() => void)[] = [];
    const unread = messages.filter((m) => m.at <= now && !m.read);
    if (unread.length > 0) {
      actions.push(() => {
        const m = pick(unread);
        m.read = true;
        apply(m.input, now);
      });
    }
    const read = messages.filter((m) => m.read);
    if (read.length > 0 && !settling && rnd() < 0.3) {
      actions.push(() => apply(pick(read).input, now)); // read again
    }
    const running = state.running;
    if (!running && dueFetch(state, T0 + now * S))
      actions.push(() => apply({ kind: 'claimed' }, now));
    if (running) {
      actions.push(() => {
        const roll = settling ? 1 : rnd();
        if (roll < 0.1) return apply({ kind: 'failed', retryAt: T0 + (now + 5) * S }, now);
        if (roll < 0.12) {
          running.requestIds.forEach((id) => answeredOtherwise.add(id));
          return apply({ kind: 'failed', retryAt: null }, now);
        }
        const dataAt = dataAtTime(now);
        const fetch: StoredFetch = {
          fetchId: `f-${stored.length}`,
          report: running.report,
          days: running.days,
          lastSuccessfulUpdateTime: at(dataAt),
          fetchedAt: at(now),
        };
        broughtBy(state, fetch).forEach((id) => brought.add(id));
        stored.push({
          report: running.report.eventId,
          receivedAt: running.report.receivedAt,
          days: running.days,
          dataAt,
        });
        apply({ kind: 'fetched', fetch }, now);
      });
    }
    const poll = running ? null : duePoll(state, T0 + now * S, policy);
    if (poll) {
      actions.push(() => {
        const id = `poll-${now.toFixed(1)}`;
        const lastSuccessfulUpdateTime = at(dataAtTime(now));
        const answer = { kind: 'answered' as const, lastSuccessfulUpdateTime, plaidRequestId: id };
        const decision = decidePoll(state, poll, answer, T0 + now * S, policy, id);
        state = decision.state;
        log.push(`${now.toFixed(1)} poll: data of ${lastSuccessfulUpdateTime}, found ${id}`);
        decision.overdue?.acceptances.forEach((a) => answeredOtherwise.add(a.requestId));
        // The ReportReady found is published, and the fetcher reads it back.
        if (decision.found) {
          messages.push({
            input: { kind: 'report_ready', report: decision.found.report },
            at: now + pick([0.1, 1, 30]),
            read: false,
          });
        }
      });
    }
    if (actions.length === 0) return false;
    pick(actions)();
    return true;
  };

  let now = 0;
  for (; now < 1500; now += pick([0.1, 0.5, 2, 10]))
    for (let k = 0; k < 3; k += 1) step(now, false);
  // Then nothing more goes wrong: every message is read, every fetch succeeds, polls give up.
  for (let n = 0; n < 2000 && now <= 20_000; n += 1) if (!step(now, true)) now += 5;

  const problems: string[] = [];
  const widest = new Map<string, number>();
  for (const f of stored) {
    const before = widest.get(f.report);
    if (before !== undefined && f.days <= before) {
      problems.push(`${f.report} fetched again over ${f.days} days after ${before}`);
    }
    widest.set(f.report, Math.max(before ?? 0, f.days));
  }
  for (const r of refreshes) {
    const served = stored.some(
      (f) =>
        reportAnswers(f.receivedAt, at(r.acceptedAt)) &&
        f.days >= r.days &&
        f.dataAt >= r.acceptedAt,
    );
    if (!served && !brought.has(r.id) && !answeredOtherwise.has(r.id)) {
      problems.push(`${r.id} never served nor answered`);
    }
  }
  return { problems, log };
}

describe('the report fetcher, per Item, with its inputs in any order and read again (simulated)', () => {
  it(`fetches no report twice over the same window and answers every refresh (${SEEDS} seeds)`, () => {
    for (let seed = 1; seed <= SEEDS; seed += 1) {
      const { problems, log } = simulate(seed);
      if (problems.length > 0) {
        throw new Error(`seed ${seed}: ${problems.join('; ')}\n${log.join('\n')}`);
      }
    }
  });
});
