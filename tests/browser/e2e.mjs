// End-to-end test of direct uploads in real headless Chromium, driving the example server's pages
// over the Chrome DevTools protocol. No npm dependencies: Node's built-in WebSocket
// (`node --experimental-websocket` on Node 20, built in from Node 22) and fetch.
//
// usage: node --experimental-websocket e2e.mjs <base url> <chromium path> <work dir>
// Prints one line per check and exits non-zero on the first failure.

import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const [base, chromiumPath, workDir] = process.argv.slice(2);
if (!base || !chromiumPath || !workDir) {
  console.error("usage: e2e.mjs <base url> <chromium> <work dir>");
  process.exit(2);
}
const MIB = 1024 * 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha = (buf) => createHash("sha256").update(buf).digest("hex");
function check(cond, what) {
  if (!cond) throw new Error("FAILED: " + what);
  console.log("ok - " + what);
}

// ---- Chromium + CDP --------------------------------------------------------------------------
function launch() {
  const profile = join(workDir, "chromium-profile");
  mkdirSync(profile, { recursive: true });
  const args = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    `--user-data-dir=${profile}`,
    "--remote-debugging-port=0",
    "about:blank",
  ];
  const proc = spawn(chromiumPath, args, { stdio: ["ignore", "ignore", "pipe"] });
  return new Promise((resolve, reject) => {
    let err = "";
    const timer = setTimeout(() => reject(new Error("Chromium did not start:\n" + err)), 30000);
    proc.stderr.on("data", (d) => {
      err += d.toString();
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, ws: m[1] });
      }
    });
    proc.on("exit", (code) => reject(new Error(`Chromium exited with ${code}:\n${err}`)));
  });
}

class Cdp {
  constructor(url) {
    this.ws = new WebSocket(url);
    this.id = 0;
    this.pending = new Map();
    this.listeners = [];
    this.ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.id && this.pending.has(msg.id)) {
        const { resolve, reject } = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) reject(new Error(JSON.stringify(msg.error)));
        else resolve(msg.result);
      } else if (msg.method) {
        this.listeners = this.listeners.filter((l) => !(l.method === msg.method && l.fn(msg.params)));
      }
    };
  }
  open() {
    return new Promise((resolve, reject) => {
      this.ws.onopen = resolve;
      this.ws.onerror = () => reject(new Error("CDP websocket failed"));
    });
  }
  send(method, params = {}, sessionId) {
    const id = ++this.id;
    const msg = { id, method, params };
    if (sessionId) msg.sessionId = sessionId;
    this.ws.send(JSON.stringify(msg));
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }
  once(method, timeoutMs = 30000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("timeout waiting for " + method)), timeoutMs);
      this.listeners.push({
        method,
        fn: (p) => {
          clearTimeout(timer);
          resolve(p);
          return true;
        },
      });
    });
  }
}

class Page {
  constructor(cdp, sessionId) {
    this.cdp = cdp;
    this.s = sessionId;
  }
  send(method, params) {
    return this.cdp.send(method, params, this.s);
  }
  async eval(expression) {
    const r = await this.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) throw new Error("page error: " + JSON.stringify(r.exceptionDetails));
    return r.result.value;
  }
  async goto(url) {
    const loaded = this.cdp.once("Page.loadEventFired");
    await this.send("Page.navigate", { url });
    await loaded;
  }
  async clickAndWaitLoad(selector) {
    const loaded = this.cdp.once("Page.loadEventFired");
    await this.eval(`document.querySelector(${JSON.stringify(selector)}).click()`);
    await loaded;
  }
  async setFile(selector, path) {
    const { root } = await this.send("DOM.getDocument", { depth: 0 });
    const { nodeId } = await this.send("DOM.querySelector", { nodeId: root.nodeId, selector });
    await this.send("DOM.setFileInputFiles", { nodeId, files: [path] });
  }
  async waitFor(expression, what, timeoutMs = 60000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await this.eval(expression);
      if (v) return v;
      if (Date.now() > end) throw new Error("FAILED: timed out waiting for " + what);
      await sleep(50);
    }
  }
}

// ---- the scenarios ------------------------------------------------------------------------------
const widgetState = (field) => `document.querySelector('.sea-gcp-upload[data-field="${field}"]').dataset.state`;

