import { startApp, waitForHealthy, type AppProcess } from '../support/processes';
import { workerWorld, type WorkerWorld } from '../support/refresh-worker';
import { waitFor } from '../support/wait-for';

/** The worker as its own process, killed with SIGKILL while Plaid calls are in flight. */
describe('refresh worker as a process: SIGTERM and kill -9 with calls in flight', () => {
  let world: WorkerWorld;
  const processes: AppProcess[] = [];

  beforeAll(async () => {
    world = await workerWorld({
      PLAID_SANDBOX_REFRESH_LATENCY: 'fixed:2000',
      PLAID_SANDBOX_TIME_SCALE: '1',
    });
  });
  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop('SIGKILL')));
    await world.close();
  });

  async function worker(overrides: Record<string, string> = {}) {
    const env = await world.workerEnv({ LOG_LEVEL: 'warn', ...overrides });
    const app = startApp('refresh-worker', env);
    processes.push(app);
    await waitForHealthy(app, `http://127.0.0.1:${env.REFRESH_WORKER_PORT}/health/ready`);
    return { app, url: `http://127.0.0.1:${env.REFRESH_WORKER_PORT}` };
  }

  it('loses no request, and an outcome published twice keeps its event id', async () => {
    const first = await worker();
    const items = await Promise.all(
      Array.from({ length: 60 }, () => world.sandbox.createItem({ webhook: null })),
    );
    for (const item of items) {
      const response = await fetch(`${first.url}/items/${item.item_id}/access-token`, {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${world.secrets.adminToken}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ access_token: item.access_token }),
      });
      expect(response.status).toBe(200);
    }
    const requests = await Promise.all(items.map((item) => world.request(item.item_id)));

    // Wait until Plaid has most calls in hand, then kill the worker mid-call.
    await waitFor('calls in flight at Plaid', async () => {
      const { body } = await world.sandbox.admin('GET', '/items');
      const calls = (body.items as { refresh_calls: number }[]).reduce(
        (n, i) => n + i.refresh_calls,
        0,
      );
      return calls >= 30 ? calls : undefined;
    });
    expect(await first.app.stop('SIGKILL')).toBe('SIGKILL');

    await worker();
    await Promise.all(requests.map((r) => world.outcomeOf(r.metadata.id, 60_000)));
    for (const request of requests) {
      const answers = world.outcomesFor(request.metadata.id);
      expect(answers.length).toBeGreaterThanOrEqual(1);
      expect(new Set(answers.map((a) => a.metadata.id)).size).toBe(1);
    }
  });
});
