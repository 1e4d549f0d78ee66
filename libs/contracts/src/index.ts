export * from './asyncapi';
export * from './create-event';
export * from './dead-letter';
export * from './decode-result';
export * from './events';
export * from './json-schema';
export * from './kafka-binding';
export * from './topics';
