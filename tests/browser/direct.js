// A member writes by Direct from the portal to dr.jones@b.test on a second node: each typed
// address verified inline ("Verifying Address", then valid, or invalid with the reason); an
// invalid address refused at sending with the draft kept; the message then goes, and its page and
// the sent items show what the recipient's HISP notifications say.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { assert, BASE, context, firstSignIn, run, screenshot, text } = require('./lib.js');

run(async (browser) => {
  const ctx = await context(browser);
  const page = await ctx.newPage();
  await firstSignIn(page, process.env.ADMIN_LINK, 'smith@a.test');
  assert.equal(await text(page, 'h1'), 'Home');

  // What the practice received by Direct: the sender verified, the document as it was sent.
  await page.click('nav >> text=Direct');
  assert.match(await text(page, '.mailbox li'), /Direct\s*Lab results <b>for<\/b> Pat\s*dr\.jones@b\.test/);
  await screenshot(page, 'direct-received');
  await page.click('.mailbox a');
  assert.equal(await text(page, 'h1'), 'Lab results <b>for</b> Pat');
  assert.match(await text(page, '.facts'), /From\s*dr\.jones@b\.test\s*verified sender/);
  // The XDM package: checked and filed, its document listed with what its metadata says.
  assert.match(await text(page, '.packages'), /summary\.zip: checked and filed, 1 document/);
  assert.match(await text(page, '.files'), /From an XDM package: Summary written by Python · Summary of episode note 34133-9 · patient PY-7/);
  await screenshot(page, 'direct-received-message');
  const [file] = await Promise.all([page.waitForEvent('download'), page.click('.files a >> text=results.pdf')]);
  assert.deepEqual(fs.readFileSync(await file.path()), fs.readFileSync(path.join(process.env.FIXTURES, 'ud-sample.pdf')));
  await page.click('text=Reply by Direct');
  assert.equal(await page.inputValue('#to_addresses'), 'dr.jones@b.test');
  assert.equal(await page.inputValue('#subject'), 'Re: Lab results <b>for</b> Pat');

  // The directory: the address the practice has exchanged mail with, written to from there.
  await page.goto(BASE + '/directory');
  await page.fill('#q', 'jones');
  await page.click('form[role=search] button');
  assert.match(await text(page, '.people li'), /dr\.jones@b\.test\s*you have exchanged mail/);
  await screenshot(page, 'directory');
  await page.click('.people a.button');
  assert.equal(await page.inputValue('#to_addresses'), 'dr.jones@b.test');

  await page.goto(BASE + '/messages/new');
  await page.fill('#to_addresses', 'dr.jones@b.test, nobody@nowhere.test');
  const verdicts = page.locator('#direct-verdicts');
  await verdicts.locator('.verdict.valid').waitFor();
  await verdicts.locator('.verdict.invalid').waitFor();
  assert.match(await text(page, '#direct-verdicts .valid'), /^Valid Direct Address: dr\.jones@b\.test$/);
  assert.match(await text(page, '#direct-verdicts .invalid'), /^Invalid Direct Address: nobody@nowhere\.test: .+/);
  await page.fill('#subject', 'Referral for Pat Doe');
  await page.fill('#body', 'Please see the attached summary.');
  await page.selectOption('#as_practice', 'dr.smith@a.test');
  await page.setInputFiles('#files', path.join(process.env.FIXTURES, 'ud-sample.pdf'));
  await screenshot(page, 'compose-direct-verifying');

  // Sent with the invalid address: refused, nothing sent, the draft kept.
  await page.click('main button[type=submit]');
  assert.match(await text(page, '[role=alert]'), /Invalid Direct Address: nobody@nowhere\.test/);
  assert.equal(await page.inputValue('#subject'), 'Referral for Pat Doe');
  await screenshot(page, 'compose-direct-refused');

  await page.fill('#to_addresses', 'dr.jones@b.test');
  await page.setInputFiles('#files', path.join(process.env.FIXTURES, 'ud-sample.pdf'));
  await page.click('main button[type=submit]');
  assert.equal(await text(page, 'h1'), 'Referral for Pat Doe');
  assert.match(await text(page, '[role=status]'), /on its way/);
  const sent = page.url();

  // The recipient's HISP answers with a processed MDN: the page says so.
  const deadline = Date.now() + 45000;
  for (;;) {
    await page.goto(sent);
    const status = await text(page, '.recipients td.status');
    if (/^processed/.test(status)) break;
    assert.ok(Date.now() < deadline, `dr.jones's HISP confirmed (still: ${status})`);
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.match(await text(page, '.recipients tbody tr'), /dr\.jones@b\.test\s*processed: the recipient's HISP received it/);
  await screenshot(page, 'direct-processed');
  await page.click('text=Back to sent messages');
  assert.match(await text(page, '.mailbox li'), /Direct\s*Referral for Pat Doe\s*To dr\.jones@b\.test/);
  assert.match(await text(page, '.mailbox .state'), /delivered/);
  await screenshot(page, 'sent-with-direct');
  await ctx.close();
});
