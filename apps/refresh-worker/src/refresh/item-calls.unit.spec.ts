import {
  decide,
  evolve,
  initialItemCalls,
  isIdle,
  type ItemCalls,
  type ItemDecision,
  type ItemInput,
  type KnownFacts,
  type Member,
} from './item-calls';
import type { Outcome, PlaidAnswer } from './outcomes';

/** Plaid's per-Item limit in these specs: 2 calls a minute, so calls are spaced 30 s apart. */
const LIMITS = { limit: 2, windowMs: 60_000 };
const S = 1000;

const accepted: Outcome = { kind: 'accepted', plaidRequestId: 'plaid-1', attempts: 1 };

let tickets = 0;
/** A request for the Item: `days` asked, reaching Kafka at `at` (ms). */
const request = (requestId: string, days = 365, at = 0, known: KnownFacts = { recorded: false }) =>
  ({
    type: 'RequestArrived',
    request: { ticket: ++tickets, requestId, days, reachedKafkaAt: at },
    known,
  }) satisfies ItemInput;

const leaving = (callId: number, answered: string[] = [], claimed = true): ItemInput => ({
  type: 'CallLeaving',
  callId,
  answered: new Set(answered),
  claimed,
});
const answered = (callId: number, answeredAt: number, outcome = accepted): ItemInput => ({
  type: 'PlaidAnswered',
  callId,
  answer: { kind: 'outcome', outcome, answeredAt },
});
const retryLater = (callId: number, dueAt: number): ItemInput => ({
  type: 'PlaidAnswered',
  callId,
  answer: {
    kind: 'retry',
    attempts: 1,
    lastError: { source: 'worker', error_code: 'PLAID_TIMEOUT', error_message: 'slow' },
    dueAt,
  } satisfies PlaidAnswer,
});
const ended = (callId: number): ItemInput => ({ type: 'CallEnded', callId });

/** Given what happened (input at time), when `input` happens at `now`: the decision and state. */
function given(...history: [ItemInput, number][]) {
  let state: ItemCalls = initialItemCalls();
  for (const [input, at] of history) state = evolve(state, decide(state, input, at, LIMITS));
  return {
    state,
    when(input: ItemInput, now: number): { decision: ItemDecision; state: ItemCalls } {
      const decision = decide(state, input, now, LIMITS);
      return { decision, state: evolve(state, decision) };
    },
  };
}

const ids = (members: readonly Member[] | undefined) => (members ?? []).map((m) => m.requestId);

/** An Item whose first call (for r1, 365 days) left at 1 s and Plaid accepted at 2 s. */
const afterOneCall = (): [ItemInput, number][] => [
  [request('r1'), 0],
  [leaving(1), 1 * S],
  [answered(1, 2 * S), 2 * S],
  [ended(1), 2 * S],
];

