/**
 * Plaid's webhook delivery policy: an answer other than 200, or none within 10 s, is retried;
 * the first retry comes after 30 s and each delay is 4x the last, for up to 24 h. A 429 with
 * Retry-After is honoured, up to 4 h. Every duration here is multiplied by the time scale.
 */
export interface RetryPolicy {
  readonly timeoutMs: number;
  readonly firstDelayMs: number;
  readonly factor: number;
  readonly giveUpAfterMs: number;
  readonly maxRetryAfterMs: number;
}

/**
 * `timeoutMs` and `giveUpAfterMs`, when given, are used as they are: a receiver's answer window
 * is not a delay, and a test that needs webhooks given up soon sets the give-up time alone.
 */
export function plaidRetryPolicy(
  timeScale: number,
  timeoutMs?: number,
  giveUpAfterMs?: number,
): RetryPolicy {
  return {
    timeoutMs: timeoutMs ?? 10_000 * timeScale,
    firstDelayMs: 30_000 * timeScale,
    factor: 4,
    giveUpAfterMs: giveUpAfterMs ?? 24 * 3600_000 * timeScale,
    maxRetryAfterMs: 4 * 3600_000 * timeScale,
  };
}

/**
 * The delay before attempt `attempt + 1`, or null when Plaid would give up. `elapsedMs` is the
 * time since the first attempt; `retryAfterMs` comes from a 429's Retry-After (already scaled).
 */
export function nextRetryDelay(
  policy: RetryPolicy,
  attempt: number,
  elapsedMs: number,
  retryAfterMs?: number,
): number | null {
  const delay =
    retryAfterMs !== undefined
      ? Math.min(retryAfterMs, policy.maxRetryAfterMs)
      : policy.firstDelayMs * policy.factor ** (attempt - 1);
  return elapsedMs + delay > policy.giveUpAfterMs ? null : delay;
}

/** Retry-After is either seconds or an HTTP date; returns ms from `now`, or undefined. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
