// The contacts a practice shares documents with, kept in the portal (issue 24): a member adds one
// (a bad mobile number refused first, what was typed kept), changes and removes it.
'use strict';

const { assert, context, firstSignIn, run, screenshot, text } = require('./lib.js');

run(async (browser) => {
  const ctx = await context(browser);
  const page = await ctx.newPage();
  await firstSignIn(page, process.env.ADMIN_LINK, 'ada@elm.test');

  // Sharing is off until the admin sets it up: then a code by text, and only clinicians share.
  await page.click('nav >> text=Sharing');
  assert.match(await text(page, 'main .actions .hint'), /does not share documents by link/);
  await page.click('text=Sharing contacts');
  assert.match(await text(page, 'main p.hint'), /does not share documents by link/);
  await page.click('nav >> text=Practice');
  await page.check('#share-sms');
  await page.check('#share-clinician');
  await page.uncheck('#share-admin');
  await page.click('text=Save sharing');
  assert.match(await text(page, '[role=status]'), /Sharing is saved/);
  assert.equal(await page.isChecked('#share-sms'), true);
  await screenshot(page, 'practice-sharing');
  await page.click('nav >> text=Sharing');
  await page.click('text=Sharing contacts');
  assert.match(await text(page, 'main p.hint'), /the admin role may not share documents/);
  await screenshot(page, 'sharing-contacts-empty');
  await page.fill('#name', 'Jane Roe');
  await page.fill('#organization', 'Springfield Law');
  await page.fill('#email', 'Jane@Law.example');
  await page.fill('#mobile', '555');
  await page.click('main form.stack button[type=submit]');
  assert.match(await text(page, '[role=alert] li'), /^Mobile: A mobile number in E\.164 form/);
  assert.equal(await page.inputValue('#organization'), 'Springfield Law', 'what was typed is kept');
  await page.fill('#mobile', '+1 217 555 0100');
  await page.click('main form.stack button[type=submit]');
  assert.match(await text(page, '[role=status]'), /Jane Roe is added/);
  assert.match(await text(page, '.people li'), /Jane Roe\s*Springfield Law · jane@law\.example · \+12175550100/);
  await screenshot(page, 'sharing-contacts');

  await page.click('.people a.button');
  await page.fill('#email', 'jroe@law.example');
  await page.click('main form.stack button[type=submit]');
  assert.match(await text(page, '.people li'), /jroe@law\.example/);
  await page.click('.people button:has-text("Remove")');
  assert.match(await text(page, '[role=status]'), /removed/);
  assert.equal(await page.locator('.people li').count(), 0);
  await ctx.close();
});
