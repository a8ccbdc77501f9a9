// quorum viz: draws the frames a tab's simulation sends, and sends back what
// the learner does. One request is outstanding at a time; the learner's
// actions go before the next clock advance.
"use strict";

const $ = (sel) => document.querySelector(sel);
const params = new URLSearchParams(location.search);

const view = {
  frame: null,          // the latest frame
  playing: true,
  speed: 50e6,          // virtual nanoseconds per real second
  pending: false,       // a request is on its way
  outbox: [],           // requests waiting their turn
  lastAdvance: performance.now(),
  events: [],           // the latest events, for the log
  timerSpan: {},        // node id -> [deadline, full span] of its timer, for the shrinking ring
  marks: [],            // drops and commits to flash: {kind, from, to, node, until}
  selected: null,
  nextValue: 1,
};

// Figures the browser test reads: frames drawn and bytes received per second.
window.vizStats = { fps: 0, bytesPerSec: 0, virtualPerSec: 0, frames: 0, received: 0 };
let statFrames = 0, statBytes = 0, statSince = performance.now(), statVirtual = null;

// ---- the connection --------------------------------------------------------

let socket = null;

function connect() {
  const q = new URLSearchParams();
  for (const k of ["protocol", "nodes", "seed"]) if (params.has(k)) q.set(k, params.get(k));
  socket = new WebSocket(`ws://${location.host}/ws?${q}`);
  view.pending = true; // the first frame comes unasked
  socket.onmessage = (m) => {
    statBytes += m.data.length;
    window.vizStats.received += 1;
    view.pending = false;
    onFrame(JSON.parse(m.data));
    pump();
  };
  socket.onclose = () => toast("The connection to quorum viz closed: reload the page to start again.", 0);
}

function request(req) {
  view.outbox.push(req);
  pump();
}

function pump() {
  if (view.pending || !view.outbox.length || !socket || socket.readyState !== WebSocket.OPEN) return;
  view.pending = true;
  socket.send(JSON.stringify(view.outbox.shift()));
}

function act(action) {
  request({ op: "act", action });
}

// ---- frames ----------------------------------------------------------------

function onFrame(f) {
  if (f.error && f.protocol === undefined) { toast(f.error); return; }
  if (f.error) toast(f.error);
  const first = !view.frame || f.rebuilt;
  if (f.rebuilt) { view.events = []; view.timerSpan = {}; view.marks = []; }
  const now = performance.now();
  for (const e of f.events) {
    view.events.push(e);
    if (e.kind === "drop") view.marks.push({ kind: "drop", from: e.from, to: e.to, until: now + 700 });
    if (e.kind === "commit") view.marks.push({ kind: "commit", node: e.node, until: now + 400 });
  }
  if (view.events.length > 400) view.events.splice(0, view.events.length - 400);
  for (const n of f.nodes) {
    const span = view.timerSpan[n.id];
    if (n.timer_ns == null) delete view.timerSpan[n.id];
    else if (!span || span[0] !== n.timer_ns) view.timerSpan[n.id] = [n.timer_ns, Math.max(1, n.timer_ns - f.now_ns)];
  }
  view.frame = f;
  window.vizFrame = f; // for the browser test, and for anyone curious in the console
  if (first) syncSettings(f);
  renderPanel(f, first);
  if (f.export) showExport(f.export);
}

function syncSettings(f) {
  $("#protocol").value = f.protocol;
  $("#term-head").textContent = termName(f);
  $("#size").value = String(f.size);
  $("#seed").value = String(f.seed);
  const options = f.nodes.map((n) => `<option value="${n.id}">n${n.id}</option>`).join("");
  for (const sel of ["#target", "#cut-a", "#cut-b"]) $(sel).innerHTML = options;
  if (f.nodes.length > 1) $("#cut-b").value = "2";
  $("#nodes tbody").innerHTML = f.nodes.map((n) => `
    <tr data-node="${n.id}">
      <td>n${n.id}</td><td class="role"></td><td class="term"></td><td class="commit"></td><td class="leader"></td>
      <td class="do">
        <button data-act="crash" data-node="${n.id}" class="danger" title="kill -9: unsynced writes are lost">crash</button>
        <button data-act="restart" data-node="${n.id}" title="start again from its disk">restart</button>
        <button data-act="freeze" data-node="${n.id}" title="SIGSTOP: it handles nothing, its links stay up">freeze</button>
        <button data-act="thaw" data-node="${n.id}" title="SIGCONT">thaw</button>
        <button data-act="isolate" data-node="${n.id}" title="cut every link to the other nodes">isolate</button>
        <button data-act="slow" data-node="${n.id}" data-ms="40" title="delay every message to and from it by 40 ms">slow</button>
        <button data-act="slow" data-node="${n.id}" data-ms="0" title="back to the normal delay">unslow</button>
        <button data-act="slow_disk" data-node="${n.id}" data-ms="20" title="every fsync of its disk takes 20 ms longer">slow disk</button>
        <button data-act="slow_disk" data-node="${n.id}" data-ms="0" title="back to the normal fsync">fast disk</button>
      </td>
    </tr>
    <tr class="logrow" data-log-of="${n.id}"><td></td><td colspan="5" class="log-tail small"></td></tr>`).join("");
}

