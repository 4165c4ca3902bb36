// What the portal's browser journeys share: Debian's Chromium driven by playwright-core
// (headless, no network but loopback, an empty profile), screenshots saved with the test output,
// an RFC 6238 code computed here (independently of hisp's), and the links in captured e-mails.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const BASE = process.env.PORTAL_URL;
const SHOTS = process.env.SCREENSHOTS;
let shot = 0;

/// Playwright starts Chromium with an empty --user-data-dir of its own making (a new temporary
/// profile each launch; it refuses one passed in the arguments).
async function launch() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic',
    ],
  });
  return browser;
}

/// A new browser context (its own cookies) that accepts the node's self-signed certificate.
async function context(browser, options = {}) {
  return browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1024, height: 768 }, ...options });
}

/// Saves a full-page screenshot, numbered in the order taken.
async function screenshot(page, name) {
  shot += 1;
  const file = path.join(SHOTS, `${String(shot).padStart(2, '0')}-${name}.png`);
  try {
    await page.screenshot({ path: file, fullPage: true });
  } catch (e) {
    // Headless Chromium now and then cannot capture a page that is still settling (a protocol
    // error of the browser, not a fault of the page): once more, a moment later.
    if (!String(e).includes('Unable to capture screenshot')) throw e;
    await page.waitForTimeout(300);
    await page.screenshot({ path: file, fullPage: true });
  }
}

function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text.replace(/[\s=]/g, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    assert.ok(v >= 0, `base 32: ${c}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/// The TOTP code (HMAC-SHA1, 30 s, 6 digits) of `secret` (base 32) at `unix` seconds.
function totp(secret, unix) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unix / 30)));
  const mac = crypto.createHmac('sha1', base32(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const value = (mac.readUInt32BE(offset) & 0x7fffffff) % 1000000;
  return String(value).padStart(6, '0');
}

/// The text of an e-mail as the smarthost kept it, quoted-printable and base64 parts decoded.
function mailText(raw) {
  let text = raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
  for (const block of raw.split(/\r?\n\r?\n/)) {
    const compact = block.replace(/\s+/g, '');
    if (/^[A-Za-z0-9+/]{40,}={0,2}$/.test(compact)) text += '\n' + Buffer.from(compact, 'base64').toString('utf8');
  }
  return text;
}

/// Waits for the smarthost's `n`th e-mail (1-based) and returns [its raw text, decoded text].
async function mail(n) {
  const dir = process.env.MAIL_DIR;
  const deadline = Date.now() + 30000;
  for (;;) {
    const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.eml')).sort() : [];
    if (names.length >= n) {
      const raw = fs.readFileSync(path.join(dir, names[n - 1]), 'utf8');
      return [raw, mailText(raw)];
    }
    assert.ok(Date.now() < deadline, `e-mail #${n} reached the smarthost`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/// Waits for an e-mail to `address` (whose text matches `pattern`, when given); the first, decoded.
async function mailTo(address, pattern = null) {
  const dir = process.env.MAIL_DIR;
  const deadline = Date.now() + 30000;
  for (;;) {
    const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.eml')).sort() : [];
    const found = names
      .map((name) => fs.readFileSync(path.join(dir, name), 'utf8'))
      .filter((raw) => new RegExp(`^To: .*${address.replace(/[.]/g, '[.]')}`, 'mi').test(raw))
      .map(mailText)
      .filter((text) => !pattern || pattern.test(text));
    if (found.length > 0) return found[0];
    assert.ok(Date.now() < deadline, `an e-mail to ${address} (${pattern}) reached the smarthost`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/// The first link in `text` to `path` on the portal.
function linkIn(text, route) {
  const escaped = route.replace(/[?]/g, '\\?');
  const found = text.match(new RegExp(`https://[^\\s"<>]+${escaped}[A-Za-z0-9_=&-]*`));
  assert.ok(found, `a ${route} link in: ${text}`);
  return found[0];
}

/// The same page of the portal at `url`, whatever host the link names.
function onPortal(url) {
  const u = new URL(url);
  return BASE + u.pathname + u.search;
}

/// The passphrase the journeys give every account.
const PASSWORD = 'tulip kettle orbit mauve';

/// The trimmed text of the first element `selector` finds.
async function text(page, selector) {
  return (await page.locator(selector).first().textContent()).trim();
}

/// Signs in with `email` and `password` (by default the journeys' own).
async function signIn(page, email, password = PASSWORD) {
  await page.goto(BASE + '/sign-in');
  await page.fill('#email', email);
  await page.fill('#password', password);
  await page.click('main button[type=submit]');
}

/// Sets the journeys' password from a one-time link (as the e-mail or the operator gave it), then
/// signs in with it.
async function firstSignIn(page, link, email) {
  await page.goto(onPortal(link));
  await page.fill('#password', PASSWORD);
  await page.fill('#confirm', PASSWORD);
  await page.click('main button[type=submit]');
  await signIn(page, email);
}

async function main(journey) {
  const browser = await launch();
  try {
    await journey(browser);
    console.log(`journey done: ${shot} screenshot(s) in ${SHOTS}`);
  } finally {
    await browser.close();
  }
}

function run(journey) {
  main(journey).catch((e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  });
}

module.exports = {
  assert, BASE, PASSWORD, context, firstSignIn, linkIn, mail, mailTo, onPortal, run, screenshot, signIn, text, totp,
};
