/**
 * The Temporal UI as an operator sees it, through Debian's chromium: a migration waiting at the go-live
 * gate with writes frozen says so in its details, with who may decide and the exact command; in the
 * workflow list a rolled-back migration (Failed) is told apart from one that went live (Completed).
 * The README's queries find them. Screenshots: test-artifacts/temporal-ui/.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveUpdate, rejectUpdate } from '../../signals';
import { migrationResult } from '../../signals/outcome';
import { frameWithText, launchChromium, screenshot } from '../helpers/browser';
import { SHAPES_ONLY, openSandbox, type Sandbox, untilStatus } from '../helpers/harness';

let sandbox: Sandbox;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  sandbox = await openSandbox('ui', { scale: SHAPES_ONLY });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1400, height: 1200 } });
});

afterAll(async () => {
  await browser?.close();
  await sandbox?.close();
});

async function listed(query: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of sandbox.client.workflow.list({ query })) ids.push(wf.workflowId);
  return ids;
}

// The page of a running workflow keeps polling its history, so "network idle" may never come: the page's
// load, then the waits for what must show.
const PAGE_LOAD = { waitUntil: 'load', timeout: 60_000 } as const;

describe('the Temporal UI', () => {
  it('shows the frozen banner and the approve command at the go-live gate, and tells a rollback from a success in the list', async () => {
    const ui = sandbox.env.TEMPORAL_UI_URL.replace(/\/$/, '');
    const namespace = sandbox.env.TEMPORAL_NAMESPACE || 'default';

    // 1. At the go-live gate, writes frozen.
    const gated = await sandbox.start(
      sandbox.input({ downtimeBudget: '30s', gates: { 'go-live': { timeout: '10m', approvers: ['alice'] } } }),
    );
    await untilStatus(gated, (s) => s.pendingGate?.gate === 'go-live', 'the go-live gate');
    expect(await listed(`ExecutionStatus = 'Running' AND WritesFrozen = true AND WorkflowId = '${gated.workflowId}'`)).toEqual([
      gated.workflowId,
    ]);
    expect(
      await listed(`WorkflowId = '${gated.workflowId}' AND AwaitingApproval = true AND (GateApprovers = 'alice' OR GateApprovers IS NULL)`),
    ).toEqual([gated.workflowId]);

    await page.goto(`${ui}/namespaces/${namespace}/workflows/${gated.workflowId}`, PAGE_LOAD);
    await page.getByText('User Metadata', { exact: true }).first().click();
    const details = await frameWithText(page, 'WRITES FROZEN since');
    const text = await details.locator('body').innerText();
    expect(text).toMatch(/WRITES FROZEN since \d\d:\d\d:\d\d UTC/);
    expect(text).toContain('Waiting for the go-live gate');
    expect(text).toContain('May decide: alice.');
    expect(text).toContain(`npm run cli -- approve ${gated.workflowId} --gate go-live --approver alice`);
    const summary = await frameWithText(page, ' -> ');
    expect(await summary.locator('body').innerText()).toContain('(dump-restore, downtime budget 30s)');
    await screenshot(page, 'temporal-ui', 'at-go-live-gate-details');
    await page.getByText('Timeline', { exact: true }).first().click();
    await page
      .getByText(/go-live gate: no decision by \d\d:\d\d:\d\d UTC means no-go/)
      .first()
      .waitFor({ timeout: 20_000 });
    await page.getByText('FREEZE the source: writes refused from here').first().waitFor();
    await screenshot(page, 'temporal-ui', 'at-go-live-gate-timeline');

    // 2. A no-go: rolled back, closed as Failed.
    await gated.executeUpdate(rejectUpdate, { args: [{ approver: 'alice', gate: 'go-live', reason: 'not tonight' }] });
    expect((await migrationResult(gated)).outcome).toBe('rolled-back');

    // 3. The same databases again, approved ahead: it goes live, Completed.
    const live = await sandbox.start(sandbox.input());
    await live.executeUpdate(approveUpdate, { args: [{ approver: 'bob', gate: 'go-live' }] });
    expect((await migrationResult(live)).outcome).toBe('completed');

    // 4. The list: one Failed, one Completed.
    const query = `WorkflowId = '${gated.workflowId}' OR WorkflowId = '${live.workflowId}'`;
    await page.goto(`${ui}/namespaces/${namespace}/workflows?query=${encodeURIComponent(query)}`, PAGE_LOAD);
    const row = (workflowId: string) => page.locator('tr', { hasText: workflowId }).first();
    await row(gated.workflowId).waitFor({ timeout: 20_000 });
    await row(live.workflowId).waitFor({ timeout: 20_000 });
    expect((await row(gated.workflowId).innerText()).toLowerCase()).toContain('failed');
    expect((await row(live.workflowId).innerText()).toLowerCase()).toContain('completed');
    await screenshot(page, 'temporal-ui', 'list-rolled-back-and-live');

    // The README's queries.
    const weekAgo = new Date(Date.now() - 7 * 86_400_000).toISOString();
    const rolledBack = await listed(`WorkflowType = 'migrateDatabase' AND MigrationOutcome = 'rolled-back' AND CloseTime > '${weekAgo}'`);
    expect(rolledBack).toContain(gated.workflowId);
    expect(rolledBack).not.toContain(live.workflowId);
    expect(await listed(`WorkflowId = '${gated.workflowId}' AND WritesFrozen = true`)).toEqual([]);
  });
});
