/**
 * Debian's chromium, driven headless by playwright-core, for tests that look at the Temporal UI as a
 * person would. Screenshots go to test-artifacts/ (kept by CI, ignored by git).
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Frame, type Page } from 'playwright-core';

export const ARTIFACTS_DIR = path.resolve(__dirname, '../../test-artifacts');

export async function launchChromium(): Promise<Browser> {
  const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    throw new Error(
      `no chromium at ${executablePath}: run \`bash scripts/setup.sh --with-browser\` (Debian package chromium) or set CHROMIUM_PATH`,
    );
  }
  // --no-sandbox: CI runs as root, where chromium's own sandbox refuses to start.
  return chromium.launch({ executablePath, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/** A full-page screenshot under test-artifacts/<dir>/<name>.png; returns its path. */
export async function screenshot(page: Page, dir: string, name: string): Promise<string> {
  const folder = path.join(ARTIFACTS_DIR, dir);
  mkdirSync(folder, { recursive: true });
  const file = path.join(folder, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** The first frame (the UI renders Markdown in frames of its own) whose text holds `text`, waited for. */
export async function frameWithText(page: Page, text: string, timeoutMs = 20_000): Promise<Frame> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const frame of page.frames()) {
      const body = await frame
        .locator('body')
        .innerText({ timeout: 1_000 })
        .catch(() => '');
      if (body.includes(text)) return frame;
    }
    if (Date.now() > deadline) throw new Error(`no frame of ${page.url()} shows "${text}" after ${timeoutMs} ms`);
    await page.waitForTimeout(250);
  }
}
