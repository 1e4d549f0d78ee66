import { Batched } from './batched';

/** A run that records the batches it was given and answers when `release` is called. */
function recordingRun() {
  const batches: number[][] = [];
  const waiting: (() => void)[] = [];
  const run = (inputs: readonly number[]) => {
    batches.push([...inputs]);
    return new Promise<number[]>((resolve) =>
      waiting.push(() => resolve(inputs.map((i) => i * 10))),
    );
  };
  const release = () => waiting.splice(0).forEach((answer) => answer());
  return { batches, run, release };
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('Batched', () => {
  it('writes the first call at once and gathers the calls made meanwhile', async () => {
    const { batches, run, release } = recordingRun();
    const batched = new Batched(run, { concurrency: 1 });
    const answers = [1, 2, 3].map((i) => batched.call(i));
    expect(batches).toEqual([[1]]);
    release();
    await turn();
    expect(batches).toEqual([[1], [2, 3]]);
    release();
    await expect(Promise.all(answers)).resolves.toEqual([10, 20, 30]);
  });

  it('with gatherTurn, puts the calls of one turn of the event loop in one batch', async () => {
    const { batches, run, release } = recordingRun();
    const batched = new Batched(run, { concurrency: 2, gatherTurn: true });
    const answers = [1, 2, 3].map((i) => batched.call(i));
    expect(batches).toEqual([]);
    await turn();
    expect(batches).toEqual([[1, 2, 3]]);
    release();
    await expect(Promise.all(answers)).resolves.toEqual([10, 20, 30]);
  });

  it('bounds a batch by weight, taking a heavier-than-allowed input alone', async () => {
    const { batches, run, release } = recordingRun();
    const batched = new Batched(run, {
      concurrency: 4,
      gatherTurn: true,
      weigh: (i) => i,
      maxWeight: 10,
    });
    const answers = [4, 5, 2, 30, 1].map((i) => batched.call(i));
    await turn();
    expect(batches).toEqual([[4, 5], [2], [30], [1]]);
    release();
    await expect(Promise.all(answers)).resolves.toEqual([40, 50, 20, 300, 10]);
  });

  it('fails every call of a batch whose run fails, and goes on with the next', async () => {
    let calls = 0;
    const batched = new Batched(
      (inputs: readonly number[]) => {
        calls += 1;
        return calls === 1 ? Promise.reject(new Error('refused')) : Promise.resolve([...inputs]);
      },
      { concurrency: 1, gatherTurn: true },
    );
    const first = [1, 2].map((i) => batched.call(i));
    await turn();
    const second = batched.call(3);
    await expect(Promise.allSettled(first)).resolves.toEqual([
      { status: 'rejected', reason: new Error('refused') },
      { status: 'rejected', reason: new Error('refused') },
    ]);
    await expect(second).resolves.toBe(3);
  });
});