describe('item calls: a request arrives', () => {
  it('answers again a request whose outcome is recorded, whatever else is going on', () => {
    const { decision } = given(...afterOneCall()).when(
      request('r1', 365, 0, { recorded: true, parked: ['r9'] }),
      3 * S,
    );
    expect(decision.type).toBe('AnswerAgain');
  });

  it("is done with a request already in the Item's parked call", () => {
    const { decision } = given().when(
      request('r9', 365, 0, { recorded: false, parked: ['r9'] }),
      0,
    );
    expect(decision.type).toBe('AlreadyParked');
  });

  it.each([0, 731, 1.5, -3])('refuses days_requested %p', (days) => {
    expect(given().when(request('r1', days), 0).decision).toMatchObject({ type: 'Refuse', days });
  });

  it('given an Item that needs its user, refuses a request at once, before joining any call', () => {
    const needsUser: KnownFacts = {
      recorded: false,
      parked: ['r9'],
      needsUser: 'ITEM_LOGIN_REQUIRED',
    };
    const { decision, state } = given(...afterOneCall()).when(
      request('r2', 30, 0, needsUser),
      3 * S,
    );
    expect(decision).toMatchObject({ type: 'RefuseNeedsUser', days: 30 });
    expect(state.next).toBeUndefined();
  });

  it('given an Item that needs its user, answers a recorded request again and refuses bad days first', () => {
    const recorded = { recorded: true, needsUser: 'ITEM_LOGIN_REQUIRED' };
    expect(given().when(request('r1', 365, 0, recorded), 0).decision.type).toBe('AnswerAgain');
    const badDays = { recorded: false, needsUser: 'ITEM_LOGIN_REQUIRED' };
    expect(given().when(request('r1', 0, 0, badDays), 0).decision.type).toBe('Refuse');
  });

  it('joins the parked call when the Item has one', () => {
    const { decision, state } = given().when(
      request('r2', 30, 0, { recorded: false, parked: ['r1'] }),
      0,
    );
    expect(decision).toMatchObject({ type: 'JoinParked', member: { requestId: 'r2', days: 30 } });
    expect(state.running).toBeUndefined();
  });

  it('starts a call when nothing runs and the window has room', () => {
    const { decision, state } = given().when(request('r1', 90), 0);
    expect(decision).toMatchObject({ type: 'StartCall', call: { id: 1, days: 90 } });
    expect(ids(state.running?.members)).toEqual(['r1']);
  });

  it('joins the running call, at Plaid or not yet, when it asks for no more days', () => {
    const notLeft = given([request('r1', 90), 0]).when(request('r2', 30), 0);
    expect(notLeft.decision).toMatchObject({ type: 'JoinRunning', callId: 1 });
    expect(ids(notLeft.state.running?.members)).toEqual(['r1', 'r2']);

    const atPlaid = given([request('r1', 90), 0], [leaving(1), S]).when(request('r2', 90), 2 * S);
    expect(atPlaid.decision.type).toBe('JoinRunning');
  });

  it('joins the next call, not a slow call that left for Plaid long before it reached Kafka', () => {
    const { decision } = given([request('r1'), 0], [leaving(1), S]).when(
      request('r2', 365, 61 * S),
      61 * S,
    );
    expect(decision).toMatchObject({ type: 'JoinNext', call: { id: 2 } });
  });

  it('joins the next call when it asks for more days than the running call', () => {
    const { decision, state } = given([request('r1', 30), 0]).when(request('r2', 90), 0);
    expect(decision).toMatchObject({ type: 'JoinNext', call: { id: 2, days: 90 } });
    expect(ids(state.next?.members)).toEqual(['r2']);
    expect(ids(state.running?.members)).toEqual(['r1']);
  });

  it('joins the next call once Plaid has answered the running one, even for fewer days', () => {
    const { decision } = given(
      [request('r1', 90), 0],
      [leaving(1), S],
      [answered(1, 2 * S), 2 * S],
    ).when(request('r2', 30), 2 * S);
    expect(decision).toMatchObject({ type: 'JoinNext', call: { id: 2 } });
  });

  it('joins a waiting call, which then asks for the most days of its members', () => {
    const { decision, state } = given([request('r1', 30), 0], [request('r2', 90), 0]).when(
      request('r3', 400),
      0,
    );
    expect(decision).toMatchObject({ type: 'JoinNext', call: { id: 2, days: 400 } });
    expect(ids(state.next?.members)).toEqual(['r2', 'r3']);
  });

  it('is answered by the last call within the per-Item spacing', () => {
    const { decision } = given(...afterOneCall()).when(request('r2', 365, 20 * S), 20 * S);
    expect(decision).toMatchObject({
      type: 'AnswerFromLast',
      member: { requestId: 'r2' },
      last: { leftAt: 1 * S, answeredAt: 2 * S, leader: { requestId: 'r1' } },
    });
  });

  it('is answered by the last call, however late it is read, when it reached Kafka before the call left', () => {
    const { decision } = given(...afterOneCall()).when(request('r2', 365, 0.5 * S), 50 * S);
    expect(decision.type).toBe('AnswerFromLast');
  });

  it('gets a call of its own after the spacing when it reached Kafka after the last call left', () => {
    const { decision } = given(...afterOneCall()).when(request('r2', 365, 40 * S), 40 * S);
    expect(decision).toMatchObject({ type: 'StartCall', call: { id: 2 } });
  });

  it('is not answered by the last call when it asks for more days', () => {
    const { decision } = given(
      [request('r1', 30), 0],
      [leaving(1), S],
      [answered(1, 2 * S), 2 * S],
      [ended(1), 2 * S],
    ).when(request('r2', 90, 3 * S), 3 * S);
    expect(decision.type).not.toBe('AnswerFromLast');
  });

  it('waits for the window when the Item made its limit of calls within it', () => {
    const twoCalls: [ItemInput, number][] = [
      [request('r1', 30), 0],
      [leaving(1), 1 * S],
      [answered(1, 2 * S), 2 * S],
      [ended(1), 2 * S],
      [request('r2', 30, 31 * S), 31 * S],
      [leaving(2), 31 * S],
      [answered(2, 32 * S), 32 * S],
      [ended(2), 32 * S],
    ];
    const { decision, state } = given(...twoCalls).when(request('r3', 90, 40 * S), 40 * S);
    // The first call leaves the window 60 s after it left.
    expect(decision).toMatchObject({
      type: 'WaitForWindow',
      call: { id: 3, days: 90 },
      until: 61 * S,
    });
    expect(ids(state.next?.members)).toEqual(['r3']);
  });
});

