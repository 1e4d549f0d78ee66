export * from './logger';
export * from './metrics';
export * from './nest-logger';
export * from './observability.module';
export * from './readiness';
export * from './start-app';
export * from './bearer-auth.guard';
export * from './tracing';
