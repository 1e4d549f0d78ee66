export * from './event-publisher';
export * from './kafka-client';
export * from './kafka-readiness';
export * from './kafka.module';
export * from './topic-admin';
