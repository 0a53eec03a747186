// Debian's Chromium driven by playwright-core, for the browser tests. Returns undefined when no
// browser is installed (the caller skips, saying so); .ci/run installs one.
import { existsSync } from 'node:fs';
import type { Browser } from 'playwright-core';

export const CHROMIUM = process.env.WF_CHROMIUM ?? '/usr/bin/chromium';

export async function launchChromium(): Promise<Browser | undefined> {
  if (!existsSync(CHROMIUM)) return undefined;
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    // no background traffic: this machine's network is closed
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export const NO_BROWSER = `no browser at ${CHROMIUM} (apt-get install chromium, or set WF_CHROMIUM)`;
