import { hashSeed, randomId, seededRandom } from './random';

/** How far back the generated history reaches: Plaid's maximum days_requested. */
export const HISTORY_DAYS = 730;

export interface Template {
  readonly name: string;
  readonly merchant: string | null;
  /** Plaid's sign: positive is money out of the account, negative is money in. */
  readonly min: number;
  readonly max: number;
  readonly primary: string;
  readonly detailed: string;
  readonly channel: 'online' | 'in store' | 'other';
  readonly weight: number;
}

export const TEMPLATES: readonly Template[] = [
  {
    name: 'ACME CORP PAYROLL',
    merchant: null,
    min: -3200,
    max: -2400,
    primary: 'INCOME',
    detailed: 'INCOME_WAGES',
    channel: 'other',
    weight: 2,
  },
  {
    name: 'Sunnyside Apartments Rent',
    merchant: 'Sunnyside Apartments',
    min: 1450,
    max: 1450,
    primary: 'RENT_AND_UTILITIES',
    detailed: 'RENT_AND_UTILITIES_RENT',
    channel: 'online',
    weight: 1,
  },
  {
    name: 'Green Grocer #112',
    merchant: 'Green Grocer',
    min: 18,
    max: 160,
    primary: 'FOOD_AND_DRINK',
    detailed: 'FOOD_AND_DRINK_GROCERIES',
    channel: 'in store',
    weight: 8,
  },
  {
    name: 'Corner Coffee',
    merchant: 'Corner Coffee',
    min: 3,
    max: 9,
    primary: 'FOOD_AND_DRINK',
    detailed: 'FOOD_AND_DRINK_COFFEE',
    channel: 'in store',
    weight: 10,
  },
  {
    name: 'City Power & Light',
    merchant: 'City Power',
    min: 60,
    max: 140,
    primary: 'RENT_AND_UTILITIES',
    detailed: 'RENT_AND_UTILITIES_GAS_AND_ELECTRICITY',
    channel: 'online',
    weight: 1,
  },
  {
    name: 'AutoLoan Co Payment',
    merchant: 'AutoLoan Co',
    min: 389,
    max: 389,
    primary: 'LOAN_PAYMENTS',
    detailed: 'LOAN_PAYMENTS_CAR_PAYMENT',
    channel: 'online',
    weight: 1,
  },
  {
    name: 'Metro Transit',
    merchant: 'Metro Transit',
    min: 2.75,
    max: 40,
    primary: 'TRANSPORTATION',
    detailed: 'TRANSPORTATION_PUBLIC_TRANSIT',
    channel: 'in store',
    weight: 5,
  },
  {
    name: 'Online Marketplace',
    merchant: 'Online Marketplace',
    min: 12,
    max: 240,
    primary: 'GENERAL_MERCHANDISE',
    detailed: 'GENERAL_MERCHANDISE_ONLINE_MARKETPLACES',
    channel: 'online',
    weight: 5,
  },
  {
    name: 'Refund Online Marketplace',
    merchant: 'Online Marketplace',
    min: -80,
    max: -10,
    primary: 'TRANSFER_IN',
    detailed: 'TRANSFER_IN_ACCOUNT_TRANSFER',
    channel: 'online',
    weight: 1,
  },
];
const TOTAL_WEIGHT = TEMPLATES.reduce((sum, t) => sum + t.weight, 0);

/** A template index, drawn by weight. */
export function pickTemplate(random: () => number): number {
  let r = random() * TOTAL_WEIGHT;
  for (let i = 0; i < TEMPLATES.length; i++) {
    r -= TEMPLATES[i]!.weight;
    if (r < 0) return i;
  }
  return 0;
}

