// Loads one page in Debian's headless chromium through an HTTP proxy with
// Playwright (playwright-core: no bundled browser) and prints what happened
// as JSON on stdout: {"status": <main response status or null>,
// "text": <document.body.innerText or null>, "error": <navigation error or null>}.
//
//   node load_page.js '{"proxy": "http://127.0.0.1:P", "username": "u",
//                       "password": "p", "url": "http://127.0.0.1:B/page"}'
//
// With "urls" in place of "url", loads each in turn, each in a new tab of
// one browser context (so they share its kept-alive proxy connections), and
// prints {"pages": [...]}, one such result per URL. Without "username", the browser answers the
// proxy's challenge on its own (Negotiate from the ticket in KRB5CCNAME).
// "args": further chromium switches.
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
      ...(opts.args || []),
    ],
    proxy: { server: opts.proxy, username: opts.username, password: opts.password, bypass: '<-loopback>' },
  });
  const pages = [];
  try {
    const context = await browser.newContext();
    for (const url of opts.urls || [opts.url]) {
      // A tab each, so that a failed load's error page cannot interrupt the next.
      const page = await context.newPage();
      pages.push(await load(page, url, opts.timeoutMs || 20000));
      await page.close();
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(opts.urls ? { pages } : pages[0]) + '\n');
}

async function load(page, url, timeout) {
  const result = { status: null, text: null, error: null };
  try {
    const response = await page.goto(url, { timeout });
    result.status = response ? response.status() : null;
    result.text = await page.evaluate(() => document.body ? document.body.innerText : '');
  } catch (e) {
    result.error = String(e.message || e).split('\n')[0];
  }
  return result;
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