describe('item calls: the window opens', () => {
  const waiting: [ItemInput, number][] = [
    [request('r1', 30), 0],
    [leaving(1), 1 * S],
    [answered(1, 2 * S), 2 * S],
    [ended(1), 2 * S],
    [request('r2', 30, 31 * S), 31 * S],
    [leaving(2), 31 * S],
    [answered(2, 32 * S), 32 * S],
    [ended(2), 32 * S],
    [request('r3', 90, 40 * S), 40 * S],
  ];

  it('starts the waiting call', () => {
    const { decision, state } = given(...waiting).when({ type: 'WindowOpened', callId: 3 }, 61 * S);
    expect(decision).toMatchObject({ type: 'StartCall', call: { id: 3 } });
    expect(state.next).toBeUndefined();
    expect(ids(state.running?.members)).toEqual(['r3']);
  });

  it('ignores a timer of a call that is gone', () => {
    expect(given(...waiting).when({ type: 'WindowOpened', callId: 7 }, 61 * S).decision.type).toBe(
      'Ignore',
    );
  });
});

describe('item calls: a call leaves for Plaid', () => {
  it('leaves without members answered meanwhile, asking for the days the rest want', () => {
    const { decision, state } = given(
      [request('r1', 400), 0],
      [request('r2', 30), 0],
      [request('r3', 90), 0],
    ).when(leaving(1, ['r1']), S);
    expect(decision).toMatchObject({ type: 'MakeCall', call: { days: 90, leftAt: S } });
    if (decision.type !== 'MakeCall') throw new Error('unreachable');
    expect(ids(decision.answered)).toEqual(['r1']);
    expect(ids(state.running?.members)).toEqual(['r2', 'r3']);
    expect(state.sent).toEqual([S]);
  });

  it("joins the Item's call in PostgreSQL instead when there is one (another worker's, or parked)", () => {
    const { decision, state } = given([request('r1'), 0], [request('r2'), 0]).when(
      leaving(1, ['r1'], false),
      S,
    );
    expect(decision).toMatchObject({ type: 'JoinParkedInstead' });
    if (decision.type !== 'JoinParkedInstead') throw new Error('unreachable');
    expect(ids(decision.call.members)).toEqual(['r2']);
    expect(state.running?.answered).toBe('parked');
    expect(state.sent).toEqual([]);
  });

  it('is not made when every member is answered', () => {
    const { decision, state } = given([request('r1'), 0]).when(leaving(1, ['r1']), S);
    expect(decision.type).toBe('SkipCall');
    expect(state.sent).toEqual([]);
  });
});

describe("item calls: Plaid's answer", () => {
  it('answers every member and remembers the call for later requests', () => {
    const { decision, state } = given([request('r1'), 0], [request('r2'), 0], [leaving(1), S]).when(
      answered(1, 2 * S),
      2 * S,
    );
    expect(decision).toMatchObject({ type: 'AnswerCall', outcome: accepted, answeredAt: 2 * S });
    expect(state.last).toMatchObject({ leftAt: S, answeredAt: 2 * S, leader: { requestId: 'r1' } });
  });

  it('parks the call when it is worth retrying', () => {
    const { decision, state } = given([request('r1'), 0], [leaving(1), S]).when(
      retryLater(1, 99 * S),
      2 * S,
    );
    expect(decision).toMatchObject({ type: 'ParkCall', retry: { dueAt: 99 * S } });
    expect(state.running?.answered).toBe('parked');
  });

  it('ignores an answer for a call that is not running', () => {
    expect(given().when(answered(1, S), S).decision.type).toBe('Ignore');
  });
});

