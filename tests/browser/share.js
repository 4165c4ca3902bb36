// Sharing a document by link (issue 24): a clinician shares the CCD fixture with a contact; the
// contact opens the link from the captured e-mail, passes the code read from the recorded gateway
// request, reads the C-CDA as a page and downloads it (bytes equal); the link keeps working in
// that browser 48 hours later and in no other; an unused link is refused at 24 hours and a minute
// (the clock moved in the node's database) and its contact asks for a new one; a fresh link
// replaces the old; a revoked link is refused; five wrong codes lock; a hostile C-CDA (script,
// an external entity, a billion laughs) is shown as text or refused; another practice's contact
// and a role that may not share are refused; the sender's trail shows each step.
'use strict';

const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const {
  assert, BASE, context, firstSignIn, linkIn, mailTo, onPortal, run, screenshot, text,
} = require('./lib.js');

const FIXTURES = process.env.FIXTURES;
const CCD = fs.readFileSync(path.join(FIXTURES, 'ccd.xml'));

/// Runs one SQL statement on the node's database (to move its clock back).
function sql(statement) {
  execFileSync('python3', ['-c', 'import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute(sys.argv[2])\nc.commit()',
    process.env.NODE_DB, statement]);
}

/// The newest text message the gateway was given.
function lastText() {
  const dir = process.env.TEXTS_DIR;
  const names = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  assert.ok(names.length > 0, 'a text message reached the gateway');
  return JSON.parse(fs.readFileSync(path.join(dir, names[names.length - 1]), 'utf8')).body;
}

/// E-mails to Jane so far (each share's link, each fresh link).
let janeMails = 0;

/// As the clinician: shares `file` (a path, or {name, mimeType, buffer}) with Jane Roe; the link
/// from her e-mail.
async function share(page, file) {
  await page.goto(BASE + '/shares/new');
  await page.selectOption('#contact', { label: 'Jane Roe · jane@law.test' });
  await page.check('#source-upload');
  await page.setInputFiles('#file', file);
  await page.click('main form button[type=submit]');
  assert.match(await text(page, '[role=status]'), /The link is e-mailed to Jane Roe/);
  const mail = await mailTo('jane@law.test', new RegExp(`/s/`));
  return { id: Number(new URL(page.url()).pathname.split('/')[2]), mail };
}

/// Waits for Jane's next link e-mail and returns its link.
async function janesLink() {
  janeMails += 1;
  const n = janeMails;
  const dir = process.env.MAIL_DIR;
  for (let tries = 0; tries < 300; tries += 1) {
    const links = fs.readdirSync(dir).filter((f) => f.endsWith('.eml')).sort()
      .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'))
      .filter((raw) => /^To: .*jane@law\.test/mi.test(raw))
      .map((raw) => linkIn(raw.replace(/=\r?\n/g, ''), '/s/'));
    if (links.length >= n) return links[n - 1];
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`link e-mail #${n} to Jane`);
}

/// As the contact: texts a code to herself and enters `code` (the one texted, when null).
async function enterCode(page, code = null) {
  if (await page.locator('button:has-text("Text me a code")').count() > 0) {
    await page.click('button:has-text("Text me a code")');
    assert.match(await text(page, '[role=status]'), /A code is texted to your mobile/);
  }
  const sent = lastText();
  assert.equal(sent.channel, 'sms');
  assert.equal(sent.to, '+12175550100');
  await page.fill('#answer', code || sent.text.slice(0, 6));
  await page.click('button:has-text("View the document")');
}

