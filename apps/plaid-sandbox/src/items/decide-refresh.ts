import type { PlaidErrorCode } from '../plaid-api/plaid-errors';
import { isCapitalOneWithoutDepository } from './item-store';
import type { SandboxItem } from './item';

/** What the sandbox does with a refresh call that reached an Item. */
export type RefreshDecision =
  | { readonly kind: 'fail'; readonly code: PlaidErrorCode }
  | { readonly kind: 'accept'; readonly webhookError: PlaidErrorCode | null }
  | { readonly kind: 'hang' };

/**
 * The Item's answer to its `callNumber`-th refresh call (1-based). Product rules come first, as
 * at Plaid: a disabled product or an unsupported Capital One Item fails whatever its behaviour.
 */
export function decideRefresh(item: SandboxItem, callNumber: number): RefreshDecision {
  if (!item.cashflow_report_enabled) return { kind: 'fail', code: 'PRODUCT_NOT_ENABLED' };
  if (isCapitalOneWithoutDepository(item)) return { kind: 'fail', code: 'PRODUCTS_NOT_SUPPORTED' };
  const behaviour = item.behaviour;
  switch (behaviour.kind) {
    case 'success':
      return { kind: 'accept', webhookError: null };
    case 'item_login_required':
      return { kind: 'fail', code: 'ITEM_LOGIN_REQUIRED' };
    case 'institution_down':
      return { kind: 'fail', code: 'INSTITUTION_DOWN' };
    case 'transient':
      return callNumber <= behaviour.failures
        ? { kind: 'fail', code: behaviour.error_code }
        : { kind: 'accept', webhookError: null };
    case 'timeout':
      return { kind: 'hang' };
    case 'webhook_error':
      return { kind: 'accept', webhookError: behaviour.error_code };
    default: {
      const unhandled: never = behaviour;
      throw new Error(`unhandled behaviour ${JSON.stringify(unhandled)}`);
    }
  }
}
