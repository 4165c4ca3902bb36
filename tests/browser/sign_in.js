// The portal's sign-in journeys in Chromium: a member sets a password from the welcome e-mail's
// one-time link, signs in, turns on two-factor sign-in (the code computed here), signs out and in
// again with a TOTP code and with a recovery code; a forgotten password is reset by e-mail; a
// member of a practice that requires two factors must enrol before anything else. Security:
// cookie flags, a new session id at sign-in (the one from before is worth nothing), a form
// without its token refused, the lock after five failures, keyboard order, a phone-sized screen.
'use strict';

const { assert, BASE, context, linkIn, mail, onPortal, run, screenshot, signIn, text, totp } = require('./lib.js');

const EMAIL = process.env.ADMIN_EMAIL;
const FIRST = 'tulip kettle orbit mauve';
const SECOND = 'harbor lantern quiet fig';

async function setPassword(page, link, password) {
  await page.goto(onPortal(link));
  assert.equal(await text(page, 'h1'), 'Set your password');
  await page.fill('#password', password);
  await page.fill('#confirm', password);
  await page.click('main button[type=submit]');
}

function sessionCookie(cookies) {
  return cookies.find((c) => c.name === '__Host-hisp');
}

function assertFlags(cookie) {
  assert.ok(cookie, 'the session cookie is set');
  assert.equal(cookie.secure, true, 'Secure');
  assert.equal(cookie.httpOnly, true, 'HttpOnly');
  assert.equal(cookie.sameSite, 'Strict', 'SameSite=Strict');
  assert.equal(cookie.path, '/');
}

