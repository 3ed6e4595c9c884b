// Loads one page in Debian's headless chromium through an HTTP proxy with
// Playwright (playwright-core: no bundled browser) and prints what happened
// as JSON on stdout: {"status": <main response status or null>,
// "text": <document.body.innerText or null>, "error": <navigation error or null>}.
//
//   node load_page.js '{"proxy": "http://127.0.0.1:P", "username": "u",
//                       "password": "p", "url": "http://127.0.0.1:B/page"}'
'use strict';

const { chromium } = require('playwright-core');

async function main() {
  const opts = JSON.parse(process.argv[2]);
  const browser = await chromium.launch({
    executablePath: opts.executablePath || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic',
      '--no-first-run', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--disable-default-apps', '--metrics-recording-only',
      // Chromium never proxies loopback unless told to: the backend is on 127.0.0.1.
      '--proxy-bypass-list=<-loopback>',
    ],
    proxy: { server: opts.proxy, username: opts.username, password: opts.password, bypass: '<-loopback>' },
  });
  const result = { status: null, text: null, error: null };
  try {
    const page = await browser.newPage();
    try {
      const response = await page.goto(opts.url, { timeout: opts.timeoutMs || 20000 });
      result.status = response ? response.status() : null;
      result.text = await page.evaluate(() => document.body ? document.body.innerText : '');
    } catch (e) {
      result.error = String(e.message || e).split('\n')[0];
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
