// Refer & Share, the address book and the practice's settings in Chromium, end to end: a practice's
// admin signs in with a TOTP code computed here, invites a patient and a colleague at another
// practice from the portal; each registers from the link in the e-mail the smarthost received (the
// patient with two wrong dates of birth first); the two practices are connected; the colleague finds
// the admin in the address book and writes to them; invitations are reminded and cancelled; the
// admin adds a member, changes roles and turns invitations off; no one else opens the settings.
'use strict';

const {
  PASSWORD, assert, BASE, context, firstSignIn, linkIn, mailTo, onPortal, run, screenshot, signIn, text, totp,
} = require('./lib.js');

async function submit(page) {
  await page.click('main form.stack button[type=submit], main form.stack.wide button[type=submit]');
}

async function register(browser, address, fill) {
  const ctx = await context(browser);
  const page = await ctx.newPage();
  await page.goto(onPortal(linkIn(await mailTo(address, /Elm Clinic invites you/), '/invitations/accept?code=')));
  await fill(page);
  await page.fill('#password', PASSWORD);
  await page.fill('#confirm', PASSWORD);
  await page.click('main button[type=submit]');
  return { ctx, page };
}

run(async (browser) => {
  // The admin: a password from the link, two-factor sign-in turned on, then used.
  const admin = await context(browser);
  const ap = await admin.newPage();
  await firstSignIn(ap, process.env.ADMIN_LINK, 'ada@elm.test');
  await ap.goto(BASE + '/two-factor/setup');
  const secret = (await text(ap, '#secret')).replace(/\s/g, '');
  const enrolledAt = Date.now() / 1000;
  await ap.fill('#code', totp(secret, enrolledAt));
  await ap.click('main button[type=submit]');
  await ap.click('text=I have kept them: continue');
  await ap.click('header button[type=submit]');
  await signIn(ap, 'ada@elm.test');
  await ap.fill('#code', totp(secret, enrolledAt + 30));
  await ap.click('main button[type=submit]');
  assert.equal(await text(ap, 'h1'), 'Home');

  // Refer & Share: a patient and a colleague at another practice invited (a missing address first).
  await ap.click('nav >> text=Refer & Share');
  await screenshot(ap, 'refer-and-share-empty');
  await ap.click('text=Invite someone');
  await ap.check('#rel-patient');
  await ap.fill('#name', 'Pat Doe');
  await ap.fill('#date_of_birth', '1970-05-17');
  await submit(ap);
  assert.match(await text(ap, '[role=alert] li'), /^E-mail address: Give the invitee's e-mail address or fax number/);
  await screenshot(ap, 'invite-problem');
  await ap.fill('#email', 'pat@example.org');
  await submit(ap);
  assert.match(await text(ap, '[role=status]'), /Invitation #\d+ to Pat Doe is being e-mailed/);
  await ap.click('text=Invite someone');
  await ap.check('#rel-elsewhere');
  await ap.fill('#name', 'Grace Hopper');
  await ap.fill('#email', 'grace@birch.example');
  await submit(ap);
  assert.equal(await ap.locator('.invitations > li').count(), 2);
  assert.equal(await ap.locator('.invitations .warning').count(), 2, 'both wait for their invitee');
  await screenshot(ap, 'refer-and-share-sent');

  // The patient: two wrong dates, then the right one.
  const patient = await register(browser, 'pat@example.org', async (page) => {
    for (const date of ['1970-05-18', '1970-06-17']) {
      await page.fill('#date_of_birth', date);
      await page.fill('#password', PASSWORD);
      await page.fill('#confirm', PASSWORD);
      await page.click('main button[type=submit]');
      assert.match(await text(page, '[role=alert]'), /does not match/);
    }
    await page.fill('#date_of_birth', '1970-05-17');
  });
  assert.equal(await text(patient.page, 'h1'), 'You are registered');

  // The colleague registers Birch Family Medicine.
  const colleague = await register(browser, 'grace@birch.example', async (page) => {
    await page.fill('#practice_name', 'Birch Family Medicine');
    await page.fill('#practice_address', '1 Main St');
    await page.fill('#practice_city', 'Springfield');
    await page.fill('#practice_state', 'IL');
    await page.fill('#practice_zip', '62701');
    await page.fill('#practice_phone', '+1 217 555 0100');
    await page.fill('#practice_ehr', 'Kareo');
  });
  assert.equal(await text(colleague.page, 'h1'), 'You are registered');

  // Both accepted, no warning left; the practices are connected.
  await ap.goto(BASE + '/invitations');
  assert.equal(await ap.locator('.invitations .state-accepted').count(), 2);
  assert.equal(await ap.locator('.invitations .warning').count(), 0);
  await ap.click('nav >> text=Address book');
  assert.match(await text(ap, '.orgs'), /Birch Family Medicine/);
  await ap.click('text=Birch Family Medicine');
  assert.match(await text(ap, '.facts'), /Address\s*1 Main St, Springfield, IL 62701/);
  await screenshot(ap, 'organization');

  // The admin lists themselves for connected parties; the colleague adds them and writes.
  await ap.click('nav >> text=Practice');
  await screenshot(ap, 'practice-settings');
  await ap.selectOption('#member', { label: 'Ada Lovelace' });
  await ap.fill('#label', 'Referrals');
  await ap.click('text=List it');
  assert.match(await text(ap, '[role=status]'), /Ada Lovelace is listed/);
  const cp = colleague.page;
  await signIn(cp, 'grace@birch.example');
  await cp.click('nav >> text=Address book');
  await cp.click('text=Elm Clinic');
  assert.match(await text(cp, '.people li'), /Ada Lovelace\s*Referrals/);
  await cp.click('text=Add to contacts');
  assert.match(await text(cp, '.people li'), /In your contacts/);
  await cp.goto(BASE + '/contacts');
  assert.match(await text(cp, '.people li'), /Ada Lovelace\s*Elm Clinic · Referrals/);
  await screenshot(cp, 'address-book');
  await cp.fill('#q', 'refer');
  await cp.click('form[role=search] button');
  assert.equal(await cp.locator('.people li').count(), 1);
  await cp.click('.people a.button');
  assert.equal(await cp.isChecked('#choices input:checked'), true, 'the contact is chosen');
  await cp.fill('#subject', 'Thank you for the referral');
  await cp.click('main button[type=submit]');
  await ap.goto(BASE + '/messages');
  assert.match(await text(ap, '.mailbox li.unread'), /Thank you for the referral\s*Grace Hopper \(Birch Family Medicine\)/);

  // Remind and cancel a third invitation.
  await ap.goto(BASE + '/invitations/new');
  await ap.check('#rel-here');
  await ap.fill('#name', 'Bob Smith');
  await ap.fill('#email', 'bob@elm.example');
  await ap.selectOption('#role', 'staff');
  await submit(ap);
  await mailTo('bob@elm.example', /Elm Clinic invites you/);
  await ap.click('.invitations li:has-text("Bob Smith") button:has-text("Remind")');
  assert.match(await text(ap, '[role=status]'), /A reminder is on its way/);
  await ap.click('.invitations li:has-text("Bob Smith") button:has-text("Cancel")');
  assert.match(await text(ap, '[role=status]'), /It is cancelled/);
  assert.match(await text(ap, '.invitations li:has-text("Bob Smith") .state'), /cancelled/);
  await screenshot(ap, 'refer-and-share-cancelled');

  // Settings: a member added (their link e-mailed), roles changed, one admin kept, invitations off.
  await ap.goto(BASE + '/practice');
  await ap.fill('#new-name', 'Alan Turing');
  await ap.fill('#new-email', 'alan@elm.test');
  await ap.selectOption('#new-role', 'staff');
  await ap.click('text=Add the member');
  assert.match(await text(ap, '[role=status]'), /a link to set their password was e-mailed to alan@elm\.test/);
  const welcome = await mailTo('alan@elm.test', /made you an account/);
  linkIn(welcome, '/password?token=');
  const alanRole = ap.locator('.people li:has-text("Alan Turing") select');
  await alanRole.selectOption('admin');
  await ap.click('.people li:has-text("Alan Turing") button');
  assert.match(await text(ap, '[role=status]'), /The role is now admin/);
  await ap.locator('.people li:has-text("Alan Turing") select').selectOption('staff');
  await ap.click('.people li:has-text("Alan Turing") button');
  await ap.locator('.people li:has-text("Ada Lovelace") select').selectOption('clinician');
  await ap.click('.people li:has-text("Ada Lovelace") button');
  assert.match(await text(ap, '[role=alert]'), /needs at least one admin/);
  await ap.check('#inv-off');
  await ap.click('text=Save the policies');
  assert.match(await text(ap, '[role=status]'), /settings are saved/);
  await screenshot(ap, 'practice-settings-saved');
  await ap.goto(BASE + '/invitations');
  assert.match(await text(ap, 'main .actions'), /does not send invitations/);
  const refused = await admin.request.post(BASE + '/invitations/new', {
    form: { csrf: await ap.locator('form.signout input[name=csrf]').inputValue(), name: 'X Y', by: 'email', email: 'x@y.example', relationship: 'patient', date_of_birth: '1970-01-01' },
  });
  assert.equal(refused.status(), 409, 'no invitations while they are off');

  // Others do not open the settings.
  const pp = patient.page;
  await signIn(pp, 'pat@example.org');
  assert.equal((await pp.goto(BASE + '/practice')).status(), 403);
  assert.equal((await pp.goto(BASE + '/invitations')).status(), 403);
  assert.equal((await cp.goto(BASE + '/practice')).status(), 403, 'a clinician is not an admin');
  assert.equal((await cp.goto(BASE + '/contacts/orgs/999')).status(), 404);
  await screenshot(cp, 'not-found');

  // A phone-sized screen: the member's pages fit, the menu wraps.
  const phone = await context(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const small = await phone.newPage();
  await signIn(small, 'grace@birch.example');
  for (const [path, name] of [['/contacts', 'phone-address-book'], ['/invitations', 'phone-refer-and-share'], ['/direct', 'phone-direct']]) {
    await small.goto(BASE + path);
    await screenshot(small, name);
    assert.ok(await small.evaluate(() => document.documentElement.scrollWidth <= 390), `${path}: no sideways scrolling`);
  }
  await phone.close();

  await admin.close();
  await patient.ctx.close();
  await colleague.ctx.close();
});
