export * from './data-source';
export * from './database-readiness';
export * from './persistence.module';
export * from './rows';
export * from './batched';
