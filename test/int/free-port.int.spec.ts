import { freePort } from '../support/ports';

/**
 * The tests start several servers on ports chosen a moment before: two of them given the same
 * port leaves one app answering for another (a fault scenario once registered its tokens with
 * the webhook ingress instead of the worker and got 404).
 */
describe('freePort', () => {
  it('never hands out the same port twice in one process', async () => {
    const ports: number[] = [];
    // The kernel picks a random free port each time; a few thousand picks repeat one for sure.
    for (let i = 0; i < 3000; i++) ports.push(await freePort());
    const repeated = ports.filter((port, i) => ports.indexOf(port) !== i);
    expect(repeated).toEqual([]);
  });

  it('hands out distinct ports to calls made at the same time', async () => {
    const ports = await Promise.all(Array.from({ length: 50 }, () => freePort()));
    expect(new Set(ports).size).toBe(50);
  });
});
