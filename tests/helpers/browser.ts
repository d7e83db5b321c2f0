/** Headless Chromium for browser tests and the UI bench: Debian's package, with the flags these machines need. */
import { existsSync } from 'node:fs';

export const CHROMIUM_PATH = process.env.UPDRAFT_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-dev-shm-usage'];
export const chromiumAvailable = existsSync(CHROMIUM_PATH);
