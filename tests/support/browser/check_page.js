// Loads gpulab's web page in Debian's headless chromium and prints what it
// shows as one JSON line: the selected execution's title, the table rows,
// the output links, the charts (metric, number of points) and the log.
//   node check_page.js URL        (exit 1 with a message on failure)
'use strict';
const puppeteer = require('puppeteer-core');

async function main() {
  const url = process.argv[2];
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', e => errors.push(String(e)));
    page.on('console', m => { if (m.type() === 'error') errors.push(m.text()); });
    await page.goto(url, { waitUntil: 'load', timeout: 15000 });
    // The page marks body[data-loaded=ID] once the selected execution is drawn.
    await page.waitForSelector('body[data-loaded]', { timeout: 15000 });
    await page.waitForSelector('svg.chart path.curve', { timeout: 5000 });
    await page.waitForFunction(() => document.getElementById('log').textContent.length > 0,
                               { timeout: 5000 });
    const shown = await page.evaluate(() => ({
      title: document.getElementById('detail-title').textContent,
      rows: [...document.querySelectorAll('#executions tbody tr')].map(
          tr => [...tr.children].map(td => td.textContent)),
      links: [...document.querySelectorAll('#outputs a.output')].map(
          a => ({ text: a.textContent, href: a.getAttribute('href') })),
      charts: [...document.querySelectorAll('svg.chart')].map(svg => ({
        metric: svg.dataset.metric,
        points: Number(svg.querySelector('path.curve').dataset.points),
        d: svg.querySelector('path.curve').getAttribute('d'),
      })),
      log: document.getElementById('log').textContent,
    }));
    shown.errors = errors;
    console.log(JSON.stringify(shown));
  } finally {
    await browser.close();
  }
}

main().catch(e => {
  console.error('check_page: ' + (e && e.stack || e));
  process.exit(1);
});
