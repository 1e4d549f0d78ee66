import { DeliveryLedger } from './delivery-ledger';

describe('DeliveryLedger', () => {
  let now = 0;
  const clock = () => now;
  const keepAll = () => true;

  beforeEach(() => {
    now = 1_000;
  });

  it('runs the first copy and shares its result with copies arriving meanwhile', async () => {
    const ledger = new DeliveryLedger<string>(10, clock);
    let release: (value: string) => void = () => undefined;
    let runs = 0;
    const handle = () => {
      runs += 1;
      return new Promise<string>((resolve) => (release = resolve));
    };
    const first = ledger.once('d1', 5_000, handle, keepAll);
    const second = ledger.once('d1', 5_000, handle, keepAll);
    release('stored');
    expect(await first).toEqual({ result: 'stored', duplicate: false });
    expect(await second).toEqual({ result: 'stored', duplicate: true });
    expect(await ledger.once('d1', 5_000, handle, keepAll)).toEqual({
      result: 'stored',
      duplicate: true,
    });
    expect(runs).toBe(1);
  });

  it('forgets a delivery that was not stored, so the next copy is handled anew', async () => {
    const ledger = new DeliveryLedger<number>(10, clock);
    const stored = (status: number) => status < 500;
    expect((await ledger.once('d', 5_000, () => Promise.resolve(503), stored)).result).toBe(503);
    expect(await ledger.once('d', 5_000, () => Promise.resolve(200), stored)).toEqual({
      result: 200,
      duplicate: false,
    });
  });

  it('forgets a delivery whose handling threw', async () => {
    const ledger = new DeliveryLedger<number>(10, clock);
    await expect(
      ledger.once('d', 5_000, () => Promise.reject(new Error('x')), keepAll),
    ).rejects.toThrow('x');
    expect((await ledger.once('d', 5_000, () => Promise.resolve(1), keepAll)).duplicate).toBe(
      false,
    );
  });

  it('forgets deliveries once they expire, and the oldest beyond its capacity', async () => {
    const ledger = new DeliveryLedger<number>(2, clock);
    const one = () => Promise.resolve(1);
    await ledger.once('a', 2_000, one, keepAll);
    await ledger.once('b', 9_000, one, keepAll);
    now = 2_500;
    await ledger.once('c', 9_000, one, keepAll);
    expect(ledger.size).toBe(2); // a expired
    await ledger.once('d', 9_000, one, keepAll);
    expect(ledger.size).toBe(2); // b evicted
    expect((await ledger.once('b', 9_000, one, keepAll)).duplicate).toBe(false);
    expect((await ledger.once('d', 9_000, one, keepAll)).duplicate).toBe(true);
  });
});
