import { z } from 'zod';
import { DEFAULT_GET_BEHAVIOUR, GetBehaviour } from './get-behaviour';

/** Capital One: Plaid refuses Cashflow Report refreshes for its Items with only non-depository accounts. */
export const CAPITAL_ONE = 'ins_128026';

/** How an Item's Plaid answers its refresh calls; set when the Item is created or later. */
export const Behaviour = z.discriminatedUnion('kind', [
  z
    .object({ kind: z.literal('success') })
    .describe('Accept every refresh; the webhook reports no error.'),
  z.object({ kind: z.literal('item_login_required') }).describe('ITEM_LOGIN_REQUIRED (400).'),
  z.object({ kind: z.literal('institution_down') }).describe('INSTITUTION_DOWN (400).'),
  z
    .object({
      kind: z.literal('transient'),
      error_code: z.enum(['INTERNAL_SERVER_ERROR', 'PLANNED_MAINTENANCE']),
      failures: z.number().int().min(1).max(1000),
    })
    .describe(
      'The first `failures` refresh calls fail with the code (500 or 503), later ones succeed.',
    ),
  z.object({ kind: z.literal('timeout') }).describe('Refresh calls are never answered.'),
  z
    .object({
      kind: z.literal('webhook_error'),
      error_code: z.enum([
        'INSTITUTION_NOT_RESPONDING',
        'INSTITUTION_DOWN',
        'ITEM_LOGIN_REQUIRED',
        'INTERNAL_SERVER_ERROR',
      ]),
    })
    .describe('Refresh calls succeed, but CASHFLOW_REPORT_READY carries this error.'),
]);
export type Behaviour = z.infer<typeof Behaviour>;

export const AccountInput = z.strictObject({
  account_id: z.string().min(1).max(64).optional(),
  name: z.string().min(1).max(100),
  type: z.enum(['depository', 'credit', 'loan', 'investment', 'other']),
  subtype: z.string().min(1).nullable().default(null),
  mask: z
    .string()
    .regex(/^\d{4}$/)
    .optional(),
  current_balance: z.number().default(1000),
});

/** POST /sandbox/items and the seed file: an Item to create. */
export const ItemInput = z.strictObject({
  item_id: z.string().min(1).max(256).optional(),
  access_token: z
    .string()
    .regex(/^access-sandbox-[A-Za-z0-9-]+$/)
    .optional(),
  institution_id: z.string().min(1).default('ins_109508'),
  institution_name: z.string().min(1).default('First Platypus Bank'),
  accounts: z
    .array(AccountInput)
    .min(1)
    .max(20)
    .default([
      { name: 'Plaid Checking', type: 'depository', subtype: 'checking', current_balance: 4200 },
      { name: 'Plaid Credit Card', type: 'credit', subtype: 'credit card', current_balance: 410 },
    ]),
  cashflow_report_enabled: z.boolean().default(true),
  behaviour: Behaviour.default({ kind: 'success' }),
  get_behaviour: GetBehaviour.default(DEFAULT_GET_BEHAVIOUR),
  webhook: z.string().url().nullable().optional(),
  /** Seeds the generated transactions: same Item id and seed, same data. */
  seed: z.number().int().min(0).default(1),
  transactions_per_account: z.number().int().min(0).max(5000).default(120),
});
export type ItemInput = z.input<typeof ItemInput>;

export interface SandboxAccount {
  readonly account_id: string;
  readonly name: string;
  readonly type: 'depository' | 'credit' | 'loan' | 'investment' | 'other';
  readonly subtype: string | null;
  readonly mask: string;
  readonly current_balance: number;
}

export interface SandboxItem {
  readonly item_id: string;
  readonly access_token: string;
  readonly institution_id: string;
  readonly institution_name: string;
  readonly accounts: readonly SandboxAccount[];
  readonly cashflow_report_enabled: boolean;
  behaviour: Behaviour;
  readonly webhook: string | null;
  readonly seed: number;
  readonly transactions_per_account: number;
  /** The generated history ends on this day (the Item's creation day), so pages stay stable. */
  readonly as_of: string;
  readonly created_at: string;
  /** Refresh calls that reached the Item (after credentials, validation and rate limits). */
  refresh_calls: number;
  last_successful_update_time: string;
  /** How many times the data has changed (see report-data/evolution.ts); 0 at creation. */
  generation: number;
  get_behaviour: GetBehaviour;
  /** /cashflow_report/get calls naming the Item with valid credentials, whatever the answer. */
  get_calls: number;
  /** /cashflow_report/insights/get calls, counted the same way. */
  insights_calls: number;
}

/** What the sandbox API shows of an Item: everything, since it is a test double. */
export function describeItem(item: SandboxItem) {
  return { ...item, accounts: [...item.accounts], get_behaviour: { ...item.get_behaviour } };
}

/**
 * Moves the Item's data on by `generations` and its last_successful_update_time to `now`, or a
 * millisecond past the last one when the clock has not moved, so a client always sees it move.
 */
export function advanceItem(item: SandboxItem, generations: number, now: Date): void {
  item.generation += generations;
  const previous = Date.parse(item.last_successful_update_time);
  item.last_successful_update_time = new Date(Math.max(now.getTime(), previous + 1)).toISOString();
}
