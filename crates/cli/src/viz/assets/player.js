// quorum: the player of a recorded run (`quorum trace --format html`, and the
// guided tours of `quorum viz`). The whole run is in the page: the cluster
// at any moment is folded from the events up to it.
"use strict";

const run = JSON.parse(document.getElementById("run").textContent);
const $ = (sel) => document.querySelector(sel);
const end = Math.max(1, ...run.events.map((e) => e.at_ns), ...run.lines.map((l) => l[0]));
const play = { t: 0, playing: false, speed: 20e6, last: performance.now() };
play.speed = Math.min(1e9, Math.max(2e6, end / 30)); // the whole run in about 30 s
const closest = [...$("#speed").options].reduce((a, o) => (Math.abs(o.value - play.speed) < Math.abs(a.value - play.speed) ? o : a));
$("#speed").value = closest.value;
play.speed = Number(closest.value);

// The cluster at virtual time t, in the shape drawCluster draws.
function frameAt(t) {
  const nodes = [];
  for (let id = 1; id <= run.nodes; id++) {
    nodes.push({ id, up: true, frozen: false, role: "not yet seen", term: 0, leader: null, commit: 0, applied: 0, last_index: 0, log: [] });
  }
  const node = (id) => nodes[id - 1] || { log: [] };
  let cuts = [];
  const lossy = new Map();
  const flights = [];
  for (const e of run.events) {
    if (e.at_ns > t) {
      if (e.kind === "deliver" && e.sent_ns <= t) {
        flights.push({ from: { kind: "node", id: e.from }, to: { kind: "node", id: e.to }, sent_ns: e.sent_ns, at_ns: e.at_ns, what: e.msg, held: false });
      }
      continue;
    }
    const n = node(e.node);
    switch (e.kind) {
      case "role": Object.assign(n, { role: e.role, term: e.term, leader: e.leader }); break;
      case "crash": n.up = false; n.frozen = false; break;
      case "restart": n.up = true; n.role = "restarting"; break;
      case "wipe": Object.assign(n, { log: [], applied: 0, commit: 0, last_index: 0 }); break;
      case "commit":
        n.applied = n.commit = n.last_index = Math.max(n.applied, e.index);
        n.log.push(`${e.index}: ${e.entry}`);
        if (n.log.length > 6) n.log.shift();
        break;
      case "partition": cuts = applyCut(cuts, lossy, e.cut, nodes); break;
      case "heal": cuts = []; lossy.clear(); break;
    }
  }
  const lossyList = [...lossy].map(([k, p]) => k.split("-").map(Number).concat([p]));
  return { protocol: run.protocol, size: run.nodes, now_ns: t, nodes, cuts, lossy: lossyList, flights };
}

// `{1,2} | {3,4,5}`, `1 -> 2 cut`, `3 frozen`, `3 thawed`, `link 1-2 loses 30%`,
// `link 1-2 healed` (the trace's words for what was done to the network).
function applyCut(cuts, lossy, text, nodes) {
  let m;
  const pair = (a, b) => `${Math.min(a, b)}-${Math.max(a, b)}`;
  if ((m = text.match(/^link (\d+)-(\d+) loses (\d+)%$/))) {
    if (Number(m[3]) > 0) lossy.set(pair(m[1], m[2]), Number(m[3])); else lossy.delete(pair(m[1], m[2]));
    return cuts;
  }
  if ((m = text.match(/^link (\d+)-(\d+) healed$/))) {
    lossy.delete(pair(m[1], m[2]));
    return cuts.filter(([a, b]) => pair(a, b) !== pair(m[1], m[2]));
  }
  if ((m = text.match(/^(\d+) frozen$/))) { nodes[m[1] - 1].frozen = true; return cuts; }
  if ((m = text.match(/^(\d+) thawed$/))) { nodes[m[1] - 1].frozen = false; return cuts; }
  if ((m = text.match(/^(\d+) -> (\d+) cut$/))) return cuts.concat([[Number(m[1]), Number(m[2])]]);
  const groups = [...text.matchAll(/\{([\d,]*)\}/g)].map((g) => g[1].split(",").filter(Boolean).map(Number));
  if (!groups.length) return cuts;
  const group = (id) => { const g = groups.findIndex((ids) => ids.includes(id)); return g < 0 ? groups.length : g; };
  const out = cuts.slice();
  for (const a of nodes) for (const b of nodes) if (a.id !== b.id && group(a.id) !== group(b.id)) out.push([a.id, b.id]);
  return out;
}