describe('item calls: a call ends', () => {
  it('rests when nothing waits', () => {
    const { decision, state } = given(
      [request('r1'), 0],
      [leaving(1), S],
      [answered(1, 2 * S), 2 * S],
    ).when(ended(1), 2 * S);
    expect(decision).toMatchObject({ type: 'CallEnded', then: { type: 'Rest' } });
    expect(state.running).toBeUndefined();
  });

  it('sends the waiting call to the parked call when the ended one was parked', () => {
    const { decision, state } = given(
      [request('r1'), 0],
      [leaving(1), S],
      [retryLater(1, 99 * S), 2 * S],
      [request('r2'), 2 * S],
    ).when(ended(1), 2 * S);
    expect(decision).toMatchObject({ type: 'CallEnded', then: { type: 'NextJoinsParked' } });
    expect(state.next).toBeUndefined();
  });

  it('answers the waiting call from the ended call within the spacing', () => {
    const { decision } = given(
      [request('r1', 90), 0],
      [leaving(1), S],
      [answered(1, 2 * S), 2 * S],
      [request('r2', 30), 2 * S],
    ).when(ended(1), 3 * S);
    expect(decision).toMatchObject({ type: 'CallEnded', then: { type: 'NextAnsweredByLast' } });
  });

  it('starts the waiting call when it wants more days and the window has room', () => {
    const { decision, state } = given(
      [request('r1', 30), 0],
      [request('r2', 90), 0],
      [leaving(1), S],
      [answered(1, 2 * S), 2 * S],
    ).when(ended(1), 2 * S);
    expect(decision).toMatchObject({
      type: 'CallEnded',
      then: { type: 'StartCall', call: { id: 2 } },
    });
    expect(ids(state.running?.members)).toEqual(['r2']);
    expect(state.next).toBeUndefined();
  });

  it('makes the waiting call wait for the window when it is full', () => {
    const limitOne = { limit: 1, windowMs: 60_000 };
    let state = initialItemCalls();
    for (const [input, at] of [
      [request('r1', 30), 0],
      [request('r2', 90), 0],
      [leaving(1), S],
      [answered(1, 2 * S), 2 * S],
    ] as [ItemInput, number][]) {
      state = evolve(state, decide(state, input, at, limitOne));
    }
    expect(decide(state, ended(1), 2 * S, limitOne)).toMatchObject({
      type: 'CallEnded',
      then: { type: 'WaitForWindow', until: 61 * S },
    });
  });
});

describe('item calls: members withdrawn', () => {
  it('leave the waiting call, which goes when it has none left', () => {
    const history = given([request('r1', 30), 0], [request('r2', 90), 0]);
    const r2 = history.state.next!.members[0]!.ticket;
    const { decision, state } = history.when(
      { type: 'MembersWithdrawn', tickets: new Set([r2]) },
      S,
    );
    expect(decision).toEqual({ type: 'Withdraw', tickets: [r2], nextDropped: true });
    expect(state.next).toBeUndefined();
  });

  it('leave a running call that has not left, which then asks for what the rest want', () => {
    const history = given([request('r1', 90), 0], [request('r2', 30), 0]);
    const r1 = history.state.running!.members[0]!.ticket;
    const { decision, state } = history.when(
      { type: 'MembersWithdrawn', tickets: new Set([r1]) },
      S,
    );
    expect(decision).toMatchObject({ type: 'Withdraw', nextDropped: false });
    expect(ids(state.running?.members)).toEqual(['r2']);
    expect(state.running?.days).toBe(30);
  });

  it('stay in a call that is at Plaid: they will be answered', () => {
    const history = given([request('r1'), 0], [leaving(1), S]);
    const r1 = history.state.running!.members[0]!.ticket;
    expect(
      history.when({ type: 'MembersWithdrawn', tickets: new Set([r1]) }, S).decision.type,
    ).toBe('Ignore');
  });
});

describe('item calls: idle', () => {
  it('is idle once nothing runs or waits and its calls have left the window', () => {
    const { state } = given(...afterOneCall());
    expect(isIdle(state, 30 * S, LIMITS)).toBe(false);
    expect(isIdle(state, 61 * S, LIMITS)).toBe(true);
  });
});
