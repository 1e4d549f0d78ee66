import { FaultsError, decideFault, describeFaults, updateFaults, type Faults } from './faults';
import { parseLatency } from './latency';

const none: Faults = {
  errorRate: 0,
  timeoutRate: 0,
  latencySpec: 'fixed:0',
  latency: parseLatency('fixed:0'),
};

describe('decideFault', () => {
  const faults = { ...none, errorRate: 0.3, timeoutRate: 0.05 };

  it('splits one draw into error, time-out and none by the rates', () => {
    expect(decideFault(faults, () => 0)).toBe('error');
    expect(decideFault(faults, () => 0.2999)).toBe('error');
    expect(decideFault(faults, () => 0.3)).toBe('timeout');
    expect(decideFault(faults, () => 0.3499)).toBe('timeout');
    expect(decideFault(faults, () => 0.35)).toBe('none');
  });

  it('lands near the rates over many calls', () => {
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const counts = { error: 0, timeout: 0, none: 0 };
    for (let i = 0; i < 20_000; i += 1) counts[decideFault(faults, random)] += 1;
    expect(counts.error / 20_000).toBeCloseTo(0.3, 1);
    expect(counts.timeout / 20_000).toBeCloseTo(0.05, 1);
  });

  it('does not draw when there are no faults', () => {
    const random = jest.fn(() => 0);
    expect(decideFault(none, random)).toBe('none');
    expect(random).not.toHaveBeenCalled();
  });
});

describe('updateFaults', () => {
  it('changes only the fields given', () => {
    const next = updateFaults(none, { error_rate: 0.3 });
    expect(describeFaults(next)).toEqual({
      error_rate: 0.3,
      timeout_rate: 0,
      refresh_latency: 'fixed:0',
    });
    const slow = updateFaults(next, { refresh_latency: 'fixed:35000' });
    expect(slow.latency).toEqual({ kind: 'fixed', ms: 35000 });
    expect(slow.errorRate).toBe(0.3);
  });

  it('names the field of a latency it cannot parse', () => {
    expect(() => updateFaults(none, { refresh_latency: 'slow' })).toThrow(FaultsError);
    expect(() => updateFaults(none, { refresh_latency: 'slow' })).toThrow(
      /^refresh_latency: "slow": use fixed:MS/,
    );
  });

  it('refuses rates that add up to more than 1', () => {
    expect(() => updateFaults(none, { error_rate: 0.7, timeout_rate: 0.4 })).toThrow(
      /timeout_rate: error_rate \+ timeout_rate must not exceed 1/,
    );
  });
});
