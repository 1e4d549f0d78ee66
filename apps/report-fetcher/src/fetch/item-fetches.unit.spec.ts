import {
  DEFAULT_DAYS,
  broughtBy,
  decidePoll,
  dueFetch,
  duePoll,
  evolve,
  nextDueAt,
  type PollAnswer,
  type PollDecision,
  type PollPolicy,
  initialItemFetches,
  latestReport,
  type FetchInput,
  type ItemFetches,
  type StoredFetch,
} from './item-fetches';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const S = 1000;
const at = (seconds: number) => new Date(T0 + seconds * S).toISOString();

const accepted = (requestId: string, atSeconds: number, days = 90): FetchInput => ({
  kind: 'accepted',
  acceptance: { requestId, days, acceptedAt: at(atSeconds) },
});
const ready = (eventId: string, atSeconds: number): FetchInput => ({
  kind: 'report_ready',
  report: { eventId, receivedAt: at(atSeconds) },
});
const failedReport = (eventId: string, atSeconds: number): FetchInput => ({
  kind: 'report_failed',
  report: { eventId, receivedAt: at(atSeconds) },
});
const claimed: FetchInput = { kind: 'claimed' };
// Rule 9: overdue 60 s after acceptance, given up 600 s after it; polls 10 s, 20 s, 40 s... apart.
const policy: PollPolicy = {
  overdueAfterMs: 60 * S,
  giveUpAfterMs: 600 * S,
  backoff: { baseMs: 10 * S, maxMs: 120 * S },
};
/** A poll's answer: Plaid's data last updated at `lutSeconds`. */
const answered = (lutSeconds: number): PollAnswer => ({
  kind: 'answered',
  lastSuccessfulUpdateTime: at(lutSeconds),
  plaidRequestId: 'plaid-get-1',
});

/** Applies inputs in order, each at `now` (seconds). */
function given(...inputs: (FetchInput | [FetchInput, number])[]): ItemFetches {
  return inputs.reduce<ItemFetches>((state, input) => {
    const [i, now] = Array.isArray(input) ? input : [input, 0];
    return evolve(state, i, T0 + now * S);
  }, initialItemFetches('item-1'));
}

/** The stored fetch of what is under way, as the runner would report it. */
function storedRunning(state: ItemFetches, fetchId = 'f-1'): StoredFetch {
  const plan = state.running!;
  return {
    fetchId,
    report: plan.report,
    days: plan.days,
    // Plaid updated the data just before it sent the webhook.
    lastSuccessfulUpdateTime: plan.report.receivedAt,
    fetchedAt: at(20),
  };
}

function fetchedNow(state: ItemFetches, now = 20): ItemFetches {
  return evolve(state, { kind: 'fetched', fetch: storedRunning(state) }, T0 + now * S);
}