const RECORDER = `(() => {
  window.__progress = [];
  document.addEventListener('sea-gcp:progress', (e) => {
    const root = e.target.closest('.sea-gcp-upload');
    const bar = root.querySelector('progress');
    window.__progress.push({ loaded: e.detail.loaded, total: e.detail.total,
      visible: !!bar && !bar.hidden && bar.getClientRects().length > 0, value: bar.value,
      status: root.querySelector('[aria-live]').textContent });
  });
  return true;
})()`;

async function rowCount(page) {
  await page.goto(base + "/");
  return page.eval(`document.querySelectorAll('#documents tbody tr').length`);
}

async function downloadOf(page, title) {
  const href = await page.eval(`(() => {
    const row = [...document.querySelectorAll('#documents tbody tr')]
      .find((r) => r.querySelector('.title').textContent === ${JSON.stringify(title)});
    return row && row.querySelector('a.download[data-column="file"]').getAttribute('href');
  })()`);
  check(!!href, `the row "${title}" lists the file with a download link`);
  const r = await fetch(new URL(href, base));
  check(r.ok, `download of "${title}" answers ${r.status}`);
  return Buffer.from(await r.arrayBuffer());
}

async function uploadAndSave(page, { title, file, bytes, expectResumable, cancelAt }) {
  await page.goto(base + "/documents/new");
  await page.eval(RECORDER);
  await page.eval(`document.querySelector('#title').value = ${JSON.stringify(title)}`);
  if (cancelAt) {
    // Cancel from inside the page the moment the upload passes `cancelAt` bytes (deterministic).
    await page.eval(`(() => {
      window.__cancelled = false;
      document.addEventListener('sea-gcp:progress', (e) => {
        if (!window.__cancelled && e.detail.loaded >= ${cancelAt} && e.detail.loaded < e.detail.total) {
          window.__cancelled = true;
          setTimeout(() => e.target.seaGcpWidget.cancel(), 0);
        }
      });
      return true;
    })()`);
  }
  await page.setFile("#file", file);
  if (cancelAt) {
    await page.waitFor(`${widgetState("documents.file")} === 'cancelled'`, "the upload to be cancelled");
    const label = await page.eval(`document.querySelector('.sea-gcp-retry').textContent`);
    check(label === "Resume", `after a cancel the widget offers "${label}"`);
    const hidden = await page.eval(`document.querySelector('input[type=hidden][name=file]').value`);
    check(hidden === "", "a cancelled upload puts no ticket into the form");
    await page.eval(`document.querySelector('.sea-gcp-retry').click()`);
  }
  await page.waitFor(
    `['done','error'].includes(${widgetState("documents.file")})`,
    `the upload of ${title} to finish`,
    120000
  );
  const state = await page.eval(widgetState("documents.file"));
  const status = await page.eval(`document.querySelector('.sea-gcp-upload[data-field="documents.file"] [aria-live]').textContent`);
  check(state === "done", `${title}: upload finished (${status})`);
  const progress = await page.eval("window.__progress");
  const visible = progress.filter((p) => p.visible && p.loaded < p.total);
  check(visible.length > 0, `${title}: progress was visible during the upload (${visible.length} updates)`);
  const resumable = await page.eval(`document.querySelector('#file').seaGcpWidget.grant.resumable`);
  check(resumable === expectResumable, `${title}: resumable session = ${resumable}`);
  const form = await page.eval(`[...new FormData(document.querySelector('#document-form')).entries()]
    .map(([k, v]) => [k, typeof v === 'string' ? v : 'FILE'])`);
  const fileValue = (form.find(([k]) => k === "file") || [])[1] || "";
  check(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(fileValue), `${title}: the form carries a ticket, not a path`);
  check(!form.some(([, v]) => v === "FILE"), `${title}: the form posts no file bytes`);
  await page.clickAndWaitLoad("#save");
  const url = await page.eval("location.pathname");
  check(url === "/", `${title}: saving returns to the list`);
  const got = await downloadOf(page, title);
  check(sha(got) === sha(bytes) && got.length === bytes.length, `${title}: the download returns the same ${bytes.length} bytes`);
}

