/** Time as the worker's shells see it; the deciders get `now` from here, tests a clock of their own. */
export interface Clock {
  now(): number;
  /** Runs `fn` after `ms`; the timer never keeps a stopping process alive. */
  after(ms: number, fn: () => void): { cancel(): void };
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, Math.max(0, ms));
    timer.unref?.();
    return { cancel: () => clearTimeout(timer) };
  },
};