function renderPanel(f) {
  $("#clock").textContent = `t = ${(f.now_ns / 1e6).toFixed(3)} ms`;
  for (const n of f.nodes) {
    const row = document.querySelector(`tr[data-node="${n.id}"]`);
    if (!row) continue;
    row.dataset.role = n.up ? n.role : "crashed";
    row.dataset.up = String(n.up);
    row.dataset.frozen = String(n.frozen);
    row.dataset.term = String(n.term);
    row.querySelector(".role").textContent =
      !n.up ? "crashed" : n.frozen ? `${n.role} (frozen)` : n.slow_ms || n.slow_disk_ms ? `${n.role} (slow)` : n.role;
    row.querySelector(".term").textContent = n.up ? n.term : "";
    row.querySelector(".commit").textContent = n.up ? `${n.commit} / ${n.applied}` : "";
    row.querySelector(".leader").textContent = n.up && n.leader ? `n${n.leader}` : "";
    row.querySelector('[data-act="crash"]').hidden = !n.up;
    row.querySelector('[data-act="restart"]').hidden = n.up;
    row.querySelector('[data-act="freeze"]').hidden = !n.up || n.frozen;
    row.querySelector('[data-act="thaw"]').hidden = !n.frozen;
    row.querySelector('[data-act="isolate"]').hidden = !n.up;
    row.querySelector('[data-act="slow"][data-ms="40"]').hidden = !n.up || n.slow_ms > 0;
    row.querySelector('[data-act="slow"][data-ms="0"]').hidden = n.slow_ms === 0;
    row.querySelector('[data-act="slow_disk"][data-ms="20"]').hidden = !n.up || n.slow_disk_ms > 0;
    row.querySelector('[data-act="slow_disk"][data-ms="0"]').hidden = n.slow_disk_ms === 0;
    const tail = document.querySelector(`tr[data-log-of="${n.id}"] .log-tail`);
    const pending = n.disk.filter((e) => e.index > n.commit).map((e) => `${e.index} (${e.stamp}): ${e.what}`);
    tail.textContent = !n.up ? "" : (n.log.length ? `applied … ${n.log.join(" · ")}` : "applied nothing yet") +
      (pending.length ? ` — on disk, not known committed: ${pending.join(" · ")}` : "");
  }
  const slider = $("#timeline");
  if (!slider.matches(":active")) { slider.max = String(f.trace_len); slider.value = String(f.trace_len); }
  $("#timeline-label").textContent = `event ${slider.value} of ${f.trace_len}${f.at_limit ? " (the run's limit)" : ""}`;
  const checks = $("#checks");
  if (f.violations.length) {
    checks.className = "checks bad";
    const shown = f.violations.slice(0, 5).map((v) => `${(v.at / 1e6).toFixed(3)} ms — ${v.check}: ${v.detail}`);
    if (f.violations.length > 5) shown.push(`and ${f.violations.length - 5} more`);
    checks.textContent = shown.join("\n");
    const banner = $("#banner");
    banner.hidden = false;
    banner.textContent = `Safety check failed: ${f.violations[0].check} at ${(f.violations[0].at / 1e6).toFixed(3)} ms` +
      (f.violation_event != null && f.violation_event + 1 < f.trace_len ? " — click to go back to that moment" : "");
    banner.dataset.event = f.violation_event == null ? "" : String(f.violation_event);
  } else {
    checks.className = "checks ok";
    checks.textContent = "All checks hold (agreement on every index, at most one leader per term, and the protocol's own).";
    $("#banner").hidden = true;
  }
  renderLog();
}

