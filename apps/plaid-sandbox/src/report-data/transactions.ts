import type { SandboxAccount, SandboxItem } from '../items/item';
import { hashSeed, randomId, seededRandom } from './random';

/** How far back the generated history reaches: Plaid's maximum days_requested. */
export const HISTORY_DAYS = 730;

interface Template {
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

const TEMPLATES: readonly Template[] = [
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

function pick(random: () => number): Template {
  let r = random() * TOTAL_WEIGHT;
  for (const t of TEMPLATES) {
    r -= t.weight;
    if (r < 0) return t;
  }
  return TEMPLATES[0]!;
}

export function addDays(isoDate: string, days: number): string {
  const d = new Date(`${isoDate}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

export type Transaction = ReturnType<typeof toTransaction>;

function toTransaction(account: SandboxAccount, t: Template, random: () => number, date: string) {
  const amount = Math.round((t.min + (t.max - t.min) * random()) * 100) / 100;
  const id = randomId(random);
  return {
    account_id: account.account_id,
    amount,
    iso_currency_code: 'USD' as string | null,
    unofficial_currency_code: null,
    check_number: null,
    date,
    location: {
      address: null,
      city: null,
      region: null,
      postal_code: null,
      country: null,
      lat: null,
      lon: null,
      store_number: null,
    },
    name: t.name,
    merchant_name: t.merchant,
    original_description: t.name.toUpperCase(),
    payment_meta: {
      reference_number: null,
      ppd_id: null,
      payee: null,
      by_order_of: null,
      payer: null,
      payment_method: null,
      payment_processor: null,
      reason: null,
    },
    pending: false,
    pending_transaction_id: null,
    account_owner: null,
    transaction_id: id,
    logo_url: null,
    website: null,
    authorized_date: date,
    authorized_datetime: null,
    datetime: null,
    payment_channel: t.channel,
    personal_finance_category: {
      primary: t.primary,
      detailed: t.detailed,
      confidence_level: 'HIGH',
    },
    transaction_code: null,
  };
}

const cache = new WeakMap<SandboxItem, Transaction[]>();

/**
 * Every transaction of the Item over the last HISTORY_DAYS days before its as-of day, most
 * recent first. Deterministic: the same item_id and seed give the same transactions.
 */
export function transactionsOf(item: SandboxItem): Transaction[] {
  const cached = cache.get(item);
  if (cached) return cached;
  const all: Transaction[] = [];
  item.accounts.forEach((account, index) => {
    const random = seededRandom(hashSeed(`${item.item_id}:${item.seed}:${index}`));
    for (let n = 0; n < item.transactions_per_account; n++) {
      const daysBack = Math.floor(random() * HISTORY_DAYS);
      all.push(toTransaction(account, pick(random), random, addDays(item.as_of, -daysBack)));
    }
  });
  all.sort((a, b) =>
    a.date === b.date ? a.transaction_id.localeCompare(b.transaction_id) : a.date < b.date ? 1 : -1,
  );
  cache.set(item, all);
  return all;
}
