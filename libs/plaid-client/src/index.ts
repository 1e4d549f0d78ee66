export * from './plaid-call-error';
export * from './plaid-client';
export * from './classify-plaid-error';
export * from './rate-limits';
export * from './shared-call-budget';