function renderLog() {
  const log = $("#log");
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 20;
  const shown = view.events.slice(-200);
  log.innerHTML = shown.map((e) =>
    `<li class="${e.kind}" title="${escapeHtml(e.text)}"><span class="t">${(e.at_ns / 1e6).toFixed(3)}</span>${escapeHtml(e.text)}</li>`).join("");
  if (view.frame && view.frame.skipped) log.insertAdjacentHTML("afterbegin", `<li class="hint">… ${view.frame.skipped} events too fast to list</li>`);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function escapeHtml(s) {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
}

let toastTimer = null;
function toast(text, ms = 4000) {
  const t = $("#toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  if (ms) toastTimer = setTimeout(() => { t.hidden = true; }, ms);
}

function showExport(e) {
  $("#export-command").textContent = e.command;
  $("#export-actions").value = e.actions;
  $("#export-mermaid").value = e.mermaid;
  const link = $("#export-html");
  if (link.href.startsWith("blob:")) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([e.html], { type: "text/html" }));
  $("#export-dialog").showModal();
}

// ---- the loop --------------------------------------------------------------

const canvas = $("#ring");

function tick(now) {
  if (view.playing && !view.pending && !view.outbox.length && view.frame && !view.frame.at_limit) {
    const dt = Math.min(100, now - view.lastAdvance);
    const ns = Math.round((view.speed * dt) / 1000);
    if (ns > 0) { view.lastAdvance = now; request({ op: "advance", ns }); }
  } else if (!view.playing) {
    view.lastAdvance = now;
  }
  view.marks = view.marks.filter((m) => m.until > now);
  drawCluster(canvas, view.frame, {
    marks: view.marks,
    timerSpan: view.timerSpan,
    caption: view.frame ? `${view.frame.protocol} · ${view.frame.size} nodes · seed ${view.frame.seed} · ${view.playing ? "playing" : "paused"}` : "",
  });
  statFrames++;
  if (now - statSince >= 1000) {
    window.vizStats.fps = Math.round((statFrames * 1000) / (now - statSince));
    window.vizStats.bytesPerSec = Math.round((statBytes * 1000) / (now - statSince));
    const virtualNow = view.frame ? view.frame.now_ns : 0;
    if (statVirtual !== null) window.vizStats.virtualPerSec = Math.round(((virtualNow - statVirtual) * 1000) / (now - statSince));
    statVirtual = virtualNow;
    window.vizStats.frames += statFrames;
    statFrames = 0; statBytes = 0; statSince = now;
  }
  requestAnimationFrame(tick);
}

function setPlaying(on) {
  view.playing = on;
  $("#play").textContent = on ? "Pause" : "Play";
  view.lastAdvance = performance.now();
}

// ---- controls --------------------------------------------------------------

$("#nodes").addEventListener("click", (ev) => {
  const b = ev.target.closest("button[data-act]");
  if (!b) return;
  const action = { do: b.dataset.act, node: Number(b.dataset.node) };
  if (b.dataset.ms !== undefined) action.ms = Number(b.dataset.ms);
  act(action);
});
$("#play").onclick = () => setPlaying(!view.playing);
$("#banner").onclick = () => {
  const at = $("#banner").dataset.event;
  if (at === "" || !view.frame || Number(at) + 1 >= view.frame.trace_len) return;
  setPlaying(false);
  request({ op: "rewind", keep: Number(at) + 1 });
};
$("#step").onclick = () => { setPlaying(false); request({ op: "step" }); };
$("#speed").onchange = (e) => { view.speed = Number(e.target.value); };
$("#reset").onclick = () => {
  const protocol = $("#protocol").value, nodes = Number($("#size").value), seed = Number($("#seed").value);
  history.replaceState(null, "", `?protocol=${protocol}&nodes=${nodes}&seed=${seed}`);
  view.frame = null;
  request({ op: "reset", protocol, nodes, seed });
};
$("#protocol").onchange = () => $("#reset").click();
const target = () => Number($("#target").value);
$("#write").onclick = () => {
  act({ do: "write", node: target(), key: $("#key").value, value: $("#value").value });
  view.nextValue += 1;
  $("#value").value = `v${view.nextValue}`;
};
$("#read").onclick = () => act({ do: "read", node: target(), key: $("#key").value, local: false });
$("#local-read").onclick = () => act({ do: "read", node: target(), key: $("#key").value, local: true });
$("#cut").onclick = () => act({ do: "cut", a: Number($("#cut-a").value), b: Number($("#cut-b").value) });
$("#heal").onclick = () => act({ do: "heal" });
$("#heal-link").onclick = () => act({ do: "heal_link", a: Number($("#cut-a").value), b: Number($("#cut-b").value) });
$("#lossy").onclick = () => act({ do: "lossy", a: Number($("#cut-a").value), b: Number($("#cut-b").value), percent: 30 });
$("#timeline").addEventListener("input", (e) => {
  $("#timeline-label").textContent = `rewind to event ${e.target.value} of ${view.frame ? view.frame.trace_len : 0}`;
});
$("#timeline").addEventListener("change", (e) => {
  setPlaying(false);
  request({ op: "rewind", keep: Number(e.target.value) });
});
$("#export").onclick = () => {
  const len = view.frame ? view.frame.trace_len : 0;
  request({ op: "export", from: Math.max(0, len - 200), to: len });
};
document.addEventListener("keydown", (e) => {
  if (e.target.matches("input, select, textarea")) return;
  if (e.key === " ") { e.preventDefault(); setPlaying(!view.playing); }
  if (e.key === "s") $("#step").click();
});
// `?speed=` in virtual nanoseconds per real second, as the speed menu gives.
const asked = Number(params.get("speed"));
if (Number.isFinite(asked) && asked > 0) {
  view.speed = asked;
  if ([...$("#speed").options].some((o) => Number(o.value) === asked)) $("#speed").value = String(asked);
}

fetch("/tours").then((r) => r.json()).then((list) => {
  $("#tour").insertAdjacentHTML("beforeend", list.map((s) =>
    `<option value="${s.name}" title="${escapeHtml(s.about)}">${s.name} (${s.protocol})</option>`).join(""));
});
$("#tour").onchange = (e) => {
  if (e.target.value) window.open(`/tour/${e.target.value}`, "_blank");
  e.target.value = "";
};

connect();
requestAnimationFrame(tick);