// Saving during an upload shows "Wait for the upload to finish" and keeps it visible while progress
// updates arrive; a form re-shown after a refused save (blank title) keeps the finished upload's ticket,
// and saving it then needs no second upload.
async function waitNoticeAndKeptTicket(page, { title, file, bytes }) {
  const before = await rowCount(page);
  await page.goto(base + "/documents/new");
  await page.eval(RECORDER);
  await page.eval(`document.querySelector('#title').value = ${JSON.stringify(title)}`);
  await page.setFile("#file", file);
  await page.waitFor(`window.__progress.length > 0`, "the upload to start");
  await page.eval(`document.querySelector('#save').click(); true`);
  const notice = `(() => { const n = document.querySelector('.sea-gcp-upload[data-field="documents.file"] .sea-gcp-notice');
    return n && !n.hidden && n.getClientRects().length > 0 ? n.textContent : ''; })()`;
  const first = await page.eval(notice);
  check(/Wait for the upload to finish/.test(first), `saving during the upload shows "${first}"`);
  const updatesBefore = await page.eval("window.__progress.length");
  await sleep(400);
  const updatesAfter = await page.eval("window.__progress.length");
  const later = await page.eval(notice);
  check(updatesAfter > updatesBefore, `progress went on while the notice showed (${updatesAfter - updatesBefore} updates)`);
  check(/Wait for the upload to finish/.test(later), "the wait notice stays visible through progress updates");
  check((await page.eval("location.pathname")) === "/documents/new", "the form was not submitted during the upload");
  await page.waitFor(`${widgetState("documents.file")} === 'done'`, "the upload to finish", 120000);
  check((await page.eval(notice)) === "", "the wait notice goes away when the upload finishes");
  const ticket = await page.eval(`document.querySelector('input[type=hidden][name=file]').value`);
  check(ticket.length > 0, "the finished upload put its ticket into the form");

  // Blank title: the browser's own check is removed so that the server's runs.
  await page.eval(`(() => { const t = document.querySelector('#title'); t.required = false; t.value = '   '; return true; })()`);
  await page.clickAndWaitLoad("#save");
  const error = await page.eval(`document.querySelector('#form-error')?.textContent || ''`);
  check(/title/.test(error), `a blank title re-shows the form with "${error}"`);
  const kept = await page.eval(`document.querySelector('input[type=hidden][name=file]').value`);
  check(kept === ticket, "the re-shown form keeps the finished upload's ticket");
  const state = await page.eval(widgetState("documents.file"));
  const status = await page.eval(`document.querySelector('.sea-gcp-upload[data-field="documents.file"] .sea-gcp-status').textContent`);
  check(state === "done" && status.includes("large-video.bin"), `the widget shows the kept upload (${state}: "${status}")`);
  await page.eval(`document.querySelector('#title').value = ${JSON.stringify(title)}`);
  await page.clickAndWaitLoad("#save");
  check((await page.eval("location.pathname")) === "/", "saving the re-shown form without uploading again works");
  const got = await downloadOf(page, title);
  check(sha(got) === sha(bytes), "the kept upload is the one saved");
  check((await rowCount(page)) === before + 1, "exactly one row was added");
}

async function oversize(page, file, limit) {
  const before = await rowCount(page);
  await page.goto(base + "/documents/new");
  await page.eval(`document.querySelector('#title').value = 'too big'`);
  await page.setFile("#file", file);
  await page.waitFor(`${widgetState("documents.file")} === 'error'`, "the oversize error");
  const message = await page.eval(`document.querySelector('.sea-gcp-upload[data-field="documents.file"] [role=alert]')?.textContent || ''`);
  check(/limit/.test(message), `oversize: the widget shows the error ("${message}")`);
  // Submitting anyway is held back by the widget (no ticket), and the server would refuse a ticket.
  await page.eval(`document.querySelector('#save').click(); true`);
  await sleep(300);
  const path = await page.eval("location.pathname");
  check(path === "/documents/new", "oversize: the form was not submitted");
  const answer = await page.eval(`fetch('/gcp/uploads', {method: 'POST', headers: {'content-type': 'application/json'},
    body: JSON.stringify({field: 'documents.file', filename: 'big.bin', size: ${limit + 1}, content_type: ''})})
    .then(async (r) => [r.status, (await r.json()).error])`);
  check(answer[0] === 413 && answer[1] === "too_large", `oversize: the server repeats the check (${answer})`);
  const after = await rowCount(page);
  check(after === before, `oversize: nothing was saved (${before} rows before and after)`);
}

