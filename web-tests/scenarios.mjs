// Browser scenarios for the Enroll web application, run by
// crates/enrolld/tests/browser.rs against a real enrolld. Playwright drives
// Debian's Chromium; each visitor signs in with the PKCS#12 credential
// Enroll issued, given to the browser context as its client certificate.
//
// Every check throws on failure; the process exits non-zero and the Rust
// test fails with this output.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(fs.readFileSync(process.env.ENROLL_BROWSER_CONFIG, 'utf8'));
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const browser = await chromium.launch({
  executablePath: cfg.chromium,
  // As root in CI: no sandbox. The rest keeps Chromium off the network
  // this machine does not have.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

const shot = (page, name, fullPage = true) =>
  page.screenshot({ path: path.join(cfg.screenshots, name), fullPage });

async function signedIn(who, viewport = DESKTOP) {
  const context = await browser.newContext({
    viewport,
    ignoreHTTPSErrors: true, // the service's certificate is from Enroll's own CA
    acceptDownloads: true,
    clientCertificates: who ? [{ origin: cfg.base, pfxPath: who.p12, passphrase: who.passphrase }] : [],
  });
  const page = await context.newPage();
  const dialogs = [];
  page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  page.on('pageerror', (e) => { throw new Error(`script error on the page: ${e}`); });
  return { context, page, dialogs };
}

/** Every visible form control must have a label a screen reader reads. */
async function checkLabels(page, where) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea')]
      .filter((el) => el.type !== 'hidden')
      .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
      .map((el) => el.outerHTML));
  assert.deepEqual(unlabelled, [], `unlabelled fields on ${where}`);
}

/** Nothing but the tables' own scroll areas may be wider than the screen. */
async function checkNoPageScroll(page, where) {
  const { scroll, width } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth, width: window.innerWidth,
  }));
  assert.ok(scroll <= width + 1, `${where} scrolls sideways at ${width}px (${scroll}px wide)`);
}

let step = 0;
const done = (what) => console.log(`ok ${++step} - ${what}`);

// 1. An organization manager signs in, filters the queue, opens a pending
//    request, approves it and sees it Approved.
{
  const { context, page } = await signedIn(cfg.manager_a);
  const resp = await page.goto(`${cfg.base}/requests`);
  assert.equal(resp.status(), 200);
  await page.getByText('Signed in as').waitFor();
  assert.match(await page.locator('.who').innerText(), /manager-a, manager of J1CFRA/);
  const rows = page.locator('table.list tbody tr');
  assert.equal(await rows.count(), 3, 'manager A sees the three pending requests of J1CFRA');
  await checkLabels(page, 'the queue');
  // Keyboard: the first Tab reaches the skip link, which jumps to the content.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.className), 'skip');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'content');
  // Filter by text, submitted from the keyboard.
  await page.getByLabel('Common name, requester or description').fill('front desk');
  await page.getByLabel('Common name, requester or description').press('Enter');
  await page.waitForURL(/q=front\+desk/);
  assert.equal(await rows.count(), 1, 'the text filter keeps the front-desk request only');
  assert.match(await rows.first().innerText(), /Office 12, front desk/);
  await shot(page, 'queue.png', false);
  done('manager A filters the queue');

  await rows.first().getByRole('link').first().click();
  await page.waitForURL(new RegExp(`/requests/${cfg.requests.front_desk}$`));
  await page.getByRole('heading', { name: /Request \d+ Pending/ }).waitFor();
  await page.getByText('Pre-issuance lint: no findings.').waitFor();
  for (const label of ['Organization', 'Locality / City', 'Email', 'Key usage', 'Extended key usage',
    'Common name', 'MAC address', 'Processor id', 'Requester', 'IP address', 'Description']) {
    await page.locator('dt', { hasText: label }).first().waitFor();
  }
  assert.match(await page.locator('main').innerText(), /\[J1CFRA, France - La Poste\]/);
  await checkLabels(page, 'the request detail');
  await shot(page, 'detail.png');
  done('manager A reads the request, the parsed CSR and the certificate preview');

  await page.getByRole('button', { name: 'Approve and issue' }).click();
  await page.waitForLoadState();
  if (!/done=approved/.test(page.url())) {
    throw new Error(`approval did not go through: ${page.url()}\n${await page.locator('main').innerText()}`);
  }
  await page.getByRole('heading', { name: /Request \d+ Approved/ }).waitFor();
  await page.getByText('the certificate is issued').waitFor();
  await page.getByRole('heading', { name: 'Issued certificate' }).waitFor();
  await shot(page, 'detail-approved.png');
  done('manager A approves and sees Approved with the issued certificate');

  // 4. A description that is markup shows as text, in the queue and the detail.
  await page.goto(`${cfg.base}/requests/${cfg.requests.xss}`);
  const detail = await page.locator('main').innerText();
  assert.ok(detail.includes('<script>alert(1)</script>'), 'the description shows as text');
  assert.equal(await page.locator('script').count(), 0, 'no script element on the page');
  await page.goto(`${cfg.base}/requests?q=${encodeURIComponent('<script>')}`);
  assert.ok((await page.locator('main').innerText()).includes('<script>alert(1)</script>'));
  assert.equal(await page.locator('script').count(), 0);
  done('a <script> description renders as text');
  await context.close();
}

