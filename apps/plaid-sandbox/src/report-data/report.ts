import type { SandboxAccount, SandboxItem } from '../items/item';
import { historyOf, transactionWindow } from './item-history';
import { TEMPLATES, addDays, toPlaidTransaction, type SandboxTransaction } from './transactions';

const USD = { iso_currency_code: 'USD', unofficial_currency_code: null } as const;
const money = (amount: number) => ({ amount: Math.round(amount * 100) / 100, ...USD });

/** An account as Plaid's BusinessAccount schema shows it. */
export function businessAccount(account: SandboxAccount) {
  const depository = account.type === 'depository';
  return {
    account_id: account.account_id,
    balances: {
      available: depository ? account.current_balance : null,
      current: account.current_balance,
      limit: account.type === 'credit' ? 5000 : null,
      ...USD,
    },
    mask: account.mask,
    name: account.name,
    official_name: null,
    type: account.type,
    subtype: account.subtype,
  };
}

/** The Item as Plaid's Item schema shows it. */
export function plaidItem(item: SandboxItem) {
  return {
    item_id: item.item_id,
    institution_id: item.institution_id,
    institution_name: item.institution_name,
    webhook: item.webhook,
    error: null,
    available_products: ['balance'],
    billed_products: ['transactions'],
    products: ['transactions'],
    consent_expiration_time: null,
    update_type: 'background',
  };
}

/** Opaque page cursors: the offset of the next transaction, base64url encoded. */
export function encodeCursor(offset: number): string {
  return Buffer.from(`o:${offset}`).toString('base64url');
}

export function decodeCursor(cursor: string): number | undefined {
  if (cursor === '') return 0;
  const match = /^o:(\d{1,9})$/.exec(Buffer.from(cursor, 'base64url').toString());
  return match ? Number(match[1]) : undefined;
}

export interface PageRequest {
  readonly daysRequested?: number;
  readonly accountIds?: readonly string[];
  readonly offset: number;
  readonly count: number;
}

/**
 * One page of the Item's transactions, most recent first, and whether more follow. Costs the
 * page's size: the window's end is found by binary search on the newest-first list.
 */
export function transactionsPage(item: SandboxItem, page: PageRequest) {
  const served = transactionWindow(item, page.daysRequested, page.accountIds);
  const end = Math.min(page.offset + page.count, served.count);
  const transactions = served.list.slice(page.offset, end).map(toPlaidTransaction);
  const accounts = page.accountIds ? new Set(page.accountIds) : undefined;
  return {
    accounts: item.accounts
      .filter((a) => !accounts || accounts.has(a.account_id))
      .map(businessAccount),
    transactions,
    total_transactions: served.count,
    item: plaidItem(item),
    next_cursor: encodeCursor(end),
    has_more: end < served.count,
  };
}

const INSIGHT_DAYS = 90;
const INSIGHT_MONTHS = 12;

/**
 * Insights over the Item's credit and depository accounts (the only types Plaid covers):
 * 90 days of end-of-day balances and 12 monthly summaries, derived from the same transactions
 * /cashflow_report/get returns.
 */
export function accountInsights(item: SandboxItem) {
  const covered = item.accounts.filter((a) => a.type === 'depository' || a.type === 'credit');
  const ids = new Set(covered.map((a) => a.account_id));
  const txns = historyOf(item).all.filter((t) => ids.has(t.account_id));
  const byDay = new Map<string, SandboxTransaction[]>();
  for (const t of txns) {
    const day = byDay.get(t.date);
    if (day) day.push(t);
    else byDay.set(t.date, [t]);
  }

  // End-of-day balance, walking back from today's: undo each later day's transactions.
  const balances = new Map<string, number>();
  let balance = covered.reduce(
    (sum, a) => sum + (a.type === 'credit' ? -a.current_balance : a.current_balance),
    0,
  );
  const days = INSIGHT_MONTHS * 31 + 1;
  for (let i = 0; i < days; i++) {
    const day = addDays(item.as_of, -i);
    balances.set(day, balance);
    for (const t of byDay.get(day) ?? []) balance += t.amount;
  }

  const historical_balances = [...Array(INSIGHT_DAYS).keys()].map((i) => {
    const date = addDays(item.as_of, -i);
    return { date, amount: Math.round((balances.get(date) ?? 0) * 100) / 100, ...USD };
  });

  const monthly_summaries = [...Array(INSIGHT_MONTHS).keys()].map((m) => {
    const end =
      m === 0 ? item.as_of : addDays(`${addMonths(item.as_of, -m + 1).slice(0, 7)}-01`, -1);
    const start = `${end.slice(0, 7)}-01`;
    const inMonth = txns.filter((t) => t.date >= start && t.date <= end);
    const dayCount = daysBetween(start, end) + 1;
    const endings = [...Array(dayCount).keys()].map((i) => balances.get(addDays(start, i)) ?? 0);
    const inflow = inMonth.filter((t) => t.amount < 0);
    const outflow = inMonth.filter((t) => t.amount > 0);
    const sum = (list: SandboxTransaction[]) => list.reduce((s, t) => s + Math.abs(t.amount), 0);
    const of = (primary: string) =>
      inMonth.filter((t) => TEMPLATES[t.template]!.primary === primary);
    return {
      start_date: start,
      end_date: end,
      starting_balance: money(balances.get(addDays(start, -1)) ?? endings[0] ?? 0),
      ending_balance: money(endings[endings.length - 1] ?? 0),
      average_daily_ending_balance: money(endings.reduce((s, b) => s + b, 0) / dayCount),
      average_daily_inflow_amount: money(sum(inflow) / dayCount),
      average_daily_outflow_amount: money(sum(outflow) / dayCount),
      average_daily_net_cashflow_amount: money((sum(inflow) - sum(outflow)) / dayCount),
      average_daily_inflow_transaction_count: Math.round((inflow.length / dayCount) * 1000) / 1000,
      average_daily_outflow_transaction_count:
        Math.round((outflow.length / dayCount) * 1000) / 1000,
      total_revenue: money(sum(inflow)),
      total_loan_payment: money(sum(of('LOAN_PAYMENTS'))),
      total_variable_expense: money(
        sum(
          outflow.filter(
            (t) =>
              !['RENT_AND_UTILITIES', 'LOAN_PAYMENTS'].includes(TEMPLATES[t.template]!.primary),
          ),
        ),
      ),
      total_payroll: money(sum(of('INCOME'))),
      nsf_transaction_count: 0,
      overdraft_transaction_count: 0,
      negative_ending_balance_day_count: endings.filter((b) => b < 0).length,
    };
  });

  return { historical_balances, monthly_summaries };
}

function addMonths(isoDate: string, months: number): string {
  const d = new Date(`${isoDate.slice(0, 7)}-01T00:00:00Z`);
  d.setUTCMonth(d.getUTCMonth() + months);
  return d.toISOString().slice(0, 10);
}

function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}
