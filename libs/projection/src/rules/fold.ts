import type { CashflowEvent } from '@cashflow/contracts';
import {
  changesRefreshState,
  evolve,
  initialItem,
  type ItemProjection,
  type Position,
} from './refresh-projection';

/** An event and where it was read. */
export interface PositionedEvent {
  readonly event: CashflowEvent;
  readonly position: Position;
}

/** Applies one Item's events, in the order given, to its slice of the projection. */
export function foldItem(state: ItemProjection, events: Iterable<PositionedEvent>): ItemProjection {
  let next = state;
  for (const { event, position } of events) next = evolve(next, event, position);
  return next;
}

/**
 * The projection's fold: events of any Items, in the order given, into each Item's slice, in
 * memory. Events that change no refresh state make no Item, as in the store.
 */
export function foldEvents(
  events: Iterable<PositionedEvent>,
  into: Map<string, ItemProjection> = new Map(),
): Map<string, ItemProjection> {
  for (const consumed of events) {
    if (!changesRefreshState(consumed.event)) continue;
    const id = consumed.event.data.item_id;
    into.set(id, foldItem(into.get(id) ?? initialItem(id), [consumed]));
  }
  return into;
}
