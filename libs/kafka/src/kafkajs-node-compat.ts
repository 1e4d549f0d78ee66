/**
 * kafkajs 2.2.4 (unmaintained since 2023) on Node 22+: its request queue arms a timer with
 * `throttledUntil - Date.now()` when nothing is throttled or pending, a large negative delay.
 * Node has always run such a timer after 1 ms; since Node 23 it also prints a
 * TimeoutNegativeWarning on stderr, from every process with a Kafka connection (the CLI's
 * included). This replaces that one method with the same logic and the delay Node would use,
 * so nothing changes but the warning. `kafkajs-node-compat.unit.spec.ts` fails when a kafkajs
 * release changes the method, so the patch is looked at again then.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- kafkajs's internals have no types */
const RequestQueue = require('kafkajs/src/network/requestQueue') as {
  prototype: RequestQueueInternals;
};
/* eslint-enable @typescript-eslint/no-require-imports */

interface RequestQueueInternals {
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  pending: unknown[];
  checkPendingRequests: () => void;
  scheduleCheckPendingRequests: (this: RequestQueueInternals) => void;
}

/** kafkajs's own interval for pending requests when nothing is throttled. */
const CHECK_PENDING_REQUESTS_INTERVAL = 10;

/** kafkajs's own method, kept to tell whether a new release changed it (see the test). */
export const KAFKAJS_SCHEDULE = RequestQueue.prototype.scheduleCheckPendingRequests;
export const KAFKAJS_SCHEDULE_SOURCE = String(KAFKAJS_SCHEDULE);

let patched = false;

export function patchKafkajsForNode(): void {
  if (patched) return;
  patched = true;
  RequestQueue.prototype.scheduleCheckPendingRequests = function (this: RequestQueueInternals) {
    let scheduleAt = this.throttledUntil - Date.now();
    if (!this.throttleCheckTimeoutId) {
      if (this.pending.length > 0) {
        scheduleAt = scheduleAt > 0 ? scheduleAt : CHECK_PENDING_REQUESTS_INTERVAL;
      }
      this.throttleCheckTimeoutId = setTimeout(
        () => {
          this.throttleCheckTimeoutId = null;
          this.checkPendingRequests();
        },
        Math.max(1, scheduleAt),
      );
    }
  };
}
