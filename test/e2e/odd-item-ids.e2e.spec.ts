import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSystem, type System } from '../support/system';

/** Item ids are opaque strings to us: these must travel through every part unchanged. */
const ODD_IDS = [
  `item'; DROP TABLE item_refresh_state; --`,
  `item" OR 1=1 --`,
  'item-ünïcödé-项目-🚀',
  'item/with/slashes?and=query#frag',
  'item with spaces and %2F',
];

describe('SQL-looking and unicode item ids end to end', () => {
  let system: System;

  beforeAll(async () => {
    system = await startSystem();
  });
  afterAll(async () => {
    await system.stop();
  });

  it.each(ODD_IDS)('%s: refresh -> ready in SQL, the read API and the CLI', async (itemId) => {
    await system.item({ item_id: itemId });
    const run = await system.cli(['refresh', itemId, '--wait']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);

    const row = await system.itemState(itemId, (r) => r.status === 'ready');
    expect(row.item_id).toBe(itemId);
    const api = await fetch(
      `${system.projectorUrl}/items/${encodeURIComponent(itemId)}/refresh-state`,
      { headers: { authorization: `Bearer ${system.readToken}` } },
    );
    expect(api.status).toBe(200);
    expect(await api.json()).toMatchObject({ item_id: itemId, status: 'ready' });
    const status = await system.cli(['status', itemId]);
    expect(status.stdout).toContain(`${itemId}: ready`);
  });

  it('leaves every table in place and the invariants holding', async () => {
    const [tables] = await system.rows(
      `SELECT count(*)::int AS n FROM information_schema.tables
        WHERE table_schema = 'public' AND table_name IN ('item_refresh_state', 'refresh_requests')`,
    );
    expect(tables).toEqual({ n: 2 });
    const logs = mkdtempSync(join(tmpdir(), 'cashflow-odd-ids-'));
    try {
      const check = await system.check(logs);
      expect(check.stdout).toContain('all hold');
      expect(check.code).toBe(0);
    } finally {
      rmSync(logs, { recursive: true, force: true });
    }
  });
});