function render() {
  const f = frameAt(play.t);
  const now = performance.now();
  // Flash what was lost or applied in the last 0.6 s of real time.
  const recent = play.speed * 0.6;
  const marks = run.events
    .filter((e) => e.at_ns <= play.t && e.at_ns > play.t - recent && (e.kind === "drop" || e.kind === "commit"))
    .map((e) => ({ kind: e.kind, from: e.from, to: e.to, node: e.node, until: now + 1 }));
  drawCluster($("#ring"), f, { marks, timerSpan: {}, caption: `${run.protocol} · ${run.nodes} nodes · a recorded run` });
  $("#clock").textContent = `t = ${(play.t / 1e6).toFixed(3)} ms of ${(end / 1e6).toFixed(1)} ms`;
  if (!$("#timeline").matches(":active")) $("#timeline").value = String(Math.round((play.t / end) * 1000));
  const items = $("#narration").children;
  let current = -1;
  run.lines.forEach((l, i) => { if (l[0] <= play.t) current = i; });
  for (let i = 0; i < items.length; i++) {
    items[i].className = i === current ? "now" : run.lines[i][0] > play.t ? "future" : "";
  }
  const past = run.events.filter((e) => e.at_ns <= play.t).slice(-40);
  $("#log").innerHTML = past.map((e) => `<li class="${e.kind}"><span class="t">${(e.at_ns / 1e6).toFixed(3)}</span>${escapeHtml(e.text)}</li>`).join("");
  $("#log").scrollTop = $("#log").scrollHeight;
}

function escapeHtml(s) {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
}

function setPlaying(on) {
  play.playing = on;
  $("#play").textContent = on ? "Pause" : "Play";
  play.last = performance.now();
}

function tick(now) {
  if (play.playing) {
    play.t = Math.min(end, play.t + (play.speed * Math.min(100, now - play.last)) / 1000);
    if (play.t >= end) setPlaying(false);
  }
  play.last = now;
  render();
  requestAnimationFrame(tick);
}

$("#title").textContent = run.title;
document.title = `${run.title} · quorum`;
$("#narration").innerHTML = run.lines.map((l) => `<li><span class="t">${(l[0] / 1e6).toFixed(1)} ms</span>${escapeHtml(l[1])}</li>`).join("");
[...$("#narration").children].forEach((li, i) => li.addEventListener("click", () => { setPlaying(false); play.t = run.lines[i][0]; }));
$("#claims").innerHTML = run.checks.map(([claim, ok]) => `<li class="${ok ? "ok" : "failed"}">${escapeHtml(claim)}</li>`).join("");
$("#play").onclick = () => { if (play.t >= end) play.t = 0; setPlaying(!play.playing); };
$("#step").onclick = () => {
  setPlaying(false);
  const next = run.events.find((e) => e.at_ns > play.t);
  play.t = next ? next.at_ns : end;
};
$("#speed").onchange = (e) => { play.speed = Number(e.target.value); };
$("#timeline").addEventListener("input", (e) => { setPlaying(false); play.t = (Number(e.target.value) / 1000) * end; });
document.addEventListener("keydown", (e) => {
  if (e.key === " ") { e.preventDefault(); $("#play").click(); }
  if (e.key === "s") $("#step").click();
});
requestAnimationFrame(tick);