// Double-clicking Save on a slow link saves once and lands on the list with no error; posting the
// same form again (what a second submission would send) is answered with the first save's result,
// "already saved", not a broken-upload error. A long file name wraps instead of widening the page.
async function doubleClickSave(page, { title, file }) {
  const before = await rowCount(page);
  await page.goto(base + "/documents/new");
  await page.eval(`document.querySelector('#title').value = ${JSON.stringify(title)}`);
  await page.setFile("#file", file);
  await page.waitFor(`${widgetState("documents.file")} === 'done'`, "the long-named upload to finish");
  const widths = await page.eval(`[document.documentElement.scrollWidth, document.documentElement.clientWidth]`);
  check(widths[0] <= widths[1], `a long file name does not widen the form page (${widths[0]} <= ${widths[1]})`);
  const posted = await page.eval(`new URLSearchParams(new FormData(document.querySelector('#document-form'))).toString()`);
  // A slow link: the submission stays in flight while the second click arrives.
  await page.send("Network.emulateNetworkConditions", { offline: false, latency: 1500, downloadThroughput: -1, uploadThroughput: -1 });
  const loaded = page.cdp.once("Page.loadEventFired");
  const disabled = await page.eval(`new Promise((done) => {
    const save = document.querySelector('#save');
    save.click();
    setTimeout(() => { const d = save.disabled; save.click(); done(d); }, 150);
  })`);
  check(disabled === true, "Save is disabled while the form is being sent");
  await loaded;
  await page.send("Network.emulateNetworkConditions", { offline: false, latency: 5, downloadThroughput: -1, uploadThroughput: MIB });
  const url = await page.eval("location.pathname");
  const error = await page.eval(`!!document.querySelector('#form-error')`);
  check(url === "/" && !error, `double click: back on the list with no error (${url})`);
  const after = await page.eval(`[...document.querySelectorAll('#documents .title')].filter((t) => t.textContent === ${JSON.stringify(title)}).length`);
  check(after === 1 && (await rowCount(page)) === before + 1, `double click: one row saved (${after})`);
  const widthsList = await page.eval(`[document.documentElement.scrollWidth, document.documentElement.clientWidth]`);
  check(widthsList[0] <= widthsList[1], `a long file name does not widen the list (${widthsList[0]} <= ${widthsList[1]})`);
  // The same form sent again, as a second submission that got through would be.
  const again = await page.eval(`fetch('/documents', { method: 'POST', credentials: 'same-origin',
      headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: ${JSON.stringify(posted)} })
    .then(async (r) => ({ status: r.status, url: r.url, text: await r.text() }))`);
  check(again.status === 200 && again.url.endsWith("/?saved=again") && again.text.includes("already saved"),
    `the same form sent again shows "already saved" (${again.status} ${again.url})`);
  check(!/ticket|upload it again|`/.test(again.text.replace(/<script[^>]*>.*?<\/script>/g, "")),
    "the answer to a resent form names no ticket and asks for no new upload");
  check((await rowCount(page)) === before + 1, "the resent form saved nothing more");
}

// A chosen image is shown at once, from the browser's copy of the file, before the form is saved; a
// file that is not an image replaces the preview with none.
const PIXEL_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEElEQVR4nGM4IScHRwzEcQCxYxBBO0tjggAAAABJRU5ErkJggg==";

async function imagePreview(page, { imagePath, textPath }) {
  const preview = `document.querySelector('.sea-gcp-upload[data-field="documents.file"] .sea-gcp-preview')`;
  const shown = `(() => { const i = ${preview};
    return i && !i.hidden && i.complete && i.naturalWidth > 0 && i.getClientRects().length > 0
      ? { src: i.src, width: i.naturalWidth, alt: i.alt } : null; })()`;
  await page.goto(base + "/documents/new");
  const before = await page.eval(`!!${preview} && ${preview}.hidden`);
  check(before, "no preview before a file is chosen");
  await page.setFile("#file", imagePath);
  const seen = await page.waitFor(shown, "the preview of the chosen image");
  check(seen.src.startsWith("blob:"), `the preview comes from the chosen file, not the network (${seen.src.slice(0, 12)}…)`);
  check(seen.width === 4, `the preview shows the image (${seen.width} px wide)`);
  check(seen.alt === "Preview of pixel.png", `the preview is described for screen readers ("${seen.alt}")`);
  await page.waitFor(`${widgetState("documents.file")} === 'done'`, "the image upload to finish");
  check(!!(await page.eval(shown)), "the preview stays while the form is unsaved");
  await page.setFile("#file", textPath);
  await page.waitFor(`${widgetState("documents.file")} === 'done' && ${preview}.hidden`, "the text file to replace the preview");
  check(!(await page.eval(`${preview}.getAttribute('src')`)), "a replaced preview's image is released");
}

// An image attachment gets its thumbnail variant from the task the save queued: the list shows it once
// the row records it, loaded from the variant's own object.
async function thumbnail(page, { imagePath, textPath }) {
  const title = "thumb " + Date.now();
  await page.goto(base + "/documents/new");
  await page.eval(`document.querySelector('#title').value = ${JSON.stringify(title)}`);
  await page.setFile("#file", textPath);
  await page.waitFor(`${widgetState("documents.file")} === 'done'`, "the file upload to finish");
  await page.setFile("#attachment", imagePath);
  await page.waitFor(`${widgetState("documents.attachment")} === 'done'`, "the image upload to finish");
  await page.clickAndWaitLoad("#save");
  check((await page.eval("location.pathname")) === "/", "saving returns to the list");
  const shown = `(() => {
    const row = [...document.querySelectorAll('#documents tbody tr')]
      .find((r) => r.querySelector('.title').textContent === ${JSON.stringify(title)});
    const img = row && row.querySelector('img.thumb');
    return img && img.complete && img.naturalWidth > 0
      ? { src: img.getAttribute('src'), width: img.naturalWidth, attr: img.getAttribute('width') } : null; })()`;
  let seen = null;
  for (let i = 0; i < 150 && !seen; i++) {
    await page.goto(base + "/");
    seen = await page.eval(shown);
    if (!seen) await new Promise((r) => setTimeout(r, 200));
  }
  check(!!seen, "the list shows the attachment's thumbnail once the variants task has run");
  check(seen.src.includes(".variants/thumb-g"), `the thumbnail is the variant's object (${seen.src.slice(0, 80)}…)`);
  check(seen.width === 4 && seen.attr === "4", `a 4-pixel image keeps its size in a 160-pixel box (${seen.width}, width="${seen.attr}")`);
}

async function main() {
  mkdirSync(workDir, { recursive: true });
  const limit = parseInt(process.env.E2E_MAX_SIZE || String(3 * MIB), 10);
  const small = randomBytes(200 * 1024);
  const large = randomBytes(Math.floor(2.5 * MIB));
  const huge = randomBytes(limit + 512 * 1024);
  const smallPath = join(workDir, "small report.txt");
  const largePath = join(workDir, "large-video.bin");
  const hugePath = join(workDir, "huge.bin");
  writeFileSync(smallPath, small);
  writeFileSync(largePath, large);
  writeFileSync(hugePath, huge);
  const longPath = join(workDir, "quarterly-report-" + "x".repeat(180) + ".txt");
  writeFileSync(longPath, randomBytes(4096));
  const imagePath = join(workDir, "pixel.png");
  writeFileSync(imagePath, Buffer.from(PIXEL_PNG, "base64"));

  const { proc, ws } = await launch();
  try {
    const cdp = new Cdp(ws);
    await cdp.open();
    const { targetId } = await cdp.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await cdp.send("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(cdp, sessionId);
    await page.send("Page.enable");
    await page.send("Runtime.enable");
    await page.send("DOM.enable");
    // Throttle uploads (1 MiB/s) so that progress is observable on a loopback connection.
    await page.send("Network.enable");
    await page.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 5,
      downloadThroughput: -1,
      uploadThroughput: MIB,
    });

    await uploadAndSave(page, { title: "small " + Date.now(), file: smallPath, bytes: small, expectResumable: false });
    await uploadAndSave(page, {
      title: "large " + Date.now(),
      file: largePath,
      bytes: large,
      expectResumable: true,
      // E2E_NO_RESUME=1 (the fake-gcs-server run): the emulator neither exposes `Range` through CORS nor
      // checks a chunk's start offset, so a resumed session cannot be checked there; the local store run
      // and real GCS (with `Range` in the bucket's CORS responseHeader) cover cancel and resume.
      cancelAt: process.env.E2E_NO_RESUME === "1" ? undefined : MIB,
    });
    if (process.env.E2E_NO_RESUME === "1") console.log("SKIPPED: cancel and resume (emulator gap, see above)");
    await waitNoticeAndKeptTicket(page, { title: "kept " + Date.now(), file: largePath, bytes: large });
    await oversize(page, hugePath, limit);
    await doubleClickSave(page, { title: "double " + Date.now(), file: longPath });
    await imagePreview(page, { imagePath, textPath: smallPath });
    await thumbnail(page, { imagePath, textPath: smallPath });
    console.log("PASS: all browser checks");
  } finally {
    proc.kill("SIGKILL");
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e.stack || String(e));
    process.exit(1);
  }
);
