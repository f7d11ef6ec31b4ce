// saem's web page (GET /) in headless Chromium, against a live saem serve with an API key and a
// decoder: the key prompt, a streamed answer with numbered citations that open the cited passage,
// search with a mode, upload and delete, all without a request leaving the machine.
// Usage: node page.mjs BASE_URL API_KEY
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';

const [base, apiKey] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const context = await browser.newContext();
  // Self-contained: any request for another host is a failure (and is not let out).
  const outside = [];
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') return route.continue();
    outside.push(url.href);
    return route.abort();
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // The first calls are refused for want of a key: that 401 is expected.
  page.on('console', (m) => m.type() === 'error' && !m.text().includes('401') && errors.push(m.text()));
  page.setDefaultTimeout(20000);

  const response = await page.goto(base + '/');
  assert.equal(response.status(), 200);
  assert.match(response.headers()['content-security-policy'], /connect-src 'self'/);

  // The server wants a key: the page asks for it, then loads the collections.
  await page.getByTestId('api-key').waitFor({ state: 'visible' });
  await page.getByTestId('api-key').fill(apiKey);
  await page.getByTestId('save-key').click();
  await page.waitForFunction(() => document.querySelector('[data-testid=collection]').options.length > 0);
  assert.equal(await page.getByTestId('collection').inputValue(), 'default');

  // Ask: the answer streams in, with numbered citations; a citation opens its passage.
  await page.getByTestId('question').fill('How does BM25 rank documents?');
  await page.getByTestId('ask').click();
  await page.waitForFunction(() => document.querySelector('[data-testid=ask-state]').textContent === 'Done').catch(async (e) => {
    throw new Error(`no answer: status '${await page.getByTestId('status').textContent()}', answer '${await page.getByTestId('answer').textContent()}', errors ${errors}`);
  });
  const answer = await page.getByTestId('answer').textContent();
  assert.ok(answer.trim().length > 0, 'an answer');
  const citations = page.getByTestId('citation');
  assert.ok((await citations.count()) >= 1, 'numbered citations');
  assert.equal(await page.getByTestId('passage').isVisible(), false);
  await citations.first().click();
  const passage = await page.getByTestId('passage').textContent();
  assert.match(passage, /ranking\.html/);
  assert.match(passage, /BM25 scores a document/);

  // Search, with a mode.
  await page.getByRole('button', { name: 'Search', exact: true }).first().click();
  await page.getByTestId('query').fill('write-ahead log checkpoint');
  await page.getByTestId('mode').selectOption('lexical');
  await page.getByTestId('search').click();
  await page.getByTestId('hit').first().waitFor();
  assert.match(await page.getByTestId('hits').textContent(), /lexical/);
  assert.match(await page.getByTestId('hit').first().textContent(), /write-ahead-logging\.md/);

  // Documents: upload one, find it, delete it.
  await page.getByRole('button', { name: 'Documents' }).click();
  await page.getByTestId('document').first().waitFor();
  const before = await page.getByTestId('document').count();
  await page.getByTestId('upload-file').setInputFiles({ name: 'geysers.md', mimeType: 'text/markdown', buffer: Buffer.from('# Geysers\n\nGeysers erupt hot water.') });
  await page.getByTestId('upload').click();
  const row = page.getByTestId('document').filter({ hasText: 'geysers.md' });
  await row.waitFor();
  assert.equal(await page.getByTestId('document').count(), before + 1);
  await row.getByTestId('delete').click();
  await row.waitFor({ state: 'detached' });
  assert.equal(await page.getByTestId('document').count(), before);

  assert.deepEqual(outside, [], 'no request leaves the machine');
  assert.deepEqual(errors, [], 'no script errors');
  console.log('page: key prompt, streamed answer with citations and passages, search, upload and delete: ok');
} finally {
  await browser.close();
}
