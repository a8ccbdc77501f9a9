// Drives `quorum viz` in headless Chromium, as a learner would: for each
// protocol, wait for a leader, crash it by clicking, see a new one elected,
// send a write and see it applied on a majority, rewind, and take
// screenshots. Run by crates/cli/tests/viz_browser.rs:
//   node browser.mjs URL SCREENSHOT_DIR CHROMIUM PUPPETEER_DIR
import { createRequire } from "node:module";
import path from "node:path";

const [url, shots, chromium, modules] = process.argv.slice(2);
const require = createRequire(path.join(modules, "noop.js"));
const puppeteer = require("puppeteer-core");

const PROTOCOLS = ["raft", "multipaxos", "zab", "paxos", "primary-backup"];
const MAJORITY = 3; // of 5

function fail(message) {
  throw new Error(message);
}

async function rows(page) {
  return page.$$eval("#nodes tr[data-node]", (trs) => trs.map((tr) => ({
    id: Number(tr.dataset.node), role: tr.dataset.role, up: tr.dataset.up === "true", term: Number(tr.dataset.term),
    log: document.querySelector(`tr[data-log-of="${tr.dataset.node}"] .log-tail`).textContent,
  })));
}

async function waitFor(page, what, test, ms = 15000) {
  const until = Date.now() + ms;
  for (;;) {
    const r = await rows(page);
    const got = test(r);
    if (got) return got;
    if (Date.now() > until) fail(`${what}: not seen within ${ms} ms; nodes: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

const leaderOf = (r) => r.find((n) => n.up && n.role === "leader");
const appliedOn = (value) => (r) => r.filter((n) => n.up && n.log.includes(`=${value}`)).length >= MAJORITY;

async function tour(browser, protocol) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 860 });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(`${url}?protocol=${protocol}&nodes=5&seed=1&speed=200000000`);
  await page.waitForSelector('#nodes tr[data-node="5"]');
  const shot = (name) => page.screenshot({ path: path.join(shots, `${protocol}-${name}.png`) });
  const traceLen = () => page.$eval("#timeline", (s) => Number(s.max));
  // Basic Paxos has no leader; the primary-backup baseline never replaces
  // its primary: in both, crash another node and write through the rest.
  const leaderless = protocol === "paxos" || protocol === "primary-backup";
  let crashed;
  if (protocol === "primary-backup") {
    const primary = await waitFor(page, "the primary", leaderOf);
    await shot("1-leader");
    crashed = primary.id === 1 ? 2 : 1;
  } else if (leaderless) {
    await waitFor(page, "five peers", (r) => r.filter((n) => n.up).length === 5);
    crashed = 1;
  } else {
    const first = await waitFor(page, "a leader", leaderOf);
    crashed = first.id;
    await shot("1-leader");
  }
  const beforeCrash = await traceLen();
  await page.click(`button[data-act="crash"][data-node="${crashed}"]`);
  await waitFor(page, `n${crashed} shown crashed`, (r) => r.find((n) => n.id === crashed && !n.up));
  let target = protocol === "primary-backup" ? leaderOf(await rows(page)).id : crashed === 1 ? 2 : 1;
  if (!leaderless) {
    const next = await waitFor(page, "a new leader", (r) => {
      const l = leaderOf(r);
      return l && l.id !== crashed && l;
    });
    target = next.id;
    await shot("2-new-leader");
  }
  await page.select("#target", String(target));
  await page.$eval("#value", (v) => { v.value = "hello"; });
  await page.click("#write");
  await waitFor(page, "the write applied on a majority", appliedOn("hello"));
  await shot("3-write-committed");
  // Rewind to just before the crash: the crashed node is up again, the write gone.
  await page.$eval("#timeline", (s, keep) => {
    s.value = String(keep);
    s.dispatchEvent(new Event("change"));
  }, beforeCrash);
  await waitFor(page, `n${crashed} up again after the rewind`, (r) => r.every((n) => n.up) && !r.some((n) => n.log.includes("=hello")));
  const rewound = await traceLen();
  if (rewound < beforeCrash || rewound > beforeCrash + 20) fail(`rewound to ${rewound} events, asked for ${beforeCrash}`);
  await shot("4-rewound");
  // Export: the Mermaid diagram of the last events, and a page that plays them.
  await page.click("#export");
  await page.waitForSelector("#export-dialog[open]");
  const mermaid = await page.$eval("#export-mermaid", (t) => t.value);
  if (!mermaid.startsWith("sequenceDiagram")) fail(`the export is not a Mermaid diagram: ${mermaid.slice(0, 80)}`);
  const link = await page.$eval("#export-html", (a) => a.href);
  if (!link.startsWith("blob:")) fail(`no page to download: ${link}`);
  await page.click("#export-dialog button");
  if (protocol === "raft") {
    // A lossy link and a slow disk, then heal.
    await page.click("#lossy");
    await page.waitForFunction(() => window.vizFrame.lossy.length === 1 && window.vizFrame.lossy[0][2] === 30);
    await page.click('button[data-act="slow_disk"][data-ms="20"][data-node="3"]');
    await page.waitForFunction(() => window.vizFrame.nodes[2].slow_disk_ms === 20);
    await shot("5-lossy-link-slow-disk");
    await page.click("#heal");
    await page.waitForFunction(() => window.vizFrame.lossy.length === 0);
  }
  if (errors.length) fail(`the page threw: ${errors.join("; ")}`);
  await page.close();
  console.log(`${protocol}: crashed n${crashed}, wrote through n${target}, applied on a majority, rewound to event ${rewound} (asked ${beforeCrash})`);
}

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
let status = 0;
try {
  // Two tabs at once, each its own simulation: the second must not see the first's crash.
  const other = await browser.newPage();
  await other.goto(`${url}?protocol=raft&nodes=3&seed=9`);
  await other.waitForSelector('#nodes tr[data-node="3"]');
  for (const p of PROTOCOLS) await tour(browser, p);
  const others = await rows(other);
  if (others.length !== 3 || others.some((n) => !n.up)) fail(`the other tab was disturbed: ${JSON.stringify(others)}`);
  console.log("a second tab ran its own 3-node cluster throughout, untouched");
  // A checker demo: backups that apply in arrival order diverge under a
  // burst of writes; the banner names the failed check and, clicked, goes
  // back to the moment it failed.
  {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 860 });
    await page.goto(`${url}?protocol=planted-divergence&nodes=3&seed=1&speed=50000000`);
    const primary = await waitFor(page, "the primary", leaderOf);
    await page.select("#target", String(primary.id));
    for (let k = 0; k < 10; k++) await page.click("#write");
    await page.waitForSelector("#banner:not([hidden])", { timeout: 15000 });
    await new Promise((res) => setTimeout(res, 500));
    const before = await page.$eval("#timeline", (s) => Number(s.max));
    await page.click("#banner");
    await page.waitForFunction((n) => Number(document.querySelector("#timeline").max) < n, { timeout: 15000 }, before);
    const banner = await page.$eval("#banner", (b) => b.textContent);
    const at = await page.$eval("#timeline", (s) => Number(s.max));
    await page.screenshot({ path: path.join(shots, "planted-divergence-violation.png") });
    if (!/Safety check failed: \w/.test(banner)) fail(`the banner says: ${banner}`);
    console.log(`planted-divergence: "${banner.split(" — ")[0]}", went back from event ${before} to ${at}`);
    await page.close();
  }
  // Every scenario of `quorum trace --list` as a guided tour.
  const tours = await (await fetch(`${url}tours`)).json();
  for (const t of tours) {
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 860 });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(`${url}tour/${t.name}`);
    await page.waitForSelector("#narration li");
    const lines = await page.$$eval("#narration li", (l) => l.length);
    const claims = await page.$$eval("#claims li.ok", (l) => l.length);
    // Go to the middle of the story, and draw it there.
    await page.$eval("#narration", (ol) => ol.children[Math.floor(ol.children.length / 2)].click());
    await new Promise((res) => setTimeout(res, 300));
    await page.screenshot({ path: path.join(shots, `tour-${t.name}.png`) });
    if (errors.length) fail(`tour ${t.name} threw: ${errors.join("; ")}`);
    if (!lines || !claims) fail(`tour ${t.name}: ${lines} lines of narration, ${claims} claims that held`);
    await page.close();
  }
  console.log(`${tours.length} guided tours played, each with its narration and its claims`);
  // Full speed on a 5-node cluster: frames drawn and bytes received.
  const page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 860 });
  await page.goto(`${url}?protocol=raft&nodes=5&seed=2&speed=10000000000`);
  await page.waitForSelector('#nodes tr[data-node="5"]');
  await new Promise((res) => setTimeout(res, 3500));
  const full = await page.evaluate(() => window.vizStats);
  const virtual = (full.virtualPerSec / 1e9).toFixed(1);
  console.log(`full speed, 5 nodes: ${full.fps} frames/s, ${full.bytesPerSec} bytes/s, ${virtual} s of virtual time per second`);
  await page.screenshot({ path: path.join(shots, "raft-full-speed.png") });
  if (full.fps < 30) fail(`${full.fps} frames/s at full speed, under 30`);
  if (full.bytesPerSec >= 1_000_000) fail(`${full.bytesPerSec} bytes/s at full speed, over 1 MB/s`);
} catch (e) {
  console.error(`FAILED: ${e.message}`);
  status = 1;
} finally {
  await browser.close();
}
process.exit(status);
