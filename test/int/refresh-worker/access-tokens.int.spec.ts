import { TOPIC_KEYS, topicName } from '@cashflow/contracts';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { collect } from '../../support/kafka';
import {
  startWorker,
  workerWorld,
  type Worker,
  type WorkerWorld,
} from '../../support/refresh-worker';

describe('refresh worker: access tokens', () => {
  let world: WorkerWorld;
  let worker: Worker;
  const tokens: string[] = [];

  beforeAll(async () => {
    world = await workerWorld();
    worker = await startWorker(world);
  });
  afterAll(async () => {
    await worker.close();
    await world.close();
  });

  const api = (itemId: string, init: RequestInit = {}) =>
    fetch(`${worker.url}/items/${encodeURIComponent(itemId)}/access-token`, init);

  it('requires a known bearer token', async () => {
    expect((await api('item-1')).status).toBe(401);
    expect(
      (await api('item-1', { headers: { authorization: 'Bearer not-the-token' } })).status,
    ).toBe(401);
    expect((await api('item-1', { headers: worker.auth })).status).toBe(404);
  });

  it('registers, describes without revealing, rotates and removes a token', async () => {
    const created = await world.sandbox.createItem({ webhook: null });
    tokens.push(created.access_token);
    const put = await api(created.item_id, {
      method: 'PUT',
      headers: worker.auth,
      body: JSON.stringify({ access_token: created.access_token }),
    });
    expect(put.status).toBe(200);
    const record = await put.json();
    expect(record).toMatchObject({
      item_id: created.item_id,
      key_id: 'test-key',
      registered_by: 'tests',
    });
    expect(JSON.stringify(record)).not.toContain(created.access_token);

    const described = await (await api(created.item_id, { headers: worker.auth })).json();
    expect(JSON.stringify(described)).not.toContain(created.access_token);

    const request = await world.request(created.item_id);
    expect((await world.outcomeOf(request.metadata.id)).type).toBe('RefreshAccepted');

    // Rotation: a new token for the same Item replaces the old one.
    const rotated = 'access-sandbox-00000000-0000-4000-8000-00000000beef';
    tokens.push(rotated);
    expect(
      (
        await api(created.item_id, {
          method: 'PUT',
          headers: worker.auth,
          body: JSON.stringify({ access_token: rotated }),
        })
      ).status,
    ).toBe(200);
    const afterRotation = await world.request(created.item_id, { days_requested: 1 });
    expect((await world.outcomeOf(afterRotation.metadata.id)).data).toMatchObject({
      error: { error_code: 'INVALID_ACCESS_TOKEN' },
    });

    expect((await api(created.item_id, { method: 'DELETE', headers: worker.auth })).status).toBe(
      204,
    );
    const afterRemoval = await world.request(created.item_id, { days_requested: 2 });
    expect((await world.outcomeOf(afterRemoval.metadata.id)).data).toMatchObject({
      error: { error_code: 'UNKNOWN_ITEM' },
    });
  });

  it('rejects something that is not an access token without echoing it', async () => {
    const response = await api('item-2', {
      method: 'PUT',
      headers: worker.auth,
      body: JSON.stringify({ access_token: 'public-sandbox-not-an-access-token' }),
    });
    expect(response.status).toBe(400);
    const text = await response.text();
    expect(text).toContain('access_token');
    expect(text).not.toContain('public-sandbox-not-an-access-token');
  });

  it('stores tokens encrypted: the database holds no token in clear', async () => {
    const client = new Client({ connectionString: world.db.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ dump: string }>(
        `SELECT string_agg(item_id || key_id || encode(iv, 'escape') || encode(ciphertext, 'escape'), '') AS dump FROM item_access_tokens`,
      );
      for (const token of tokens) expect(rows[0]?.dump ?? '').not.toContain(token);
    } finally {
      await client.end();
    }
  });

  it('never lets a token or secret reach logs or topics', async () => {
    const reader = await collect(
      world.kafka,
      TOPIC_KEYS.map((key) => topicName(key, world.prefix)),
    );
    try {
      await reader.until(3);
      await reader.toEnd();
      const topicText = reader.received
        .map(
          (r) =>
            `${r.message.key?.toString()} ${r.message.value?.toString()} ${JSON.stringify(r.message.headers ?? {})}`,
        )
        .join('\n');
      const logs = world.logLines.join('');
      expect(logs.length).toBeGreaterThan(0);
      const secrets = [
        ...tokens,
        world.secrets.adminToken,
        world.secrets.env.TOKEN_ENCRYPTION_KEYS.split(':')[1]!,
      ];
      for (const secret of secrets) {
        expect({
          secret,
          inLogs: logs.includes(secret),
          inTopics: topicText.includes(secret),
        }).toEqual({
          secret,
          inLogs: false,
          inTopics: false,
        });
      }
    } finally {
      await reader.stop();
    }
  });
});

describe('refresh worker: a token it cannot decrypt', () => {
  it('answers RefreshFailed TOKEN_UNREADABLE, not retried, instead of retrying the message forever', async () => {
    const world = await workerWorld();
    try {
      const first = await startWorker(world);
      const created = await world.sandbox.createItem({ webhook: null });
      await first.registerToken(created.item_id, created.access_token);
      await first.close();
      // A replica configured without the key the token was sealed with (a key removed too early).
      const misconfigured = await startWorker(world, {
        TOKEN_ENCRYPTION_KEYS: `other-key:${randomBytes(32).toString('base64')}`,
      });
      try {
        const request = await world.request(created.item_id);
        const outcome = await world.outcomeOf(request.metadata.id);
        expect(outcome.type).toBe('RefreshFailed');
        expect(outcome.data).toMatchObject({
          retryable: false,
          attempts: 0,
          error: { source: 'worker', error_code: 'TOKEN_UNREADABLE' },
        });
        expect(JSON.stringify(outcome)).not.toContain(created.access_token);
        expect(await world.plaidCalls(created.item_id)).toBe(0);
      } finally {
        await misconfigured.close();
      }
    } finally {
      await world.close();
    }
  });
});
