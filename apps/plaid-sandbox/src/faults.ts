import { z } from 'zod';
import { LatencySpecError, parseLatency, type LatencyDistribution } from './latency';

/**
 * Faults the sandbox injects into /cashflow_report/refresh, whatever the Item's behaviour: a
 * share of calls answered 500 INTERNAL_SERVER_ERROR (Plaid's API_ERROR), a share held open and
 * never answered, and the latency of every call. Set at start-up (PLAID_SANDBOX_FAULT_* and
 * PLAID_SANDBOX_REFRESH_LATENCY) or at run time with PUT /sandbox/faults, so a scenario can make
 * Plaid misbehave and then recover.
 */
export interface Faults {
  readonly errorRate: number;
  readonly timeoutRate: number;
  /** As written, e.g. `fixed:35000`; `latency` is its parsed form. */
  readonly latencySpec: string;
  readonly latency: LatencyDistribution;
}

export type FaultDecision = 'error' | 'timeout' | 'none';

/** One draw decides a call: below errorRate it errors, the next timeoutRate hangs, the rest go on. */
export function decideFault(faults: Faults, random: () => number = Math.random): FaultDecision {
  if (faults.errorRate === 0 && faults.timeoutRate === 0) return 'none';
  const draw = random();
  if (draw < faults.errorRate) return 'error';
  if (draw < faults.errorRate + faults.timeoutRate) return 'timeout';
  return 'none';
}

const rate = z.number().min(0).max(1);

/** The body of PUT /sandbox/faults; a field left out keeps its value. */
export const FaultsUpdate = z.strictObject({
  error_rate: rate.optional(),
  timeout_rate: rate.optional(),
  refresh_latency: z.string().optional(),
});

export type FaultsUpdate = z.output<typeof FaultsUpdate>;

export class FaultsError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** The faults after `update`; throws FaultsError naming the field when it does not make sense. */
export function updateFaults(current: Faults, update: FaultsUpdate): Faults {
  let latency = current.latency;
  if (update.refresh_latency !== undefined) {
    try {
      latency = parseLatency(update.refresh_latency);
    } catch (error) {
      if (error instanceof LatencySpecError)
        throw new FaultsError('refresh_latency', error.message);
      throw error;
    }
  }
  const next: Faults = {
    errorRate: update.error_rate ?? current.errorRate,
    timeoutRate: update.timeout_rate ?? current.timeoutRate,
    latencySpec: update.refresh_latency ?? current.latencySpec,
    latency,
  };
  if (next.errorRate + next.timeoutRate > 1) {
    throw new FaultsError('timeout_rate', 'error_rate + timeout_rate must not exceed 1');
  }
  return next;
}

export function describeFaults(faults: Faults) {
  return {
    error_rate: faults.errorRate,
    timeout_rate: faults.timeoutRate,
    refresh_latency: faults.latencySpec,
  };
}
