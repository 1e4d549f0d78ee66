/**
 * The `ce_source` of the events this system publishes, by producer. Consumers use them to tell
 * who published an event (e.g. `check` accepts reports only from the ingress).
 */
export const WORKER_SOURCE = 'urn:cashflow-refresh:refresh-worker';
export const INGRESS_SOURCE = 'urn:cashflow-refresh:webhook-ingress';
export const CLI_SOURCE = 'urn:cashflow-refresh:cli';
export const FETCHER_SOURCE = 'urn:cashflow-refresh:report-fetcher';
