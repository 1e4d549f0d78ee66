export * from './plaid-call-error';
export * from './plaid-client';