async function enrol(page, label) {
  await screenshot(page, `${label}-setup`);
  assert.equal(await page.locator('.qr svg').count(), 1, 'a QR code is shown');
  const secret = (await text(page, '#secret')).replace(/\s/g, '');
  assert.match(secret, /^[A-Z2-7]{32}$/);
  const now = Date.now() / 1000;
  await page.fill('#code', totp(secret, now - 120));
  await page.click('main button[type=submit]');
  assert.match(await text(page, '[role=alert]'), /code is not right/);
  await page.fill('#code', totp(secret, now));
  await page.click('main button[type=submit]');
  assert.equal(await text(page, 'h1'), 'Your recovery codes');
  const codes = await page.locator('.codes code').allTextContents();
  assert.equal(codes.length, 10);
  for (const code of codes) assert.match(code, /^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
  await screenshot(page, `${label}-recovery-codes`);
  await page.click('text=I have kept them: continue');
  assert.equal(await text(page, 'h1'), 'Home');
  return { secret, codes, step: Math.floor(now / 30) };
}

run(async (browser) => {
  const ctx = await context(browser);
  const page = await ctx.newPage();

  // The welcome e-mail's link: a common password refused, two that differ refused, then set.
  const [raw, welcome] = await mail(1);
  assert.ok(!/password: /i.test(raw), 'no password in the e-mail');
  const link = linkIn(welcome, '/password?token=');
  await page.goto(onPortal(link));
  await screenshot(page, 'set-password');
  assert.equal(await page.inputValue('#email'), EMAIL, 'the account is named for password managers');
  await setPassword(page, link, 'password1234');
  assert.match(await text(page, '[role=alert]'), /too easy to guess/);
  await screenshot(page, 'set-password-common-refused');
  await page.fill('#password', FIRST);
  await page.fill('#confirm', FIRST + 'x');
  await page.click('main button[type=submit]');
  assert.match(await text(page, '[role=alert]'), /not the same/);
  await setPassword(page, link, FIRST);
  assert.equal(new URL(page.url()).pathname, '/sign-in');
  assert.match(await text(page, '[role=status]'), /Your password is set/);
  await screenshot(page, 'sign-in-password-set');
  const used = await page.goto(onPortal(link));
  assert.equal(used.status(), 410);
  assert.match(await text(page, 'main .message'), /already used/);
  await screenshot(page, 'link-used');

  // The keyboard alone: the e-mail field has focus, then the password, then the button.
  await page.goto(BASE + '/sign-in');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'email');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'password');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Sign in');

  // A wrong password, then the right one: a new session id, the one from before worth nothing.
  await signIn(page, EMAIL, 'not the password at all');
  assert.match(await text(page, '[role=alert]'), /e-mail address or password is not right/);
  await screenshot(page, 'sign-in-wrong-password');
  const before = sessionCookie(await ctx.cookies());
  assertFlags(before);
  await signIn(page, EMAIL, FIRST);
  assert.equal(page.url(), BASE + '/');
  assert.equal(await text(page, 'h1'), 'Home');
  await screenshot(page, 'home');
  const after = sessionCookie(await ctx.cookies());
  assertFlags(after);
  assert.notEqual(after.value, before.value, 'signing in gives a new session id');
  const stale = await context(browser);
  await stale.addCookies([{ ...before }]);
  const stalePage = await stale.newPage();
  await stalePage.goto(BASE + '/account');
  assert.equal(new URL(stalePage.url()).pathname, '/sign-in', 'the id from before sign-in opens nothing');
  await stale.close();

  // Two-factor sign-in, turned on from the account page.
  await page.click('nav >> text=Account');
  await screenshot(page, 'account');
  assert.match(await text(page, '.facts'), /Two-factor sign-in\s*Off/);
  await page.click('text=Set up two-factor sign-in');
  const { secret, codes, step } = await enrol(page, 'admin');

  // A form without its token is refused, and so is one with a wrong token.
  await page.evaluate(() => document.querySelector('form.signout input[name=csrf]').remove());
  await page.click('header button[type=submit]');
  assert.equal(await text(page, 'h1'), 'This form has expired');
  await screenshot(page, 'form-without-token-refused');
  // (From the context's own request client: the page's policy lets no script connect anywhere.)
  const forged = await ctx.request.post(BASE + '/sign-out', { form: { csrf: 'forged' }, maxRedirects: 0 });
  assert.equal(forged.status(), 403);
  await page.goto(BASE + '/');
  assert.equal(await text(page, 'h1'), 'Home', 'still signed in');

  // Sign out; sign in with the password and the next TOTP code; then with a recovery code.
  await page.click('header button[type=submit]');
  assert.match(await text(page, '[role=status]'), /You have signed out/);
  await screenshot(page, 'signed-out');
  await signIn(page, EMAIL, FIRST);
  assert.equal(new URL(page.url()).pathname, '/two-factor');
  await screenshot(page, 'two-factor');
  await page.goto(BASE + '/account');
  assert.equal(new URL(page.url()).pathname, '/two-factor', 'nothing opens before the second factor');
  await page.fill('#code', totp(secret, step * 30), 'the code used to enrol works no more');
  await page.click('main button[type=submit]');
  assert.match(await text(page, '[role=alert]'), /code is not right/);
  await page.fill('#code', totp(secret, (step + 1) * 30));
  await page.click('main button[type=submit]');
  assert.equal(await text(page, 'h1'), 'Home');
  await page.click('header button[type=submit]');
  await signIn(page, EMAIL, FIRST);
  await page.fill('#code', codes[0].toLowerCase());
  await page.click('main button[type=submit]');
  assert.equal(await text(page, 'h1'), 'Home', 'a recovery code signs in');
  await page.goto(BASE + '/account');
  assert.match(await text(page, '.facts'), /Recovery codes left\s*9/);
  await page.click('header button[type=submit]');

  // A phone-sized screen: nothing wider than the screen.
  const phone = await context(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const small = await phone.newPage();
  await small.goto(BASE + '/sign-in');
  await screenshot(small, 'phone-sign-in');
  assert.ok(await small.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling');
  await signIn(small, EMAIL, FIRST);
  await small.fill('#code', codes[1]);
  await small.click('main button[type=submit]');
  await screenshot(small, 'phone-home');
  assert.ok(await small.evaluate(() => document.documentElement.scrollWidth <= 390), 'no sideways scrolling');
  await phone.close();

  // Five wrong passwords lock the account, the right one included.
  const locking = await context(browser);
  const lockPage = await locking.newPage();
  for (let n = 0; n < 5; n += 1) await signIn(lockPage, EMAIL, `wrong password ${n}`);
  assert.match(await text(lockPage, '[role=alert]'), /locked until/);
  await signIn(lockPage, EMAIL, FIRST);
  assert.match(await text(lockPage, '[role=alert]'), /locked until/);
  await screenshot(lockPage, 'locked');

  // Forgot the password: the e-mailed link sets a new one and lifts the lock.
  await lockPage.goto(BASE + '/sign-in');
  await lockPage.click('text=Forgot your password?');
  await screenshot(lockPage, 'forgot-password');
  await lockPage.fill('#email', EMAIL);
  await lockPage.click('main button[type=submit]');
  assert.match(await text(lockPage, '[role=status]'), /we have sent it a link/);
  await screenshot(lockPage, 'forgot-password-sent');
  const [, reset] = await mail(2);
  assert.match(reset, /set a new password/);
  await setPassword(lockPage, linkIn(reset, '/password?token='), SECOND);
  assert.match(await text(lockPage, '[role=status]'), /Your password is set/);
  await signIn(lockPage, EMAIL, FIRST);
  assert.match(await text(lockPage, '[role=alert]'), /not right/, 'the old password is gone');
  await signIn(lockPage, EMAIL, SECOND);
  await lockPage.fill('#code', codes[2]);
  await lockPage.click('main button[type=submit]');
  assert.equal(await text(lockPage, 'h1'), 'Home');
  await locking.close();

  // A practice that requires two factors: its member enrols before anything else.
  const staff = await context(browser);
  const staffPage = await staff.newPage();
  await setPassword(staffPage, process.env.STAFF_LINK, FIRST);
  await signIn(staffPage, process.env.STAFF_EMAIL, FIRST);
  assert.equal(new URL(staffPage.url()).pathname, '/two-factor/setup');
  assert.match(await text(staffPage, '[role=status]'), /asks everyone to sign in with two factors/);
  await staffPage.goto(BASE + '/');
  assert.equal(new URL(staffPage.url()).pathname, '/two-factor/setup', 'nothing opens before enrolling');
  await enrol(staffPage, 'required');
  await staff.close();
  await ctx.close();
});