export function addDays(isoDate: string, days: number): string {
  const d = new Date(`${isoDate}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

/** What generated transactions depend on: the Item's id, seed, accounts, size and as-of day. */
export interface HistorySpec {
  readonly item_id: string;
  readonly seed: number;
  readonly accounts: readonly { readonly account_id: string }[];
  readonly transactions_per_account: number;
  readonly as_of: string;
}

/**
 * A transaction as the sandbox keeps it: only what varies, so an Item of thousands stays small in
 * memory. `toPlaidTransaction` gives the full CashflowReportTransaction.
 */
export interface SandboxTransaction {
  readonly transaction_id: string;
  readonly account_id: string;
  /** Index into TEMPLATES: merchant, category and payment channel. */
  readonly template: number;
  /** For a pending transaction the day it happened; for a posted one the day it posted. */
  readonly date: string;
  readonly authorized_date: string;
  readonly amount: number;
  readonly name: string;
  readonly pending: boolean;
  /** On a posted transaction that replaced a pending one: the pending one's id. */
  readonly pending_transaction_id: string | null;
}

/** A template's amount range drawn once, in cents. */
export function drawAmount(template: Template, random: () => number): number {
  return Math.round((template.min + (template.max - template.min) * random()) * 100) / 100;
}

// Same order as String.prototype.localeCompare (ECMA-402 defines one by the other), built once.
const compareIds = new Intl.Collator().compare;

/** Plaid's order, which "will not shift": newest date first, then by transaction_id. */
export function newestFirst(a: SandboxTransaction, b: SandboxTransaction): number {
  if (a.date !== b.date) return a.date < b.date ? 1 : -1;
  return compareIds(a.transaction_id, b.transaction_id);
}

/**
 * The index of the first transaction dated before `from` in a newest-first list, i.e. how many
 * are dated `from` or later. Binary search: pages cost their size, not the Item's.
 */
export function countSince(list: readonly SandboxTransaction[], from: string): number {
  let low = 0;
  let high = list.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (list[mid]!.date >= from) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * Generation 0: `transactions_per_account` posted transactions per account over the HISTORY_DAYS
 * days up to as_of, newest first. The same spec always gives the same transactions.
 */
export function initialTransactions(spec: HistorySpec): SandboxTransaction[] {
  const days = daysBefore(spec.as_of);
  // Bucketed by day (0 = as_of), so sorting is only the ties within a day.
  const byDay: SandboxTransaction[][] = Array.from({ length: HISTORY_DAYS }, () => []);
  spec.accounts.forEach((account, index) => {
    const random = seededRandom(hashSeed(`${spec.item_id}:${spec.seed}:${index}`));
    for (let n = 0; n < spec.transactions_per_account; n++) {
      const back = Math.floor(random() * HISTORY_DAYS);
      const template = pickTemplate(random);
      const amount = drawAmount(TEMPLATES[template]!, random);
      byDay[back]!.push({
        transaction_id: randomId(random),
        account_id: account.account_id,
        template,
        date: days[back]!,
        authorized_date: days[back]!,
        amount,
        name: TEMPLATES[template]!.name,
        pending: false,
        pending_transaction_id: null,
      });
    }
  });
  const all: SandboxTransaction[] = [];
  for (const day of byDay) {
    if (day.length > 1) day.sort(newestFirst);
    for (const t of day) all.push(t);
  }
  return all;
}

/** The HISTORY_DAYS dates up to `asOf`, newest first; shared by every Item of that as-of day. */
function daysBefore(asOf: string): readonly string[] {
  let days = dayLists.get(asOf);
  if (!days) {
    const start = Date.parse(`${asOf}T00:00:00Z`);
    days = Array.from({ length: HISTORY_DAYS }, (_, back) =>
      new Date(start - back * 86_400_000).toISOString().slice(0, 10),
    );
    if (dayLists.size >= 64) dayLists.clear();
    dayLists.set(asOf, days);
  }
  return days;
}
const dayLists = new Map<string, readonly string[]>();

// Shared by every rendered transaction: the sandbox knows no locations or payment details.
const NO_LOCATION = Object.freeze({
  address: null,
  city: null,
  region: null,
  postal_code: null,
  country: null,
  lat: null,
  lon: null,
  store_number: null,
});
const NO_PAYMENT_META = Object.freeze({
  reference_number: null,
  ppd_id: null,
  payee: null,
  by_order_of: null,
  payer: null,
  payment_method: null,
  payment_processor: null,
  reason: null,
});
const CATEGORIES = TEMPLATES.map((t) =>
  Object.freeze({ primary: t.primary, detailed: t.detailed, confidence_level: 'HIGH' }),
);

/** The transaction as Plaid's CashflowReportTransaction schema shows it. */
export function toPlaidTransaction(t: SandboxTransaction) {
  const template = TEMPLATES[t.template]!;
  return {
    account_id: t.account_id,
    amount: t.amount,
    iso_currency_code: 'USD' as string | null,
    unofficial_currency_code: null,
    check_number: null,
    date: t.date,
    location: NO_LOCATION,
    name: t.name,
    merchant_name: template.merchant,
    original_description: t.name.toUpperCase(),
    payment_meta: NO_PAYMENT_META,
    pending: t.pending,
    pending_transaction_id: t.pending_transaction_id,
    account_owner: null,
    transaction_id: t.transaction_id,
    logo_url: null,
    website: null,
    authorized_date: t.authorized_date,
    authorized_datetime: null,
    // The posting time: none yet for a pending transaction, and not known for posted ones.
    datetime: null,
    payment_channel: template.channel,
    personal_finance_category: CATEGORIES[t.template]!,
    transaction_code: null,
  };
}

export type PlaidTransaction = ReturnType<typeof toPlaidTransaction>;
