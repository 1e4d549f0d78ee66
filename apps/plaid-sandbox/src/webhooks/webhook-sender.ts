import type { Logger } from '@cashflow/observability';
import { createHash, randomUUID } from 'node:crypto';
import { request } from 'undici';
import type { WebhookKeyRing } from './key-ring';
import { nextRetryDelay, parseRetryAfter, type RetryPolicy } from './retry-schedule';

export interface DeliveryAttempt {
  readonly attempt: number;
  readonly at: string;
  /** HTTP status, or null when the receiver did not answer in time or could not be reached. */
  readonly status: number | null;
  readonly error: string | null;
  readonly duration_ms: number;
  /**
   * SHA-256 (hex) of the attempt's Plaid-Verification JWT: the delivery id the webhook ingress
   * gives what it stores, so a stored event can be traced to the attempt that carried it.
   */
  readonly jwt_sha256: string | null;
}

export interface Delivery {
  readonly delivery_id: string;
  readonly item_id: string;
  readonly url: string;
  readonly webhook_code: string;
  readonly body: Record<string, unknown>;
  readonly created_at: string;
  state: 'pending' | 'delivered' | 'gave_up';
  attempts: DeliveryAttempt[];
  next_attempt_at: string | null;
}

/**
 * Delivers webhooks the way Plaid does: signed (a fresh Plaid-Verification JWT per attempt),
 * acknowledged only by a 200 within the time-out, retried on Plaid's schedule otherwise.
 */
export class WebhookSender {
  private readonly deliveries: Delivery[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private forgottenCount = 0;

  constructor(
    private readonly keys: WebhookKeyRing,
    private readonly policy: RetryPolicy,
    private readonly timeScale: number,
    private readonly logger: Logger,
    /** Deliveries kept for GET /sandbox/webhooks; beyond it the oldest finished are forgotten. */
    private readonly remember = Number.POSITIVE_INFINITY,
  ) {}

  /** Finished deliveries dropped from the log to stay within `remember`. */
  get forgotten(): number {
    return this.forgottenCount;
  }

  send(itemId: string, url: string, body: Record<string, unknown>): Delivery {
    const delivery: Delivery = {
      delivery_id: randomUUID(),
      item_id: itemId,
      url,
      webhook_code: String(body.webhook_code),
      body,
      created_at: new Date().toISOString(),
      state: 'pending',
      attempts: [],
      next_attempt_at: new Date().toISOString(),
    };
    this.deliveries.push(delivery);
    if (this.deliveries.length > this.remember) {
      const finished = this.deliveries.findIndex((d) => d.state !== 'pending');
      if (finished >= 0) {
        this.deliveries.splice(finished, 1);
        this.forgottenCount += 1;
      }
    }
    void this.attempt(delivery);
    return delivery;
  }

  list(itemId?: string): Delivery[] {
    return this.deliveries.filter((d) => itemId === undefined || d.item_id === itemId);
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private async attempt(delivery: Delivery): Promise<void> {
    if (this.closed) return;
    const started = Date.now();
    // Plaid pretty-prints its webhook bodies; receivers must hash the bytes they got.
    const bytes = Buffer.from(JSON.stringify(delivery.body, null, 2));
    let status: number | null = null;
    let error: string | null = null;
    let retryAfter: string | undefined;
    let jwtSha256: string | null = null;
    try {
      const jwt = await this.keys.sign(bytes);
      jwtSha256 = createHash('sha256').update(jwt).digest('hex');
      const response = await request(delivery.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'plaid-verification': jwt },
        body: bytes,
        signal: AbortSignal.timeout(this.policy.timeoutMs),
      });
      status = response.statusCode;
      const header = response.headers['retry-after'];
      retryAfter = Array.isArray(header) ? header[0] : header;
      await response.body.dump();
    } catch (e) {
      error =
        (e as Error).name === 'TimeoutError'
          ? 'no answer within the time-out'
          : (e as Error).message;
    }
    const attempt = delivery.attempts.length + 1;
    delivery.attempts.push({
      attempt,
      at: new Date(started).toISOString(),
      status,
      error,
      duration_ms: Date.now() - started,
      jwt_sha256: jwtSha256,
    });
    if (status === 200) {
      delivery.state = 'delivered';
      delivery.next_attempt_at = null;
      return;
    }
    const elapsed = Date.now() - Date.parse(delivery.attempts[0]!.at);
    const retryAfterMs =
      status === 429 ? scaled(parseRetryAfter(retryAfter, Date.now()), this.timeScale) : undefined;
    const delay = nextRetryDelay(this.policy, attempt, elapsed, retryAfterMs);
    if (delay === null || this.closed) {
      delivery.state = 'gave_up';
      delivery.next_attempt_at = null;
      this.logger.warn(
        { delivery_id: delivery.delivery_id, attempts: attempt },
        'webhook delivery given up',
      );
      return;
    }
    delivery.next_attempt_at = new Date(Date.now() + delay).toISOString();
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.attempt(delivery);
    }, delay);
    this.timers.add(timer);
  }
}

function scaled(ms: number | undefined, scale: number): number | undefined {
  return ms === undefined ? undefined : ms * scale;
}
