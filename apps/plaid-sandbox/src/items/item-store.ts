import { randomBytes, randomUUID } from 'node:crypto';
import { hashSeed, randomId, seededRandom } from '../report-data/random';
import { CAPITAL_ONE, ItemInput, type SandboxAccount, type SandboxItem } from './item';

/** Plaid ids are 37-character alphanumerics. */
function plaidLikeId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(37)].map((b) => alphabet[b % alphabet.length]).join('');
}

export class ItemConflictError extends Error {}

/** The sandbox's Items, in memory: by access token for the Plaid API, by item_id for the rest. */
export class ItemStore {
  private readonly byToken = new Map<string, SandboxItem>();
  private readonly byId = new Map<string, SandboxItem>();

  constructor(
    private readonly defaultWebhook: string | null,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Validates input (throws a ZodError naming the field) and creates the Item. */
  create(raw: unknown): SandboxItem {
    const input = ItemInput.parse(raw);
    const item_id = input.item_id ?? plaidLikeId();
    const access_token = input.access_token ?? `access-sandbox-${randomUUID()}`;
    if (this.byId.has(item_id)) throw new ItemConflictError(`item_id ${item_id} already exists`);
    if (this.byToken.has(access_token)) throw new ItemConflictError('access_token already exists');
    const now = this.now();
    const accounts: SandboxAccount[] = input.accounts.map((a, i) => ({
      // Derived from the Item and seed, so generated data names the same accounts on every run.
      account_id:
        a.account_id ?? randomId(seededRandom(hashSeed(`${item_id}:${input.seed}:account:${i}`))),
      name: a.name,
      type: a.type,
      subtype: a.subtype,
      mask: a.mask ?? String(1000 + ((i * 1117) % 9000)).slice(-4),
      current_balance: a.current_balance,
    }));
    const item: SandboxItem = {
      item_id,
      access_token,
      institution_id: input.institution_id,
      institution_name: input.institution_name,
      accounts,
      cashflow_report_enabled: input.cashflow_report_enabled,
      behaviour: input.behaviour,
      webhook: input.webhook === undefined ? this.defaultWebhook : input.webhook,
      seed: input.seed,
      transactions_per_account: input.transactions_per_account,
      as_of: now.toISOString().slice(0, 10),
      created_at: now.toISOString(),
      refresh_calls: 0,
      last_successful_update_time: now.toISOString(),
      generation: 0,
      get_behaviour: input.get_behaviour,
      get_calls: 0,
      insights_calls: 0,
    };
    this.byId.set(item_id, item);
    this.byToken.set(access_token, item);
    return item;
  }

  byAccessToken(token: string): SandboxItem | undefined {
    return this.byToken.get(token);
  }

  byItemId(itemId: string): SandboxItem | undefined {
    return this.byId.get(itemId);
  }

  list(): SandboxItem[] {
    return [...this.byId.values()];
  }

  remove(itemId: string): boolean {
    const item = this.byId.get(itemId);
    if (!item) return false;
    this.byId.delete(itemId);
    this.byToken.delete(item.access_token);
    return true;
  }
}

/** Plaid documents that Capital One Items holding only non-depository accounts cannot refresh. */
export function isCapitalOneWithoutDepository(item: SandboxItem): boolean {
  return item.institution_id === CAPITAL_ONE && !item.accounts.some((a) => a.type === 'depository');
}
