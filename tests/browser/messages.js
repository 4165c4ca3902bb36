// Secure messages in Chromium: a practice member writes to a patient (recipient found by typing,
// the C-CDA referral note and a PDF from the fixtures picked, a third file dropped on the page),
// with <script> in the subject, body and a file name; the patient sees it unread, reads it,
// downloads the files (bytes equal) and replies; the sender sees it read and the reply. A message
// between others is not the patient's to open.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { PASSWORD, assert, BASE, context, firstSignIn, linkIn, mailTo, onPortal, run, screenshot, signIn, text } = require('./lib.js');

const FIXTURES = process.env.FIXTURES;
const HOSTILE = '<script>alert("x")</script>';
// A file name cannot hold a slash: markup without one.
const HOSTILE_NAME = '<img src=x onerror=alert(1)>.txt';

function noDialogs(page) {
  page.on('dialog', (d) => {
    throw new Error(`a script ran: a dialog said ${d.message()}`);
  });
}

async function download(page, name) {
  const href = await page.locator('.files').getByText(name, { exact: true }).getAttribute('href');
  const probe = await page.context().request.get(BASE + href);
  assert.equal(probe.headers()['content-security-policy'], "default-src 'none'", 'a file is never a page');
  assert.match(probe.headers()['content-disposition'], /^attachment; /);
  const [file] = await Promise.all([page.waitForEvent('download'), page.locator('.files').getByText(name, { exact: true }).click()]);
  return fs.readFileSync(await file.path());
}

