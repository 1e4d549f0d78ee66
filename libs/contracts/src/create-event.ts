import type { EventData, EventMetadata, EventOfType, EventType } from './events';

/**
 * Builds an event. Ids and time are passed in so callers (and tests) control them; the data is
 * validated when the event is encoded for Kafka.
 */
export function createEvent<T extends EventType>(
  type: T,
  data: EventData<T>,
  metadata: EventMetadata,
): EventOfType<T> {
  return { type, data, metadata } as EventOfType<T>;
}
