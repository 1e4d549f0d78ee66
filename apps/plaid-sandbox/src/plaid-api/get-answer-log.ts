/** One /cashflow_report/get answer the sandbox served: whose data, and how fresh. */
export interface GetAnswer {
  readonly request_id: string;
  readonly item_id: string;
  readonly last_successful_update_time: string;
  readonly answered_at: string;
}

/**
 * The /cashflow_report/get answers served, for `cashflow-refresh check --sandbox`: a report the
 * report fetcher found by polling must name one of them. Keeps the newest `remember`; the
 * oldest beyond that are forgotten (and counted, so a checker can refuse an incomplete log).
 */
export class GetAnswerLog {
  private answers: GetAnswer[] = [];
  private forgottenCount = 0;

  constructor(private readonly remember = Number.POSITIVE_INFINITY) {}

  get forgotten(): number {
    return this.forgottenCount;
  }

  add(answer: GetAnswer): void {
    this.answers.push(answer);
    // Dropped in chunks, so a full log costs amortised O(1) per answer.
    if (this.answers.length > this.remember * 1.1) {
      const drop = this.answers.length - this.remember;
      this.answers = this.answers.slice(drop);
      this.forgottenCount += drop;
    }
  }

  list(itemId?: string): GetAnswer[] {
    return itemId === undefined
      ? [...this.answers]
      : this.answers.filter((a) => a.item_id === itemId);
  }
}
