// quorum viz: the picture of a cluster, shared by the live page (app.js) and
// the player of a recorded run (player.js).
"use strict";


// What each protocol calls the number that orders its leaders.
const TERM_NAMES = { raft: "term", multipaxos: "ballot", zab: "epoch", paxos: "round", "primary-backup": "term" };
const termName = (f) => (f && TERM_NAMES[f.protocol]) || "term";

const ROLE_COLORS = {
  leader: "#f2b705", candidate: "#f57c00", follower: "#4f8ef7", learner: "#9575cd", peer: "#26a69a",
};

function layout(count, w, h) {
  const cx = w / 2, cy = h / 2 + 10;
  // Room beside each node for its text: about 240 px across, 150 px up and down.
  const radius = Math.max(80, Math.min(w - 480, h - 300) / 2);
  const pos = {};
  for (let i = 0; i < count; i++) {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / count;
    pos[i + 1] = { x: cx + radius * Math.cos(a), y: cy + radius * Math.sin(a), a };
  }
  return { cx, cy, radius, pos, client: { x: cx, y: cy } };
}

// `Vote(VoteRequest { term: 2, .. })` is drawn as `VoteRequest term: 2, ..`.
function shortLabel(what) {
  let s = what.replace(/^\w+\((\w+ \{.*\})\)$/, "$1").replace(/\w+: false,? ?/g, "");
  s = s.replace(/ \{ /, " ").replace(/ \}$/, "").replace(/\{ \}/, "");
  return s.length > 34 ? s.slice(0, 32) + "…" : s;
}

