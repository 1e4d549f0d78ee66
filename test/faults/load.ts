import { createEvent, type RefreshRequested } from '@cashflow/contracts';
import { EventPublisher } from '@cashflow/kafka';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FaultSystem } from './fault-system';

/** How a scenario's Items are made. */
export interface ItemOptions {
  /** `mixed` (default): some need a new login, fail twice first or get a webhook error. */
  readonly mix?: 'mixed' | 'healthy';
  /** Transactions per account (two accounts): how many /get pages a fetch takes. Default 5. */
  readonly transactionsPerAccount?: number;
  /** The i-th Item's /cashflow_report/get behaviour (the sandbox's get_behaviour). */
  readonly getBehaviour?: (i: number) => Record<string, unknown> | undefined;
}

/**
 * Sandbox Items for a scenario, tokens registered with the worker. Mixed: one in twenty needs
 * the user to log in again, one fails its first two calls, one gets a webhook carrying an error;
 * the rest (all, when healthy) succeed. Returns the Item ids.
 */
export async function createItems(
  system: FaultSystem,
  count: number,
  { mix = 'mixed', transactionsPerAccount = 5, getBehaviour }: ItemOptions = {},
): Promise<string[]> {
  const behaviour = (i: number) => {
    switch (mix === 'healthy' ? -1 : i % 20) {
      case 0:
        return { kind: 'item_login_required' };
      case 1:
        return { kind: 'transient', error_code: 'INTERNAL_SERVER_ERROR', failures: 2 };
      case 2:
        return { kind: 'webhook_error', error_code: 'INSTITUTION_NOT_RESPONDING' };
      default:
        return { kind: 'success' };
    }
  };
  const ids = Array.from({ length: count }, (_, i) => `item-${String(i).padStart(5, '0')}`);
  const registerUrl = (id: string) =>
    `${system.workerUrl(system.workerNames[0]!)}/items/${encodeURIComponent(id)}/access-token`;
  await inParallel(
    ids.map((id, i) => ({ id, i })),
    16,
    async ({ id, i }) => {
      const item = await system.sandbox.createItem({
        item_id: id,
        webhook: system.webhookUrl,
        transactions_per_account: transactionsPerAccount,
        behaviour: behaviour(i),
        ...(getBehaviour?.(i) ? { get_behaviour: getBehaviour(i) } : {}),
      } as never);
      const response = await fetch(registerUrl(item.item_id), {
        method: 'PUT',
        headers: {
          authorization: `Bearer ${system.adminToken}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ access_token: item.access_token }),
      });
      if (!response.ok) throw new Error(`register ${item.item_id}: ${response.status}`);
    },
  );
  return ids;
}

/** Runs `each` over `items`, `width` at a time. */
export async function inParallel<T>(
  items: readonly T[],
  width: number,
  each: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const one = async () => {
    while (next < items.length) await each(items[next++]!);
  };
  await Promise.all(Array.from({ length: width }, one));
}

export interface Load {
  /** RefreshRequested events the broker has acknowledged so far. */
  readonly published: () => number;
  /** Resolves once every request is acknowledged: their ids and how often a send was retried. */
  readonly done: Promise<{ readonly ids: string[]; readonly sendRetries: number }>;
}

/**
 * Publishes `requests` RefreshRequested events over `items`, `perSecond` a second, as an upstream
 * service would: a batch the broker does not acknowledge is sent again (its events keep their
 * ids) until it is, so a broker outage delays requests but loses none.
 */
export function startLoad(
  system: FaultSystem,
  items: readonly string[],
  requests: number,
  perSecond: number,
  days: readonly number[] = [30, 90, 365, 730],
): Load {
  const publisher = new EventPublisher(system.kafka, system.prefix);
  const ids: string[] = [];
  let sendRetries = 0;
  const tickMs = 100;
  const perTick = Math.max(1, Math.round((perSecond * tickMs) / 1000));

  const done = (async () => {
    let sent = 0;
    let n = 0;
    while (sent < requests) {
      const started = Date.now();
      const batch: RefreshRequested[] = [];
      for (let i = 0; i < perTick && sent + batch.length < requests; i += 1, n += 1) {
        batch.push(
          createEvent(
            'RefreshRequested',
            {
              item_id: items[(n * 7919) % items.length]!,
              days_requested: days[n % days.length]!,
              requested_by: 'fault-scenario',
            },
            {
              id: randomUUID(),
              source: 'urn:cashflow-refresh:fault-scenarios',
              time: new Date().toISOString(),
            },
          ),
        );
      }
      for (;;) {
        try {
          await publisher.connect();
          await publisher.publish(...batch);
          break;
        } catch {
          sendRetries += 1;
          await publisher.disconnect().catch(() => undefined);
          await sleep(500);
        }
      }
      sent += batch.length;
      ids.push(...batch.map((e) => e.metadata.id));
      await sleep(Math.max(0, tickMs - (Date.now() - started)));
    }
    await publisher.disconnect();
    return { ids, sendRetries };
  })();
  return { published: () => ids.length, done };
}