run(async (browser) => {
  // The practice member sets a password; the patient registers from the invitation.
  const staff = await context(browser);
  const sp = await staff.newPage();
  noDialogs(sp);
  await firstSignIn(sp, process.env.ADMIN_LINK, 'ada@elm.test');
  assert.equal(await text(sp, 'h1'), 'Home');

  const patient = await context(browser);
  const pp = await patient.newPage();
  noDialogs(pp);
  await pp.goto(onPortal(linkIn(await mailTo('pat@example.org'), '/invitations/accept?code=')));
  await pp.fill('#date_of_birth', '1970-05-17');
  await pp.fill('#password', PASSWORD);
  await pp.fill('#confirm', PASSWORD);
  await pp.click('main button[type=submit]');
  assert.equal(await text(pp, 'h1'), 'You are registered');
  await signIn(pp, 'pat@example.org');
  assert.equal(await text(pp, 'h1'), 'Home');

  // Writing: the recipient found by typing, two files picked, one dropped.
  await sp.click('nav >> text=Write');
  await screenshot(sp, 'compose');
  await sp.fill('#filter', 'pat');
  assert.equal(await sp.locator('#choices li:not([hidden])').count(), 1, 'typing narrows the list');
  await sp.check('#choices li:not([hidden]) input');
  await sp.fill('#subject', `Referral ${HOSTILE}`);
  await sp.fill('#body', `Dear Pat,\nthe referral is attached. ${HOSTILE}\nDr. Lovelace`);
  await sp.setInputFiles('#files', [
    path.join(FIXTURES, 'referral-note.xml'),
    path.join(FIXTURES, 'ud-sample.pdf'),
  ]);
  const dropped = await sp.evaluateHandle((name) => {
    const d = new DataTransfer();
    d.items.add(new File(['dropped on the page'], name, { type: 'text/plain' }));
    return d;
  }, HOSTILE_NAME);
  await sp.dispatchEvent('#dropzone', 'drop', { dataTransfer: dropped });
  assert.equal(await sp.evaluate(() => document.getElementById('files').files.length), 3, 'the dropped file joins');
  assert.equal(await sp.locator('#chosen li').count(), 3);
  await screenshot(sp, 'compose-filled');
  await sp.click('main button[type=submit]');
  assert.equal(await text(sp, 'h1'), `Referral ${HOSTILE}`, 'the subject is text, not markup');
  assert.match(await text(sp, '.facts'), /Pat Doe\s*—\s*delivered, not read yet/);
  const sentUrl = sp.url();
  await screenshot(sp, 'sent-message');

  // The patient: one unread message; reading it; the files as they were sent.
  await pp.click('nav >> text=Inbox');
  assert.equal(await pp.locator('.mailbox li.unread').count(), 1);
  assert.match(await text(pp, 'main .hint'), /1 unread/);
  await screenshot(pp, 'patient-inbox');
  await pp.click('.mailbox a');
  assert.equal(await text(pp, 'h1'), `Referral ${HOSTILE}`);
  assert.match(await text(pp, '.body'), /the referral is attached\. <script>alert\("x"\)<\/script>/);
  assert.equal(await pp.locator('main script').count(), 0, 'nothing sent became a script');
  await screenshot(pp, 'patient-message');
  assert.deepEqual(await download(pp, 'referral-note.xml'), fs.readFileSync(path.join(FIXTURES, 'referral-note.xml')));
  assert.deepEqual(await download(pp, 'ud-sample.pdf'), fs.readFileSync(path.join(FIXTURES, 'ud-sample.pdf')));
  assert.equal((await download(pp, HOSTILE_NAME)).toString(), 'dropped on the page');
  assert.equal(await pp.locator('main img').count(), 0, 'the file name is text');
  const messageUrl = pp.url();
  await pp.goto(BASE + '/messages');
  assert.equal(await pp.locator('.mailbox li.unread').count(), 0, 'read now');

  // The patient replies.
  await pp.goto(messageUrl);
  await pp.click('text=Reply');
  await screenshot(pp, 'reply');
  await pp.fill('#body', 'Thank you, I will book the appointment.');
  await pp.click('main button[type=submit]');
  assert.equal(await text(pp, 'h1'), `Re: Referral ${HOSTILE}`);
  await pp.click('nav >> text=Sent');
  assert.match(await text(pp, '.mailbox .who'), /To Ada Lovelace/);
  await screenshot(pp, 'patient-sent');

  // The sender: read by the patient, and the reply unread in the inbox; a search finds it.
  await sp.goto(sentUrl);
  assert.match(await text(sp, '.facts'), /Pat Doe\s*—\s*delivered, read \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
  await sp.click('nav >> text=Inbox');
  assert.equal(await sp.locator('.mailbox li.unread').count(), 1);
  await sp.fill('#q', 'book');
  await sp.click('form[role=search] button');
  assert.equal(await sp.locator('.mailbox li').count(), 0, 'the search looks at subjects and names');
  await sp.fill('#q', 're: referral');
  await sp.click('form[role=search] button');
  assert.equal(await sp.locator('.mailbox li').count(), 1);
  await screenshot(sp, 'inbox-search');

  // A message to someone else is not the patient's: the same page as one that does not exist.
  await sp.goto(BASE + '/messages/new');
  await sp.fill('#filter', 'grace');
  await sp.check('#choices li:not([hidden]) input');
  await sp.fill('#subject', 'Staff only');
  await sp.setInputFiles('#files', path.join(FIXTURES, 'ud-sample.pdf'));
  await sp.click('main button[type=submit]');
  const other = new URL(sp.url()).pathname;
  const refused = await pp.goto(BASE + other);
  assert.equal(refused.status(), 404);
  const file = await pp.goto(BASE + other + '/attachments/1');
  assert.equal(file.status(), 404);
  assert.equal((await pp.goto(BASE + other + '/reply')).status(), 404);

  // A phone-sized screen: the inbox in one column.
  const phone = await context(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const small = await phone.newPage();
  await signIn(small, 'ada@elm.test');
  assert.equal(await text(small, 'h1'), 'Home');
  await small.goto(BASE + '/messages');
  await screenshot(small, 'phone-inbox');
  assert.ok(await small.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling');
  await phone.close();
  await staff.close();
  await patient.close();
});
