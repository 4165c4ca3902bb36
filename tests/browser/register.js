// Registering from an invitation's link in Chromium, the three paths: a patient (two wrong dates
// of birth, then the right one; another patient's invitation locks at the third wrong date), a
// colleague at another practice (who describes it, a wrong ZIP code first), a colleague joining the
// practice (who confirms it); then a registered patient accepts a second practice's invitation by
// its code while signed in.
'use strict';

const { PASSWORD, assert, BASE, context, linkIn, mailTo, onPortal, run, screenshot, signIn, text } = require('./lib.js');

async function open(browser, address) {
  const ctx = await context(browser);
  const page = await ctx.newPage();
  const notice = await mailTo(address, /Elm Clinic invites you/);
  const link = linkIn(notice, '/invitations/accept?code=');
  const code = notice.match(/Your invitation code: *([0-9A-Z-]{14})/)[1];
  await page.goto(onPortal(link));
  return { ctx, page, code };
}

async function passwords(page) {
  await page.fill('#password', PASSWORD);
  await page.fill('#confirm', PASSWORD);
}

/// Signs in and lands on the home page.
async function signInHome(page, email) {
  await signIn(page, email);
  assert.equal(await text(page, 'h1'), 'Home');
}

run(async (browser) => {
  // A patient: the date of birth twice wrong, then right.
  const patient = await open(browser, 'ada@example.org');
  const page = patient.page;
  assert.equal(await text(page, 'h1'), 'Elm Clinic invites you');
  assert.match(await text(page, 'main p'), /as their patient/);
  await screenshot(page, 'register-patient');
  for (const [date, left] of [['1970-05-18', '2 tries left'], ['1971-01-01', '1 try left']]) {
    await page.fill('#date_of_birth', date);
    await passwords(page);
    await page.click('main button[type=submit]');
    assert.match(await text(page, '[role=alert]'), new RegExp(`does not match.*${left}`));
  }
  await screenshot(page, 'register-patient-wrong-date');
  await page.fill('#date_of_birth', '1970-05-17');
  await passwords(page);
  await page.click('main button[type=submit]');
  assert.equal(await text(page, 'h1'), 'You are registered');
  assert.match(await text(page, '[role=status]'), /connected with Elm Clinic/);
  await screenshot(page, 'registered-patient');
  await page.click('a.button');
  await page.fill('#email', 'ada@example.org');
  await page.fill('#password', PASSWORD);
  await page.click('main button[type=submit]');
  assert.equal(await text(page, 'h1'), 'Home');
  const used = await page.goto(onPortal(linkIn(await mailTo('ada@example.org', /Elm Clinic/), '/invitations/accept?code=')));
  assert.equal(used.status(), 200, 'signed in, the link asks for the code to accept with the account');

  // Another patient's invitation: the third wrong date locks it.
  const locked = await open(browser, 'bob@example.org');
  for (const date of ['1980-01-01', '1980-01-02', '1980-01-03']) {
    await locked.page.fill('#date_of_birth', date);
    await passwords(locked.page);
    await locked.page.click('main button[type=submit]');
  }
  assert.match(await text(locked.page, '[role=alert]'), /locked; contact Elm Clinic to be invited again/);
  await screenshot(locked.page, 'register-locked');
  await locked.ctx.close();

  // A colleague at another practice: a wrong ZIP code listed, then the practice registered.
  const colleague = await open(browser, 'grace@birch.example');
  const cp = colleague.page;
  await screenshot(cp, 'register-colleague-elsewhere');
  await cp.check('#role_staff');
  await cp.fill('#practice_name', 'Birch Family Medicine');
  await cp.fill('#practice_address', '1 Main St');
  await cp.fill('#practice_city', 'Springfield');
  await cp.fill('#practice_state', 'IL');
  await cp.fill('#practice_zip', '627');
  await cp.fill('#practice_phone', '+1 217 555 0100');
  await cp.fill('#practice_ehr', 'Kareo');
  await cp.fill('#practice_npi', '1234567893');
  await passwords(cp);
  await cp.click('main button[type=submit]');
  assert.match(await text(cp, '[role=alert] li'), /^ZIP code: 12345 or 12345-6789/);
  assert.equal(await cp.inputValue('#practice_name'), 'Birch Family Medicine', 'what was typed is kept');
  await screenshot(cp, 'register-colleague-elsewhere-problems');
  await cp.click('[role=alert] li a');
  assert.equal(await cp.evaluate(() => document.activeElement.id), 'practice_zip', 'the problem links to its field');
  await cp.fill('#practice_zip', '62701');
  await passwords(cp);
  await cp.click('main button[type=submit]');
  assert.equal(await text(cp, 'h1'), 'You are registered');
  assert.match(await text(cp, '.facts'), /Your practice\s*Birch Family Medicine/);
  await signInHome(cp, 'grace@birch.example');
  await colleague.ctx.close();

  // A colleague joining the practice confirms it is theirs.
  const member = await open(browser, 'alan@elm.example');
  await screenshot(member.page, 'register-colleague-here');
  await passwords(member.page);
  await member.page.click('main button[type=submit]');
  assert.match(await text(member.page, '[role=alert] li'), /confirm it is your practice/);
  await member.page.check('#confirm_practice');
  await passwords(member.page);
  await member.page.click('main button[type=submit]');
  assert.match(await text(member.page, '.facts'), /Your practice\s*Elm Clinic/);
  await member.ctx.close();

  // The registered patient accepts Oak Clinic's invitation with its code, signed in.
  const second = await mailTo('ada@example.org', /Oak Clinic invites you/);
  const code = second.match(/Your invitation code: *([0-9A-Z-]{14})/)[1];
  await page.goto(BASE + '/invitations/accept');
  await screenshot(page, 'accept-with-code');
  await page.fill('#code', code.toLowerCase());
  await page.fill('#date_of_birth', '1970-05-17');
  await page.click('main button[type=submit]');
  assert.equal(await text(page, 'h1'), 'Invitation accepted');
  assert.match(await text(page, '[role=status]'), /connected with Oak Clinic/);
  await screenshot(page, 'accepted-with-code');
  await page.goto(BASE + '/invitations/accept');
  await page.fill('#code', 'AAAA-BBBB-CCCC');
  await page.click('main button[type=submit]');
  assert.match(await text(page, '[role=alert]'), /No invitation has this code/);
  await patient.ctx.close();
});
