import type { FetchFailure } from '@cashflow/contracts';
import { failureFacts, type PlaidCallError } from '@cashflow/plaid-client';

/** A failure of the fetcher itself (a token it cannot read, an Item it does not know...). */
export function fetcherFailure(code: string, message: string): FetchFailure {
  return { source: 'fetcher', error_code: code, error_message: message };
}

/** A failed Plaid call as the fetcher's events tell it. */
export function fetchFailureOf(error: PlaidCallError): FetchFailure {
  const facts = failureFacts(error);
  return facts.source === 'plaid' ? facts : fetcherFailure(facts.error_code, facts.error_message);
}