function kindColor(label) {
  let h = 0;
  const name = label.split(/[ ({]/)[0];
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${h % 360}, 65%, 42%)`;
}

// Draws frame `f` (nodes, cuts, flights, now_ns, protocol, size) on `canvas`.
// `opts.marks` are drops and commits to flash (each with a real-time `until`),
// `opts.timerSpan` each node's [deadline, full span] for its timer ring,
// `opts.caption` the line at the top right.
function drawCluster(canvas, f, opts) {
  const ctx = canvas.getContext("2d");
  const roundRect = (x, y, w, h, r) => {
    ctx.beginPath();
    ctx.moveTo(x + r, y); ctx.arcTo(x + w, y, x + w, y + h, r); ctx.arcTo(x + w, y + h, x, y + h, r);
    ctx.arcTo(x, y + h, x, y, r); ctx.arcTo(x, y, x + w, y, r); ctx.closePath();
  };
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  }
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  if (!f) { ctx.fillText("connecting…", 20, 20); return; }
  const L = layout(f.nodes.length, w, h);
  const r = 34;
  const cut = new Set(f.cuts.map(([a, b]) => `${a}-${b}`));
  const lossy = new Map((f.lossy || []).map(([a, b, p]) => [`${a}-${b}`, p]));

  // Links: grey; red and dashed where cut; orange and dotted where lossy.
  for (let a = 1; a <= f.nodes.length; a++) for (let b = a + 1; b <= f.nodes.length; b++) {
    const isCut = cut.has(`${a}-${b}`) || cut.has(`${b}-${a}`);
    const loss = lossy.get(`${a}-${b}`);
    ctx.strokeStyle = isCut ? "#d9534f" : loss ? "#f57c00" : "#d5d9e3";
    ctx.setLineDash(isCut ? [6, 5] : loss ? [2, 4] : []);
    ctx.lineWidth = isCut || loss ? 2 : 1;
    ctx.beginPath(); ctx.moveTo(L.pos[a].x, L.pos[a].y); ctx.lineTo(L.pos[b].x, L.pos[b].y); ctx.stroke();
    if (loss && !isCut) {
      ctx.fillStyle = "#c25e00"; ctx.font = "11px system-ui"; ctx.textAlign = "center"; ctx.textBaseline = "bottom";
      ctx.fillText(`loses ${loss}%`, (L.pos[a].x + L.pos[b].x) / 2, (L.pos[a].y + L.pos[b].y) / 2 - 4);
    }
  }
  ctx.setLineDash([]);

  // Clients in the middle.
  ctx.fillStyle = "#eef1f8"; ctx.strokeStyle = "#9aa3b5";
  roundRect(L.client.x - 30, L.client.y - 14, 60, 28, 6); ctx.fill(); ctx.stroke();
  ctx.fillStyle = "#5b6478"; ctx.font = "12px system-ui"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
  ctx.fillText("clients", L.client.x, L.client.y);

  // Messages, requests and answers on their way.
  const at = (p) => (p.kind === "node" ? L.pos[p.id] : L.client);
  ctx.font = "11px system-ui";
  for (const m of f.flights) {
    const a = at(m.from), b = at(m.to);
    if (!a || !b) continue;
    const span = Math.max(1, m.at_ns - m.sent_ns);
    const p = m.held ? 0.85 : Math.min(1, Math.max(0, (f.now_ns - m.sent_ns) / span));
    const x = a.x + (b.x - a.x) * p, y = a.y + (b.y - a.y) * p;
    const label = shortLabel(m.what);
    ctx.fillStyle = m.from.kind === "client" || m.to.kind === "client" ? "#1c5fbf" : kindColor(label);
    ctx.beginPath(); ctx.arc(x, y, 5, 0, 2 * Math.PI); ctx.fill();
    if (m.held) { ctx.fillText("⏸", x + 10, y); }
    // Labels only mid-journey, so that a burst just sent is not a pile of text.
    ctx.textAlign = "left";
    if (m.held || (p > 0.12 && p < 0.88)) ctx.fillText(label, x + 8, y - 8);
  }

  // Drops: a red cross where the message was lost; commits: a green flash.
  const now = performance.now();
  for (const m of opts.marks) {
    if (m.until <= now) continue;
    if (m.kind === "drop" && L.pos[m.from] && L.pos[m.to]) {
      const x = (L.pos[m.from].x * 2 + L.pos[m.to].x) / 3, y = (L.pos[m.from].y * 2 + L.pos[m.to].y) / 3;
      ctx.strokeStyle = "#d9534f"; ctx.lineWidth = 3;
      ctx.beginPath(); ctx.moveTo(x - 6, y - 6); ctx.lineTo(x + 6, y + 6); ctx.moveTo(x + 6, y - 6); ctx.lineTo(x - 6, y + 6); ctx.stroke();
    }
  }

  // Nodes.
  for (const n of f.nodes) {
    const p = L.pos[n.id];
    const flash = opts.marks.some((m) => m.kind === "commit" && m.node === n.id && m.until > now);
    // The timer as a shrinking ring: green for a leader's heartbeat, orange for an election timeout.
    const span = opts.timerSpan[n.id];
    if (n.up && span) {
      const left = Math.max(0, Math.min(1, (span[0] - f.now_ns) / span[1]));
      ctx.strokeStyle = n.role === "leader" ? "#43a047" : "#f57c00"; ctx.lineWidth = 4;
      ctx.beginPath(); ctx.arc(p.x, p.y, r + 6, -Math.PI / 2, -Math.PI / 2 + 2 * Math.PI * left); ctx.stroke();
    }
    ctx.lineWidth = flash ? 4 : 2;
    ctx.strokeStyle = flash ? "#2e7d32" : "#1d2330";
    ctx.fillStyle = !n.up ? "#b0b4bd" : ROLE_COLORS[n.role] || "#90a4ae";
    ctx.beginPath(); ctx.arc(p.x, p.y, r, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
    if (n.frozen) { ctx.fillStyle = "rgba(180, 220, 255, 0.65)"; ctx.beginPath(); ctx.arc(p.x, p.y, r, 0, 2 * Math.PI); ctx.fill(); }
    ctx.fillStyle = "#111"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
    ctx.font = "bold 15px system-ui"; ctx.fillText(`n${n.id}`, p.x, p.y - 9);
    ctx.font = "11px system-ui";
    ctx.fillText(!n.up ? "crashed" : n.frozen ? "frozen" : n.role, p.x, p.y + 6);
    const slow = [n.slow_ms ? "slow links" : "", n.slow_disk_ms ? "slow disk" : ""].filter(Boolean).join(", ");
    if (n.up && slow) { ctx.fillStyle = "#c25e00"; ctx.fillText(slow, p.x, p.y + r + 12); ctx.fillStyle = "#111"; }
    if (n.up) ctx.fillText(`${termName(f)} ${n.term}`, p.x, p.y + 19);
    if (!n.up) { ctx.strokeStyle = "#555"; ctx.lineWidth = 3; ctx.beginPath(); ctx.moveTo(p.x - 22, p.y - 22); ctx.lineTo(p.x + 22, p.y + 22); ctx.stroke(); }
    if (n.up && n.role === "leader") { ctx.font = "18px system-ui"; ctx.fillText("★", p.x, p.y - r - 14); }
    // Beside the node, outward: what it knows and the tail of what it applied.
    const out = { x: Math.cos(p.a), y: Math.sin(p.a) };
    const tx = p.x + out.x * (r + 26), ty = p.y + out.y * (r + 26);
    ctx.textAlign = out.x > 0.3 ? "left" : out.x < -0.3 ? "right" : "center";
    ctx.textBaseline = out.y > 0.3 ? "top" : out.y < -0.3 ? "bottom" : "middle";
    const lines = n.up ? [`commit ${n.commit} · applied ${n.applied} · log ${n.last_index}`, n.leader ? `believes n${n.leader} leads` : "knows no leader"] : ["down"];
    for (const entry of n.up ? n.log.slice(-2) : []) lines.push(entry.length > 36 ? entry.slice(0, 35) + "…" : entry);
    ctx.fillStyle = "#3b4356"; ctx.font = "11px system-ui";
    const lh = 13;
    const y0 = ctx.textBaseline === "bottom" ? ty - (lines.length - 1) * lh : ctx.textBaseline === "middle" ? ty - ((lines.length - 1) * lh) / 2 : ty;
    lines.forEach((line, i) => ctx.fillText(line, tx, y0 + i * lh));
    // The tail of the log on its disk as boxes: green up to its commit
    // index, white past it (a recorded run has no disk: its last indexes).
    const disk = n.disk || Array.from({ length: Math.min(10, n.last_index) }, (_, k) => ({ index: n.last_index - Math.min(10, n.last_index) + 1 + k }));
    if (n.up && disk.length) {
      const count = disk.length, size = 11, gap = 2;
      const width = count * (size + gap);
      const bx = ctx.textAlign === "left" ? tx : ctx.textAlign === "right" ? tx - width : tx - width / 2;
      // Above the text for a node at the top of the ring, below it elsewhere.
      const by = ctx.textBaseline === "bottom" ? y0 - lh - size - 2
        : ctx.textBaseline === "top" ? y0 + lines.length * lh + 2
        : y0 + (lines.length - 1) * lh + lh / 2 + 2;
      for (let k = 0; k < count; k++) {
        const index = disk[k].index;
        ctx.fillStyle = index <= n.commit ? "#7cc48a" : "#ffffff";
        ctx.strokeStyle = "#8a92a3"; ctx.lineWidth = 1;
        ctx.fillRect(bx + k * (size + gap), by, size, size);
        ctx.strokeRect(bx + k * (size + gap), by, size, size);
      }
    }
  }

  // Legend.
  ctx.textAlign = "left"; ctx.textBaseline = "middle"; ctx.font = "11px system-ui";
  let y = h - 16 - 7 * 16;
  const legend = [
    ["#f2b705", "leader (★)"], ["#f57c00", "candidate / looking"], ["#4f8ef7", "follower"], ["#26a69a", "Basic Paxos peer"],
    ["#b0b4bd", "crashed"], ["#1c5fbf", "client request / answer"],
  ];
  for (const [color, text] of legend) {
    ctx.fillStyle = color; ctx.beginPath(); ctx.arc(16, y, 5, 0, 2 * Math.PI); ctx.fill();
    ctx.fillStyle = "#3b4356"; ctx.fillText(text, 28, y); y += 16;
  }
  ctx.fillText("outer ring: time left on the node's timer (green heartbeat, orange election)", 10, y);
  ctx.fillText("boxes: the last entries of its log, green once committed", 10, y + 16);
  ctx.textAlign = "right";
  ctx.fillText(opts.caption, w - 10, 14);
}