run(async (browser) => {
  const sender = await context(browser);
  const sp = await sender.newPage();
  await firstSignIn(sp, process.env.MEMBER_LINK, 'jones@elm.test');
  await sp.click('nav >> text=Sharing');
  await screenshot(sp, 'shares-empty');

  // Another practice's contact is refused, whatever the form says.
  await sp.click('text=Share a document');
  await screenshot(sp, 'share-new');
  await sp.evaluate((id) => { document.querySelector('#contact option[value]:not([value=""])').value = id; },
    process.env.OTHER_CONTACT);
  await sp.selectOption('#contact', process.env.OTHER_CONTACT);
  await sp.check('#source-upload');
  await sp.setInputFiles('#file', path.join(FIXTURES, 'ccd.xml'));
  await sp.click('main form button[type=submit]');
  assert.match(await text(sp, '[role=alert]'), /is not one of Elm Clinic's contacts/);

  // The CCD, shared: the e-mail names the practice and holds a link, nothing about the patient.
  const first = await share(sp, path.join(FIXTURES, 'ccd.xml'));
  await screenshot(sp, 'share-sent');
  for (const phi of ['Eve', 'Betterhalf', 'ccd.xml', 'Chart Summary']) {
    assert.ok(!first.mail.includes(phi), `no ${phi} in the e-mail`);
  }
  assert.match(first.mail, /Elm Clinic shared a document with you/);
  const link = onPortal(await janesLink());

  // The contact opens the link: the code, then the C-CDA as a page.
  const jane = await context(browser, { acceptDownloads: true });
  const jp = await jane.newPage();
  let answer = await jp.goto(link);
  assert.equal(answer.status(), 200);
  await screenshot(jp, 'shared-check');
  await enterCode(jp);
  assert.equal(await text(jp, 'main h1'), 'ccd.xml');
  assert.equal(await text(jp, '.ccda h2'), 'Patient Chart Summary');
  assert.match(await text(jp, '.ccda .facts'), /Patient\s*Eve Betterhalf/);
  const sections = await jp.locator('.ccda-section h3').allTextContents();
  assert.deepEqual(sections.slice(0, 3), ['ADVANCE DIRECTIVES', 'ALLERGIES AND ADVERSE REACTIONS', 'ENCOUNTERS']);
  assert.equal(sections.length, 15);
  await screenshot(jp, 'shared-ccda');
  await jp.emulateMedia({ media: 'print' });
  assert.equal(await jp.locator('.top').isVisible(), false, 'the print stylesheet leaves the header out');
  assert.equal(await jp.locator('a:has-text("Download the original")').isVisible(), false);
  await screenshot(jp, 'shared-ccda-print');
  await jp.emulateMedia({ media: 'screen' });
  const [download] = await Promise.all([jp.waitForEvent('download'), jp.click('text=Download the original')]);
  assert.deepEqual(fs.readFileSync(await download.path()), CCD, 'the original, byte for byte');
  const page = await jp.request.get(link);
  assert.ok(!/frame-src/.test(page.headers()['content-security-policy']), 'a C-CDA page frames nothing');
  assert.equal(page.headers()['x-frame-options'], 'DENY');
  const cookies = await jane.cookies();
  const bound = cookies.find((c) => c.name === '__Host-hisp-share');
  assert.ok(bound && bound.secure && bound.httpOnly && bound.sameSite === 'Lax', JSON.stringify(cookies));

  // 48 hours after its first use the link still works in this browser, in no other.
  sql(`UPDATE shares SET link_sent_at = link_sent_at - 172800, first_used_at = first_used_at - 172800 WHERE id = ${first.id}`);
  await jp.goto(link);
  assert.equal(await text(jp, '.ccda h2'), 'Patient Chart Summary');
  const stranger = await context(browser);
  const xp = await stranger.newPage();
  answer = await xp.goto(link);
  assert.equal(answer.status(), 403);
  assert.equal(await text(xp, 'main h1'), 'This link was opened in another browser');
  await screenshot(xp, 'shared-other-browser');
  answer = await xp.request.get(link + '/file');
  assert.equal(answer.status(), 403, 'nor is the file given to another browser');

  // The sender is told of the first view, and sees every step with a coarse client.
  assert.match(await mailTo('jones@elm.test', /viewed for the first time/), /shares\/\d+/);
  await sp.goto(BASE + `/shares/${first.id}`);
  const trail = (await sp.locator('table tbody').textContent()).replace(/\s+/g, ' ');
  for (const step of ['Link e-mailed', 'Link opened', 'Code texted', 'Check passed', 'Viewed', 'Downloaded', 'Refused']) {
    assert.ok(trail.includes(step), `${step} in the trail: ${trail}`);
  }
  assert.match(trail, /Chrome on Linux, 127\.0\.0\.0\/24/);
  await screenshot(sp, 'share-trail');

  // Revoked: refused at once, even in the browser it was bound to.
  await sp.click('button:has-text("Revoke the link")');
  assert.match(await text(sp, '[role=status]'), /revoked/);
  answer = await jp.goto(link);
  assert.equal(answer.status(), 410);
  assert.equal(await text(jp, 'main h1'), 'This link was withdrawn');
  await screenshot(jp, 'shared-revoked');

  // A PDF, not opened for 24 hours and a minute: expired; its contact asks for a new link.
  const pdf = await share(sp, path.join(FIXTURES, 'ud-sample.pdf'));
  const pdfLink = onPortal(await janesLink());
  sql(`UPDATE shares SET link_sent_at = link_sent_at - 86460 WHERE id = ${pdf.id}`);
  const later = await context(browser, { acceptDownloads: true });
  const lp = await later.newPage();
  answer = await lp.goto(pdfLink);
  assert.equal(answer.status(), 410);
  assert.equal(await text(lp, 'main h1'), 'This link has expired');
  await lp.click('button:has-text("Ask for a new link")');
  assert.match(await text(lp, '[role=status]'), /Elm Clinic is asked to send you a new link/);
  await screenshot(lp, 'shared-expired');
  await mailTo('jones@elm.test', /asked for a new link/);
  // The sender sends a fresh one: the old link is dead, the new one works after the code.
  await sp.goto(BASE + `/shares/${pdf.id}`);
  assert.match(await text(sp, '.facts'), /expired/);
  await sp.click('button:has-text("Send a fresh link")');
  assert.match(await text(sp, '[role=status]'), /The link is e-mailed to Jane Roe/);
  const freshLink = onPortal(await janesLink());
  assert.notEqual(freshLink, pdfLink);
  answer = await lp.goto(pdfLink);
  assert.equal(answer.status(), 404);
  await lp.goto(freshLink);
  await enterCode(lp);
  assert.equal(await lp.locator('iframe.pdf').count(), 1, 'the PDF is shown in the page');
  const inline = await lp.request.get(freshLink + '/file?inline=1');
  assert.equal(inline.headers()['content-type'], 'application/pdf');
  assert.equal(inline.headers()['content-disposition'], 'inline');
  assert.equal(inline.headers()['content-security-policy'], "default-src 'none'; frame-ancestors 'self'");
  assert.equal(inline.headers()['x-frame-options'], 'SAMEORIGIN', 'framed by its own page only');
  const pdfPage = await lp.request.get(freshLink);
  assert.match(pdfPage.headers()['content-security-policy'], /frame-src 'self'; .*frame-ancestors 'none'/);
  const ccdaPage = await jp.request.get(link);
  assert.equal(ccdaPage.status(), 410, 'revoked by now');
  assert.deepEqual(await inline.body(), fs.readFileSync(path.join(FIXTURES, 'ud-sample.pdf')));
  await screenshot(lp, 'shared-pdf');

  // Five wrong codes lock the link.
  await share(sp, { name: 'letter.txt', mimeType: 'text/plain', buffer: Buffer.from('A letter.') });
  const lockedLink = onPortal(await janesLink());
  const guesser = await context(browser);
  const gp = await guesser.newPage();
  await gp.goto(lockedLink);
  await gp.click('button:has-text("Text me a code")');
  const wrong = lastText().text.startsWith('000000') ? '111111' : '000000';
  for (let left = 4; left >= 1; left -= 1) {
    await enterCode(gp, wrong);
    assert.match(await text(gp, '[role=alert]'), new RegExp(`${left} tries left`));
  }
  await enterCode(gp, wrong);
  assert.match(await text(gp, '[role=alert]'), /this link is locked/);
  answer = await gp.goto(lockedLink);
  assert.equal(answer.status(), 403);
  assert.equal(await text(gp, 'main h1'), 'This link is locked');
  await screenshot(gp, 'shared-locked');

  // A hostile C-CDA: script in the narrative is text; a DTD (external entity) is refused.
  const hostile = '<?xml version="1.0"?><ClinicalDocument xmlns="urn:hl7-org:v3"><title>Note</title><component>'
    + '<structuredBody><component><section><title>Plan</title><text><paragraph>&lt;script&gt;window.owned=1'
    + '&lt;/script&gt;<content styleCode="Bold" onclick="window.owned=2">bold</content></paragraph></text>'
    + '</section></component></structuredBody></component></ClinicalDocument>';
  const xxe = '<?xml version="1.0"?><!DOCTYPE ClinicalDocument [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    + '<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&x;</title></ClinicalDocument>';
  let laughs = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">';
  for (let i = 1; i < 10; i += 1) laughs += `<!ENTITY lol${i} "${`&lol${i - 1};`.repeat(10)}">`;
  laughs += ']><ClinicalDocument xmlns="urn:hl7-org:v3"><title>&lol9;</title></ClinicalDocument>';
  for (const [name, body] of [['hostile.xml', hostile], ['xxe.xml', xxe], ['laughs.xml', laughs]]) {
    await share(sp, { name, mimeType: 'text/xml', buffer: Buffer.from(body) });
    const hostileLink = onPortal(await janesLink());
    const hp = await jane.newPage();
    await hp.goto(hostileLink);
    await enterCode(hp);
    assert.equal(await hp.evaluate(() => window.owned), undefined, 'no script of the document ran');
    if (name === 'hostile.xml') {
      assert.match(await text(hp, '.narrative'), /<script>window\.owned=1<\/script>bold/);
      assert.equal(await hp.locator('.narrative [onclick]').count(), 0);
    } else {
      assert.match(await text(hp, '[role=alert]'), /declares a DTD, which is refused/);
      assert.ok(!(await hp.content()).includes('root:'), 'no file of the server');
      assert.ok(!(await hp.content()).includes('lollol'), 'no entity expanded');
    }
    await screenshot(hp, `shared-${name.replace('.xml', '')}`);
    await hp.close();
  }

  // A role the practice does not let share: the admin.
  const admin = await context(browser);
  const ap = await admin.newPage();
  await firstSignIn(ap, process.env.ADMIN_LINK, 'ada@elm.test');
  answer = await ap.goto(BASE + '/shares/new');
  assert.equal(answer.status(), 403);
  assert.match(await text(ap, 'main'), /the admin role may not share documents/);
  await ap.goto(BASE + '/shares');
  assert.match(await text(ap, '.actions .hint'), /may not share/);
  await screenshot(ap, 'shares-admin');

  // The list shows each share's state; a phone sees it in one column.
  await sp.goto(BASE + '/shares');
  const states = await sp.locator('.invitations .state').allTextContents();
  assert.deepEqual(states.slice(-3), ['locked', 'opened', 'revoked'], states.join(', '));
  await sp.setViewportSize({ width: 375, height: 740 });
  await screenshot(sp, 'shares-phone');
  for (const c of [sender, jane, stranger, later, guesser, admin]) await c.close();
});