// 2. Another organization's manager never sees it and is refused its URL.
{
  const { context, page } = await signedIn(cfg.manager_b);
  await page.goto(`${cfg.base}/requests?status=any`);
  const ids = await page.locator('table.list tbody tr td:first-child').allInnerTexts();
  assert.deepEqual(ids.map(Number), [cfg.requests.german], 'manager B sees Deutsche Post only');
  for (const id of [cfg.requests.front_desk, cfg.requests.warehouse]) {
    const resp = await page.goto(`${cfg.base}/requests/${id}`);
    assert.equal(resp.status(), 404);
    await page.getByText('does not exist, or is not yours to see').waitFor();
  }
  const post = await page.request.post(`${cfg.base}/requests/${cfg.requests.warehouse}/approve`, { form: { csrf: 'x' } });
  assert.equal(post.status(), 403, 'a forged approval is refused');
  done("manager B never sees J1CFRA's requests and is refused their URLs");
  await context.close();
}

// No certificate: the sign-in page explains how to get in.
{
  const { context, page } = await signedIn(null);
  const resp = await page.goto(`${cfg.base}/requests`);
  assert.equal(resp.status(), 403);
  await page.getByRole('heading', { name: 'How to sign in' }).waitFor();
  done('without a certificate the page explains the sign-in');
  await context.close();
}

// 3. The central administrator creates a package and issues a manager
//    credential, which then signs in.
{
  const { context, page } = await signedIn(cfg.admin);
  await page.goto(`${cfg.base}/packages`);
  await checkLabels(page, 'the packages page');
  await page.getByLabel('Organization').selectOption('J1CFRA');
  await page.getByLabel('Environment').fill('Test');
  await page.getByLabel('User store').check();
  const [pkg] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Create and download' }).click(),
  ]);
  assert.equal(pkg.suggestedFilename(), 'enroll-J1CFRA-Test.tar.gz');
  const pkgPath = path.join(cfg.downloads, pkg.suggestedFilename());
  await pkg.saveAs(pkgPath);
  const gz = fs.readFileSync(pkgPath);
  assert.ok(gz.length > 500 && gz[0] === 0x1f && gz[1] === 0x8b, 'the package is a gzip archive');
  await page.reload();
  assert.match(await page.locator('table.list tbody').innerText(), /J1CFRA\s+Test/);
  done('the administrator creates a client package and downloads it');

  await page.goto(`${cfg.base}/managers`);
  await checkLabels(page, 'the managers page');
  await page.getByLabel(/^Name/).fill('carol');
  await page.getByLabel('Role').selectOption('org_manager');
  await page.getByLabel('Organization (for a manager)').selectOption('J1CFRA');
  await page.getByRole('button', { name: 'Issue' }).click();
  await page.getByRole('heading', { name: 'Credential issued for carol' }).waitFor();
  const passphrase = (await page.locator('#passphrase').innerText()).trim();
  assert.match(passphrase, /^[0-9A-Z]{4}(-[0-9A-Z]{4}){4}$/);
  const [cred] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download carol.p12' }).click(),
  ]);
  const p12 = path.join(cfg.downloads, 'carol.p12');
  await cred.saveAs(p12);
  done('the administrator issues a manager credential with a one-time passphrase');
  await context.close();

  const carol = await signedIn({ p12, passphrase });
  await carol.page.goto(`${cfg.base}/requests`);
  assert.match(await carol.page.locator('.who').innerText(), /carol, manager of J1CFRA/);
  done('the new manager signs in with the downloaded credential');
  await carol.context.close();
}

// Readable at phone width: no sideways scrolling but inside the tables.
{
  const { context, page } = await signedIn(cfg.manager_a, PHONE);
  await page.goto(`${cfg.base}/requests?status=any`);
  await checkNoPageScroll(page, 'the queue');
  await shot(page, 'queue-phone.png');
  await page.goto(`${cfg.base}/requests/${cfg.requests.warehouse}`);
  await checkNoPageScroll(page, 'the request detail');
  await shot(page, 'detail-phone.png');
  done('the queue and the detail read at phone width');
  await context.close();
}

await browser.close();
console.log(`all ${step} browser checks passed`);