describe('the report fetcher, per Item (item-fetches)', () => {
  describe('rule 1 and 2: a ReportReady wants a fetch for the acceptances it answers', () => {
    it('given an accepted refresh, when its report arrives, then a fetch is due now for its days and request', () => {
      const state = given(accepted('r-1', 0, 90), [ready('rep-1', 8), 8]);
      expect(dueFetch(state, T0 + 8 * S)).toEqual({
        report: { eventId: 'rep-1', receivedAt: at(8) },
        days: 90,
        requestIds: ['r-1'],
      });
    });

    it('given no refresh known and no fetch yet, when a report arrives, then it fetches the default window', () => {
      const state = given(ready('rep-1', 8));
      expect(dueFetch(state, T0)).toEqual({
        report: { eventId: 'rep-1', receivedAt: at(8) },
        days: DEFAULT_DAYS,
        requestIds: [],
      });
    });

    it('given a report received before the acceptance (beyond the tolerance), then it does not answer it', () => {
      const state = given(ready('rep-0', 0), claimed);
      const afterFetch = fetchedNow(state);
      const next = evolve(
        evolve(afterFetch, accepted('r-1', 30), T0),
        ready('rep-old-again', 1),
        T0,
      );
      expect(next.wanted).toBeNull();
      expect(next.pending.map((a) => a.requestId)).toEqual(['r-1']);
    });
  });

  describe('a repeated ReportReady never fetches twice for the same report', () => {
    it('given a stored fetch for a report, when Plaid retries the webhook, then nothing is wanted', () => {
      const afterFetch = fetchedNow(given(accepted('r-1', 0), ready('rep-1', 8), claimed));
      const retried = evolve(afterFetch, ready('rep-1-retry', 40), T0 + 40 * S);
      expect(retried.wanted).toBeNull();
      expect(dueFetch(retried, T0 + 40 * S)).toBeNull();
    });

    it('given a fetch under way for a report, when the retry arrives meanwhile, then no second fetch is wanted', () => {
      const running = given(accepted('r-1', 0), ready('rep-1', 8), claimed);
      const retried = evolve(running, ready('rep-1-retry', 9), T0 + 9 * S);
      expect(retried.wanted).toBeNull();
    });

    it('given a replay of old events after the snapshot, then nothing is wanted', () => {
      const afterFetch = fetchedNow(given(accepted('r-1', 0), ready('rep-1', 8), claimed));
      const replayed = [accepted('r-1', 0), ready('rep-1', 8)].reduce(
        (s, i) => evolve(s, i, T0 + 100 * S),
        afterFetch,
      );
      expect(replayed.wanted).toBeNull();
      expect(replayed.pending).toEqual(afterFetch.pending);
    });

    it('given a request its stored fetch showed older data for, when that report is read again, then nothing is wanted', () => {
      // r-2 is accepted just after rep-1 was received (within the clock tolerance) and asks
      // for more days: rep-1 answers it by time, so rep-1 is fetched again over its window
      // (rule 5), and that fetch shows data from before it, so it waits for rep-2.
      const running = given(accepted('r-1', 0, 30), ready('rep-1', 8), claimed);
      const wider = fetchedNow(evolve(running, accepted('r-2', 8.5, 365), T0 + 9 * S));
      expect(dueFetch(wider, T0 + 20 * S)).toMatchObject({ days: 365, requestIds: ['r-2'] });
      const afterFetch = fetchedNow(evolve(wider, claimed, T0 + 20 * S), 30);
      expect(afterFetch.last?.days).toBe(365);
      expect(afterFetch.wanted).toBeNull();
      expect(afterFetch.pending.map((a) => a.requestId)).toEqual(['r-2']);
      // The events are read again (offsets not committed when PostgreSQL went away).
      const replayed = [accepted('r-2', 8.5, 365), ready('rep-1', 8)].reduce(
        (s, i) => evolve(s, i, T0 + 60 * S),
        afterFetch,
      );
      expect(replayed.wanted).toBeNull();
      expect(dueFetch(replayed, T0 + 60 * S)).toBeNull();
      // Its own report still fetches it.
      const next = evolve(replayed, ready('rep-2', 40), T0 + 40 * S);
      expect(dueFetch(next, T0 + 40 * S)?.requestIds).toEqual(['r-2']);
    });

    it('given a report read again after its fetch, when a request it showed older data for is read later, then that report is not fetched again', () => {
      const afterFetch = fetchedNow(given(accepted('r-1', 0, 90), ready('rep-1', 8), claimed));
      // rep-1 read again (a replay) wants nothing, and is no report to fetch later either.
      const replayed = evolve(afterFetch, ready('rep-1', 8), T0 + 30 * S);
      expect(replayed.wanted).toBeNull();
      // r-2, accepted just after rep-1 was received, is read only now: rep-1 answers it by
      // time, its fetch showed data from before it, so it waits for its own report.
      const next = evolve(replayed, accepted('r-2', 8.5, 90), T0 + 31 * S);
      expect(next.wanted).toBeNull();
      expect(next.pending.map((a) => a.requestId)).toEqual(['r-2']);
      expect(dueFetch(evolve(next, ready('rep-2', 40), T0 + 40 * S), T0 + 40 * S)).toMatchObject({
        report: { eventId: 'rep-2' },
        requestIds: ['r-2'],
      });
    });
  });

  describe('rule 4: one fetch at a time, reports during it make at most one more', () => {
    it('given a fetch under way, when two new refreshes and their reports arrive, then one more fetch is wanted with both', () => {
      let state = given(accepted('r-1', 0, 30), ready('rep-1', 8), claimed);
      for (const input of [
        accepted('r-2', 10, 90),
        ready('rep-2', 15),
        accepted('r-3', 17, 60),
        ready('rep-3', 20),
      ]) {
        state = evolve(state, input, T0 + 20 * S);
      }
      expect(state.running?.report.eventId).toBe('rep-1');
      expect(state.wanted).toEqual({
        report: { eventId: 'rep-3', receivedAt: at(20) },
        days: 90,
        requestIds: ['r-2', 'r-3'],
      });
      const after = fetchedNow(state, 25);
      expect(dueFetch(after, T0 + 25 * S)?.requestIds).toEqual(['r-2', 'r-3']);
      expect(after.pending.map((a) => a.requestId)).toEqual(['r-2', 'r-3']);
    });

    it('when a runner claims, then the wanted fetch is under way and nothing is due', () => {
      const state = given(accepted('r-1', 0), ready('rep-1', 8), claimed);
      expect(state.running?.requestIds).toEqual(['r-1']);
      expect(dueFetch(state, T0 + 60 * S)).toBeNull();
    });

    it('given a runner died with a fetch claimed, when the next claims, then it makes that fetch and what came since', () => {
      const state = given(
        accepted('r-1', 0, 30),
        ready('rep-1', 8),
        claimed,
        accepted('r-2', 10, 400),
        ready('rep-2', 12),
        claimed,
      );
      expect(state.running).toEqual({
        report: { eventId: 'rep-2', receivedAt: at(12) },
        days: 400,
        requestIds: ['r-1', 'r-2'],
      });
    });
  });

  describe('rule 5: an acceptance read after its report', () => {
    it('given the report stored before the acceptance is read, when it arrives within the window, then nothing more is fetched', () => {
      const afterFetch = fetchedNow(given(ready('rep-1', 8), claimed));
      const next = evolve(afterFetch, accepted('r-1', 7.5, 90), T0 + 30 * S);
      expect(next).toEqual(afterFetch);
    });

    it('when it asks for more days than were fetched, then the same report is fetched again over its window', () => {
      const afterFetch = fetchedNow(given(accepted('r-0', 0, 30), ready('rep-1', 8), claimed));
      const next = evolve(afterFetch, accepted('r-1', 7.5, 730), T0 + 30 * S);
      expect(dueFetch(next, T0 + 30 * S)).toEqual({
        report: { eventId: 'rep-1', receivedAt: at(8) },
        days: 730,
        requestIds: ['r-1'],
      });
    });

    it('given a stored fetch, when a new report is read before its acceptance, then the acceptance wants a fetch of it', () => {
      const afterFetch = fetchedNow(given(accepted('r-1', 0), ready('rep-1', 8), claimed));
      const reportFirst = evolve(afterFetch, ready('rep-2', 100), T0 + 100 * S);
      expect(reportFirst.wanted).toBeNull();
      const next = evolve(reportFirst, accepted('r-2', 99.5, 365), T0 + 101 * S);
      expect(dueFetch(next, T0 + 101 * S)).toEqual({
        report: { eventId: 'rep-2', receivedAt: at(100) },
        days: 365,
        requestIds: ['r-2'],
      });
    });

    it('given a wider fetch of the stored report under way, when another acceptance it covers arrives, then that fetch brings it and no third is wanted', () => {
      // Two requests coalesced into one call (one accepted_at), read after their report's
      // first fetch (the default window): the first wants the report again over 730 days.
      const stored = fetchedNow(given(ready('rep-1', 8), claimed));
      const wider = evolve(
        evolve(stored, accepted('r-1', 7.5, 730), T0 + 21 * S),
        claimed,
        T0 + 21 * S,
      );
      expect(wider.running).toMatchObject({ days: 730, requestIds: ['r-1'] });
      const next = evolve(wider, accepted('r-2', 7.5, 730), T0 + 22 * S);
      expect(next.wanted).toBeNull();
      expect(next.running?.requestIds).toEqual(['r-1', 'r-2']);
      const after = fetchedNow(next, 23);
      expect(after.pending).toEqual([]);
      expect(dueFetch(after, T0 + 23 * S)).toBeNull();
    });

    it('given a fetch under way, when an acceptance it answers arrives, then that fetch brings it', () => {
      const running = given(ready('rep-1', 8), claimed);
      const next = evolve(running, accepted('r-1', 7.9, 90), T0 + 9 * S);
      expect(next.wanted).toBeNull();
      expect(next.running?.requestIds).toEqual(['r-1']);
      expect(broughtBy(next, storedRunning(next))).toEqual(['r-1']);
      expect(fetchedNow(next).pending).toEqual([]);
    });

    it('given a fetch under way with a smaller window, when the acceptance arrives, then one more fetch is wanted', () => {
      const running = given(accepted('r-0', 0, 30), ready('rep-1', 8), claimed);
      const next = evolve(running, accepted('r-1', 7.9, 365), T0 + 9 * S);
      expect(next.wanted?.days).toBe(365);
      const after = fetchedNow(next);
      expect(after.pending.map((a) => a.requestId)).toEqual(['r-1']);
      expect(dueFetch(after, T0 + 20 * S)?.requestIds).toEqual(['r-1']);
    });
  });

  describe('rule 1: a fetch brings only data at least as new as the acceptance', () => {
    it('given two refreshes accepted before the first report, when the fetch shows data older than the second, then the second report is fetched', () => {
      const running = given(
        accepted('r-1', 0, 90),
        accepted('r-2', 5, 730),
        [ready('rep-1', 8), 8],
        claimed,
      );
      // rep-2 arrives while rep-1's fetch runs: both requests are in that fetch's plan.
      const meanwhile = evolve(running, ready('rep-2', 40), T0 + 40 * S);
      const stored = {
        ...storedRunning(meanwhile),
        lastSuccessfulUpdateTime: at(1), // Plaid's data predates r-2's acceptance
      };
      const after = evolve(meanwhile, { kind: 'fetched', fetch: stored }, T0 + 41 * S);
      expect(broughtBy(meanwhile, stored)).toEqual(['r-1']);
      expect(after.pending.map((a) => a.requestId)).toEqual(['r-2']);
      expect(dueFetch(after, T0 + 41 * S)).toEqual({
        report: { eventId: 'rep-2', receivedAt: at(40) },
        days: 730,
        requestIds: ['r-2'],
      });
    });

    it('given the second report not arrived yet, then the second request waits for it', () => {
      const running = given(
        accepted('r-1', 0, 90),
        accepted('r-2', 5, 730),
        ready('rep-1', 8),
        claimed,
      );
      const stored = { ...storedRunning(running), lastSuccessfulUpdateTime: at(1) };
      const after = evolve(running, { kind: 'fetched', fetch: stored }, T0 + 20 * S);
      expect(after.wanted).toBeNull();
      const next = evolve(after, ready('rep-2', 60), T0 + 60 * S);
      expect(dueFetch(next, T0 + 60 * S)?.requestIds).toEqual(['r-2']);
    });

    // The report tolerance says which report answers a refresh by when each was received; the
    // data's own time says whether it holds the refresh. A report received just before an
    // acceptance (the fault scenarios' rolling restart met one 0.4 s before) answers it by time,
    // but its data predates the refresh.
    it('given a fetch under way, when a refresh accepted just after its data is read, then that fetch does not bring it and the next report does', () => {
      const running = given(ready('rep-1', 8), claimed);
      const joined = evolve(running, accepted('r-1', 8.4, 90), T0 + 8.4 * S);
      const stored = { ...storedRunning(joined), lastSuccessfulUpdateTime: at(7.96) };
      expect(broughtBy(joined, stored)).toEqual([]);
      const after = evolve(joined, { kind: 'fetched', fetch: stored }, T0 + 9 * S);
      expect(after.pending.map((a) => a.requestId)).toEqual(['r-1']);
      const next = evolve(after, ready('rep-2', 9.5), T0 + 9.5 * S);
      expect(dueFetch(next, T0 + 9.5 * S)).toEqual({
        report: { eventId: 'rep-2', receivedAt: at(9.5) },
        days: 90,
        requestIds: ['r-1'],
      });
    });

    it('given a stored fetch, when a refresh accepted just after its data is read, then it waits for the next report', () => {
      const afterFetch = fetchedNow(given(ready('rep-1', 8), claimed)); // data of 8 s
      const next = evolve(afterFetch, accepted('r-1', 8.4, 90), T0 + 8.4 * S);
      expect(next.pending.map((a) => a.requestId)).toEqual(['r-1']);
      expect(dueFetch(evolve(next, ready('rep-2', 9.5), T0 + 9.5 * S), T0 + 9.5 * S)).toEqual({
        report: { eventId: 'rep-2', receivedAt: at(9.5) },
        days: 90,
        requestIds: ['r-1'],
      });
    });

    it('given a stored fetch and a later report read first, when a refresh accepted just after the stored data is read, then the later report is fetched', () => {
      const afterFetch = fetchedNow(given(ready('rep-1', 8), claimed));
      const reportFirst = evolve(afterFetch, ready('rep-2', 9.5), T0 + 9.5 * S);
      const next = evolve(reportFirst, accepted('r-1', 8.4, 90), T0 + 9.6 * S);
      expect(dueFetch(next, T0 + 9.6 * S)).toEqual({
        report: { eventId: 'rep-2', receivedAt: at(9.5) },
        days: 90,
        requestIds: ['r-1'],
      });
    });
  });

  describe('rule 7: a given-up fetch', () => {
    it('given a never-fetched Item whose fetch was given up, when the same report is delivered again, then nothing is fetched', () => {
      const gaveUp = evolve(
        given(ready('rep-1', 8), claimed),
        { kind: 'failed', retryAt: null },
        T0 + 9 * S,
      );
      const again = evolve(gaveUp, ready('rep-1-again', 40), T0 + 40 * S);
      expect(dueFetch(again, T0 + 40 * S)).toBeNull();
    });
  });

  describe('rule 6: ReportFailed fetches nothing', () => {
    it('given an accepted refresh, when its report fails, then nothing is wanted and it is no longer pending', () => {
      const state = given(accepted('r-1', 0), failedReport('rep-1', 8));
      expect(state.wanted).toBeNull();
      expect(state.pending).toEqual([]);
      expect(evolve(state, failedReport('rep-1-retry', 40), T0 + 40 * S)).toEqual(state);
    });
  });

  describe('rule 7: failed fetches', () => {
    it('given a fetch under way, when it fails for now, then it is wanted again at the retry time with its attempts counted', () => {
      const running = given(accepted('r-1', 0), ready('rep-1', 8), claimed);
      const failed = evolve(running, { kind: 'failed', retryAt: T0 + 60 * S }, T0 + 10 * S);
      expect(failed.attempts).toBe(1);
      expect(dueFetch(failed, T0 + 59 * S)).toBeNull();
      expect(dueFetch(failed, T0 + 60 * S)?.requestIds).toEqual(['r-1']);
    });

    it('when it is given up, then its acceptances are dropped and what came meanwhile is due', () => {
      const state = given(
        accepted('r-1', 0),
        ready('rep-1', 8),
        claimed,
        accepted('r-2', 10),
        ready('rep-2', 12),
      );
      const gaveUp = evolve(state, { kind: 'failed', retryAt: null }, T0 + 13 * S);
      expect(gaveUp.running).toBeNull();
      expect(gaveUp.attempts).toBe(0);
      expect(gaveUp.pending.map((a) => a.requestId)).toEqual(['r-2']);
      expect(dueFetch(gaveUp, T0 + 13 * S)?.requestIds).toEqual(['r-2']);
    });

    it('after a success, the attempts start again from zero', () => {
      const running = given(accepted('r-1', 0), ready('rep-1', 8), claimed);
      const retried = evolve(evolve(running, { kind: 'failed', retryAt: T0 }, T0), claimed, T0);
      expect(fetchedNow(retried).attempts).toBe(0);
    });
  });

  describe('rule 8: report fetch', () => {
    it('given a stored fetch, when asked, then the latest report is fetched again over the last window', () => {
      const afterFetch = fetchedNow(given(accepted('r-1', 0, 120), ready('rep-1', 8), claimed));
      const asked = evolve(afterFetch, { kind: 'fetch_asked' }, T0 + 100 * S);
      expect(dueFetch(asked, T0 + 100 * S)).toEqual({
        report: { eventId: 'rep-1', receivedAt: at(8) },
        days: 120,
        requestIds: [],
      });
    });

    it('given no report of the Item, then there is nothing to fetch', () => {
      const state = given(accepted('r-1', 0));
      expect(latestReport(state)).toBeNull();
      expect(evolve(state, { kind: 'fetch_asked' }, T0)).toEqual(state);
    });
  });

  it('an acceptance read twice is pending once', () => {
    const state = given(accepted('r-1', 0), accepted('r-1', 0));
    expect(state.pending).toHaveLength(1);
  });

  describe('rule 9: a report that does not come is polled for', () => {
    const notYet = answered(-3600);
    const waitingOne = () => given(accepted('r-1', 0, 90));

    it('given an accepted refresh with no report, then a poll is due once it is overdue, not before', () => {
      const state = waitingOne();
      expect(nextDueAt(state, policy)).toBe(T0 + 60 * S);
      expect(duePoll(state, T0 + 59 * S, policy)).toBeNull();
      expect(duePoll(state, T0 + 60 * S, policy)).toEqual({
        acceptances: [{ requestId: 'r-1', days: 90, acceptedAt: at(0) }],
        days: 90,
      });
    });

    it('given a report came in time, then nothing is polled', () => {
      const state = given(accepted('r-1', 0), [ready('rep-1', 8), 8]);
      const fetched = fetchedNow(evolve(state, claimed, T0 + 8 * S));
      expect(nextDueAt(fetched, policy)).toBeNull();
      expect(duePoll(fetched, T0 + 3600 * S, policy)).toBeNull();
    });

    it('given an overdue refresh, when the poll shows data no older than its acceptance, then a report is found at that time and a fetch of it is due', () => {
      const state = waitingOne();
      const plan = duePoll(state, T0 + 60 * S, policy)!;
      const decision = decidePoll(state, plan, answered(5), T0 + 61 * S, policy, 'poll-1');
      expect(decision.found).toEqual({
        report: { eventId: 'poll-1', receivedAt: at(5) },
        requestIds: ['r-1'],
        lastSuccessfulUpdateTime: at(5),
        plaidRequestId: 'plaid-get-1',
      });
      expect(decision.overdue).toBeNull();
      expect(dueFetch(decision.state, T0 + 61 * S)).toEqual({
        report: { eventId: 'poll-1', receivedAt: at(5) },
        days: 90,
        requestIds: ['r-1'],
      });
      expect(decision.state.polling).toBeNull();
    });

    it('given a report found by polling, when the webhook comes late, then it fetches nothing more', () => {
      const state = waitingOne();
      const plan = duePoll(state, T0 + 60 * S, policy)!;
      const found = decidePoll(state, plan, answered(5), T0 + 61 * S, policy, 'poll-1').state;
      const fetched = fetchedNow(evolve(found, claimed, T0 + 61 * S), 70);
      expect(fetched.pending).toEqual([]);
      const late = evolve(fetched, ready('webhook-1', 300), T0 + 300 * S);
      expect(dueFetch(late, T0 + 300 * S)).toBeNull();
      expect(late.wanted).toBeNull();
    });

    it('given data older than the acceptance, then it polls again after a growing delay and finds it later', () => {
      const state = waitingOne();
      const first = decidePoll(
        state,
        duePoll(state, T0 + 60 * S, policy)!,
        notYet,
        T0 + 60 * S,
        policy,
        'poll-1',
      );
      expect(first.found).toBeNull();
      expect(first.overdue).toBeNull();
      expect(first.state.polling).toMatchObject({ polls: 1, nextAt: T0 + 70 * S });
      const second = decidePoll(
        first.state,
        duePoll(first.state, T0 + 70 * S, policy)!,
        notYet,
        T0 + 70 * S,
        policy,
        'poll-2',
      );
      expect(second.state.polling).toMatchObject({ polls: 2, nextAt: T0 + 90 * S });
      expect(duePoll(second.state, T0 + 89 * S, policy)).toBeNull();
      const third = decidePoll(
        second.state,
        duePoll(second.state, T0 + 90 * S, policy)!,
        answered(85),
        T0 + 90 * S,
        policy,
        'poll-3',
      );
      expect(third.found?.requestIds).toEqual(['r-1']);
    });

    it('given polling until the give-up time, then the acceptance is dropped with ReportOverdue and polling stops', () => {
      let state = waitingOne();
      let now = T0 + 60 * S;
      let overdue: PollDecision['overdue'] = null;
      for (let i = 0; i < 20 && !overdue; i++) {
        const plan = duePoll(state, now, policy)!;
        const decision = decidePoll(state, plan, notYet, now, policy, `poll-${i}`);
        state = decision.state;
        overdue = decision.overdue;
        now = state.polling?.nextAt ?? now;
      }
      expect(overdue).toMatchObject({
        acceptances: [{ requestId: 'r-1' }],
        lastSuccessfulUpdateTime: at(-3600),
        lastError: null,
      });
      expect(overdue?.polls).toBeGreaterThan(3);
      expect(state.pending).toEqual([]);
      expect(state.polling).toBeNull();
      expect(nextDueAt(state, policy)).toBeNull();
    });

    const givenUpOne = () => {
      const error = {
        source: 'fetcher' as const,
        error_code: 'UNKNOWN_ITEM',
        error_message: 'no token',
      };
      const state = waitingOne();
      return decidePoll(
        state,
        duePoll(state, T0 + 60 * S, policy)!,
        { kind: 'failed', error, permanent: true },
        T0 + 60 * S,
        policy,
        'poll-1',
      ).state;
    };

    it('given an acceptance given up, when the same RefreshAccepted is read again, then nothing changes', () => {
      const state = givenUpOne();
      expect(state.overdue?.map((a) => a.requestId)).toEqual(['r-1']);
      expect(evolve(state, accepted('r-1', 0, 90), T0 + 100 * S)).toBe(state);
    });

    it('given an acceptance given up, when a late webhook answers it, then its fetch brings it', () => {
      const late = evolve(givenUpOne(), ready('late-1', 300), T0 + 300 * S);
      expect(dueFetch(late, T0 + 300 * S)?.requestIds).toEqual(['r-1']);
      const running = evolve(late, claimed, T0 + 300 * S);
      expect(broughtBy(running, storedRunning(running))).toEqual(['r-1']);
      const fetched = fetchedNow(running, 310);
      expect(fetched.pending).toEqual([]);
      expect(fetched.overdue).toEqual([]);
    });

    it('given an acceptance given up, when the late report shows older data, then it is dropped and not polled again', () => {
      const late = evolve(givenUpOne(), ready('late-1', 300), T0 + 300 * S);
      const running = evolve(late, claimed, T0 + 300 * S);
      const older: StoredFetch = { ...storedRunning(running), lastSuccessfulUpdateTime: at(-10) };
      expect(broughtBy(running, older)).toEqual([]);
      const fetched = evolve(running, { kind: 'fetched', fetch: older }, T0 + 310 * S);
      expect(fetched.pending).toEqual([]);
      expect(nextDueAt(fetched, policy)).toBeNull();
    });

    it('given an acceptance given up after its report showed older data, when that report is read again, then nothing is fetched', () => {
      const afterFetch = fetchedNow(given(accepted('r-0', 0, 90), ready('rep-1', 8), claimed));
      const waiting = evolve(afterFetch, accepted('r-1', 8.5, 90), T0 + 9 * S);
      expect(waiting.wanted).toBeNull();
      const error = {
        source: 'fetcher' as const,
        error_code: 'UNKNOWN_ITEM',
        error_message: 'no token',
      };
      const givenUp = decidePoll(
        waiting,
        duePoll(waiting, T0 + 70 * S, policy)!,
        { kind: 'failed', error, permanent: true },
        T0 + 70 * S,
        policy,
        'poll-1',
      ).state;
      expect(givenUp.overdue?.map((a) => a.requestId)).toEqual(['r-1']);
      const replayed = evolve(givenUp, ready('rep-1', 8), T0 + 100 * S);
      expect(replayed.wanted).toBeNull();
      expect(replayed.overdue?.map((a) => a.requestId)).toEqual(['r-1']);
    });

    it('given an Item error on the poll, then the acceptance is overdue at once', () => {
      const state = waitingOne();
      const error = {
        source: 'plaid' as const,
        error_type: 'ITEM_ERROR',
        error_code: 'ITEM_LOGIN_REQUIRED',
        error_message: 'login required',
        display_message: null,
        plaid_request_id: 'plaid-get-2',
        http_status: 400,
      };
      const decision = decidePoll(
        state,
        duePoll(state, T0 + 60 * S, policy)!,
        { kind: 'failed', error, permanent: true },
        T0 + 60 * S,
        policy,
        'poll-1',
      );
      expect(decision.overdue).toMatchObject({ polls: 1, lastError: error });
      expect(decision.state.pending).toEqual([]);
    });

    it('given a retryable error on the poll, then it polls again later', () => {
      const state = waitingOne();
      const decision = decidePoll(
        state,
        duePoll(state, T0 + 60 * S, policy)!,
        {
          kind: 'failed',
          error: { source: 'fetcher', error_code: 'PLAID_TIMEOUT', error_message: 'timed out' },
          permanent: false,
        },
        T0 + 60 * S,
        policy,
        'poll-1',
      );
      expect(decision.overdue).toBeNull();
      expect(nextDueAt(decision.state, policy)).toBe(T0 + 70 * S);
    });

    it('given polling under way, when the webhook comes, then polling stops and the report is fetched', () => {
      const state = waitingOne();
      const polled = decidePoll(
        state,
        duePoll(state, T0 + 60 * S, policy)!,
        notYet,
        T0 + 60 * S,
        policy,
        'poll-1',
      ).state;
      const webhook = evolve(polled, ready('rep-1', 65), T0 + 65 * S);
      expect(webhook.polling).toBeNull();
      expect(dueFetch(webhook, T0 + 65 * S)?.requestIds).toEqual(['r-1']);
      expect(duePoll(webhook, T0 + 1000 * S, policy)).toBeNull();
    });

    it('given polling left waiting only for a refresh not overdue yet, then no poll is due before it is', () => {
      const state = given(accepted('r-1', 0), accepted('r-2', 200));
      const decision = decidePoll(
        state,
        duePoll(state, T0 + 60 * S, policy)!,
        answered(10),
        T0 + 60 * S,
        policy,
        'poll-1',
      );
      const fetched = fetchedNow(evolve(decision.state, claimed, T0 + 60 * S), 65);
      expect(fetched.pending.map((a) => a.requestId)).toEqual(['r-2']);
      // The backoff (70 s) passes long before r-2 is overdue (260 s): due then, not before,
      // or the Item would be claimed again and again with nothing to do.
      expect(nextDueAt(fetched, policy)).toBe(T0 + 260 * S);
      expect(duePoll(fetched, T0 + 260 * S, policy)?.acceptances).toHaveLength(1);
    });

    it('given two refreshes, when the poll holds only the first, then the second keeps waiting', () => {
      const state = given(accepted('r-1', 0), accepted('r-2', 30));
      const decision = decidePoll(
        state,
        duePoll(state, T0 + 90 * S, policy)!,
        answered(10),
        T0 + 90 * S,
        policy,
        'poll-1',
      );
      expect(decision.found?.requestIds).toEqual(['r-1']);
      expect(decision.state.pending.map((a) => a.requestId)).toEqual(['r-1', 'r-2']);
      // The fetch of the found report comes first; polling for r-2 resumes after it.
      expect(nextDueAt(decision.state, policy)).toBe(T0 + 90 * S);
      const fetched = fetchedNow(evolve(decision.state, claimed, T0 + 90 * S), 95);
      expect(fetched.pending.map((a) => a.requestId)).toEqual(['r-2']);
      expect(nextDueAt(fetched, policy)).toBe(T0 + 100 * S);
    });
  });
  describe('inputs read in any order, and again: no report fetched twice over the same window', () => {
    /** A tiny driver recording every stored fetch (report event id, window). */
    class Sim {
      state: ItemFetches = initialItemFetches('item-1');
      fetches: { report: string; days: number; lut: string }[] = [];
      in(i: FetchInput, now: number) {
        this.state = evolve(this.state, i, T0 + now * S);
        return this;
      }
      /** claim + store the due fetch; Plaid's data then last updated at `lut` (seconds). */
      fetch(now: number, lut: number) {
        expect(dueFetch(this.state, T0 + now * S)).not.toBeNull();
        this.in({ kind: 'claimed' }, now);
        return this.store(now, lut);
      }
      store(now: number, lut: number) {
        const p = this.state.running!;
        const f: StoredFetch = {
          fetchId: `f-${this.fetches.length + 1}`,
          report: p.report,
          days: p.days,
          lastSuccessfulUpdateTime: at(lut),
          fetchedAt: at(now),
        };
        this.fetches.push({ report: p.report.eventId, days: p.days, lut: at(lut) });
        return this.in({ kind: 'fetched', fetch: f }, now);
      }
      poll(now: number, answer: PollAnswer, id: string) {
        const plan = duePoll(this.state, T0 + now * S, policy);
        expect(plan).not.toBeNull();
        const d = decidePoll(this.state, plan!, answer, T0 + now * S, policy, id);
        this.state = d.state;
        return d;
      }
      /** The fault test's rule: a report fetched again only over a strictly larger window. */
      expectNoRefetch() {
        const best = new Map<string, number>();
        for (const f of this.fetches) {
          const prev = best.get(f.report);
          expect({ f, prev, ok: prev === undefined || f.days > prev }).toMatchObject({ ok: true });
          best.set(f.report, Math.max(prev ?? 0, f.days));
        }
      }
    }

    /** r-1 waits with no report and is given up (ReportOverdue) by polling. */
    function givenUpR1(): Sim {
      const s = new Sim().in(accepted('r-1', 0, 90), 0);
      let now = 60;
      for (;;) {
        const d = s.poll(now, answered(-3600), `poll-old-${now}`);
        if (d.overdue) break;
        now = nextDueAt(s.state, policy)! / S - T0 / S;
      }
      expect(s.state.overdue?.map((a) => a.requestId)).toEqual(['r-1']);
      return s;
    }

    it('given a report found by polling and fetched, when its own ReportReady is read, then it is not fetched again for an acceptance given up before', () => {
      const s = givenUpR1();
      s.in(accepted('r-2', 1000, 90), 1000);
      const found = s.poll(1060, answered(1010), 'poll-2');
      expect(found.found?.requestIds).toEqual(['r-2']);
      s.fetch(1061, 1010); // poll-2, 90 days, brings r-2
      // The fetcher consumes the ReportReady it published for poll-2 (after the claim).
      s.in(ready('poll-2', 1010), 1070);
      if (dueFetch(s.state, T0 + 1070 * S)) s.fetch(1071, 1010);
      s.expectNoRefetch();
    });

    it('given a report found by polling, when its own ReportReady is read while it is fetched, then it is not fetched again', () => {
      const s = givenUpR1();
      s.in(accepted('r-2', 1000, 90), 1000);
      s.poll(1060, answered(1010), 'poll-2');
      s.in({ kind: 'claimed' }, 1061);
      s.in(ready('poll-2', 1010), 1062);
      s.store(1063, 1010);
      if (dueFetch(s.state, T0 + 1063 * S)) s.fetch(1064, 1010);
      s.expectNoRefetch();
    });

    it('given an acceptance given up, when a report found by polling later brings its data, then an older report read again fetches nothing', () => {
      const s = new Sim().in(accepted('r-1', 10, 90), 10).in(ready('rep-1', 10.5), 11);
      s.fetch(12, 9); // rep-1 shows data older than r-1
      expect(s.state.pending.map((a) => a.requestId)).toEqual(['r-1']);
      let now = 70;
      for (;;) {
        const d = s.poll(now, answered(9), `poll-old-${now}`);
        if (d.overdue) break;
        now = nextDueAt(s.state, policy)! / S - T0 / S;
      }
      s.in(accepted('r-2', 1000, 90), 1000);
      s.poll(1060, answered(1010), 'poll-2');
      s.fetch(1061, 1010);
      // Consumer restarts and reads rep-1 again (before it reaches poll-2's own ReportReady).
      s.in(ready('rep-1', 10.5), 1100);
      if (dueFetch(s.state, T0 + 1100 * S)) s.fetch(1101, 1010);
      s.expectNoRefetch();
    });

    it('given a report found by polling that answers a second acceptance by time only, when its ReportReady is read while it is fetched, then it is not fetched again', () => {
      const s = new Sim().in(accepted('r-1', 0, 90), 0).in(accepted('r-2', 10.5, 90), 1);
      const d = s.poll(61, answered(10), 'poll-1'); // holds r-1, not r-2 (answers it by time)
      expect(d.found?.requestIds).toEqual(['r-1']);
      s.in({ kind: 'claimed' }, 62);
      s.in(ready('poll-1', 10), 63);
      s.store(64, 12); // brings r-1 and r-2 (data moved on)
      if (dueFetch(s.state, T0 + 64 * S)) s.fetch(65, 12);
      s.expectNoRefetch();
    });
  });
});
