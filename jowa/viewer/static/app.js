// The viewer page: sends commands over one WebSocket, draws every view the server pushes. No libraries.
"use strict";

const $ = (id) => document.getElementById(id);
const socket = new WebSocket(`ws://${location.host}/ws`);
let view = null;
const held = new Set();  // arrow/space components currently pressed

const send = (msg) => { if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(msg)); };
const fmt = (x, d = 2) => (x === null || x === undefined || Number.isNaN(x)) ? "n/a" : Number(x).toFixed(d);
const signText = (s) => (s > 0 ? "+1" : s < 0 ? "−1" : "0");

// ------------------------------------------------------------------ keys → actions

const KEY_PART = { ArrowUp: "UP", ArrowDown: "DOWN", ArrowLeft: "LEFT", ArrowRight: "RIGHT", " ": "FIRE" };
const PART_KEY = { UP: "↑", DOWN: "↓", LEFT: "←", RIGHT: "→", FIRE: "Space" };

function actionName(parts) {
  const v = parts.has("UP") ? "UP" : parts.has("DOWN") ? "DOWN" : "";
  const h = parts.has("RIGHT") ? "RIGHT" : parts.has("LEFT") ? "LEFT" : "";
  const f = parts.has("FIRE") ? "FIRE" : "";
  return (v + h + f) || "NOOP";
}

// The valid action closest to the pressed keys: the exact combination, else with parts dropped.
function pressedAction(parts) {
  if (!view) return null;
  const byName = Object.fromEntries(view.actions.map((a) => [a.name, a.id]));
  const tries = [parts, ...["UP", "DOWN", "LEFT", "RIGHT", "FIRE"].map((p) => new Set([...parts].filter((q) => q !== p)))];
  for (const t of tries) { const name = actionName(t); if (name in byName) return byName[name]; }
  return null;
}

function keyHint(name) {
  if (name === "NOOP") return "(no key)";
  const arrows = ["UP", "DOWN", "RIGHT", "LEFT"].filter((p) => name.includes(p)).map((p) => PART_KEY[p]).join("");
  return [arrows, name.includes("FIRE") ? "Space" : ""].filter(Boolean).join(" + ");
}

const COMMAND_KEYS = {
  Enter: { cmd: "step" }, p: { cmd: "toggle" }, a: { cmd: "agent" }, d: { cmd: "dream" }, r: { cmd: "real" },
  x: { cmd: "reset" }, v: { cmd: "planner_view" }, g: { cmd: "save", format: "gif" }, "[": { cmd: "horizon", delta: -1 }, "]": { cmd: "horizon", delta: 1 },
};

function command(msg) {
  if (msg.cmd === "toggle") return send({ cmd: view && view.running ? "pause" : "run" });
  if (msg.cmd === "agent") return send({ cmd: "agent", on: !(view && view.agent) });
  if (msg.cmd === "planner_view") return send({ cmd: "planner_view", on: !(view && view.planner_view) });
  send(msg);
}

document.addEventListener("keydown", (e) => {
  if (e.key in KEY_PART) {
    e.preventDefault();
    if (e.repeat) return;
    held.add(KEY_PART[e.key]);
    const action = pressedAction(held);
    if (action !== null) send({ cmd: "act", action });
  } else if (e.key in COMMAND_KEYS && !e.ctrlKey && !e.metaKey) {
    e.preventDefault();
    command(COMMAND_KEYS[e.key]);
  }
});
document.addEventListener("keyup", (e) => {
  if (!(e.key in KEY_PART)) return;
  held.delete(KEY_PART[e.key]);
  if (!view || !view.running) return;
  const action = held.size ? pressedAction(held) : null;
  send(action === null ? { cmd: "release" } : { cmd: "act", action });
});

const BUTTONS = {
  "btn-step": { cmd: "step" }, "btn-run": { cmd: "toggle" }, "btn-agent": { cmd: "agent" }, "btn-dream": { cmd: "dream" },
  "btn-real": { cmd: "real" }, "btn-reset": { cmd: "reset" }, "btn-gif": { cmd: "save", format: "gif" },
  "btn-mp4": { cmd: "save", format: "mp4" }, "btn-planner": { cmd: "planner_view" }, "btn-hminus": { cmd: "horizon", delta: -1 }, "btn-hplus": { cmd: "horizon", delta: 1 },
};
for (const [id, msg] of Object.entries(BUTTONS)) $(id).addEventListener("click", () => command(msg));

// ------------------------------------------------------------------ drawing

function drawLegend(v) {
  const body = $("legend").tBodies[0];
  body.replaceChildren(...v.actions.map((a) => {
    const tr = document.createElement("tr");
    tr.className = a.id === v.last.action ? "active" : "";
    tr.innerHTML = `<td>${a.name}</td><td>${keyHint(a.name)}</td>`;
    return tr;
  }));
}

function drawStatus(v) {
  const dream = v.mode === "dream";
  $("game").textContent = `· ${v.game}`;
  $("mode").textContent = dream ? "DREAM" : "REAL";
  $("mode").className = dream ? "badge dream" : "badge";
  $("model").className = dream ? "dream" : "";
  $("status").textContent = `episode ${v.episode} · real step ${v.real_steps} · return ${fmt(v.real_return, 0)}` +
    (dream ? ` · dream return (Σ r̂) ${v.dream_return}` : "");
  $("fps").textContent = v.running || v.fps > 0 ? `${fmt(v.fps, 1)} fps${v.running ? "" : " (last run)"}` : "fps: press P to run";
  $("real-caption").textContent = dream ? `real emulator (waiting at step ${v.real_steps})` : "real emulator";
  $("model-caption").textContent = dream ? `world model: dream, ${v.dream_steps} steps imagined`
    : "world model (reconstruction of its 36 tokens)";
  $("dream-steps").textContent = v.dream_steps;
  $("hlimit").textContent = v.horizon_limit || "∞";
  $("btn-run").textContent = v.running ? "Pause" : "Run";
  $("btn-run").className = v.running ? "on" : "";
  $("btn-agent").textContent = `Agent: ${v.agent ? "on" : "off"}`;
  $("btn-agent").className = v.agent ? "on" : "";
  $("btn-planner").textContent = `Planner view: ${v.planner_view ? "on" : "off"}`;
  $("btn-planner").className = v.planner_view ? "on" : "";
  const l = v.last;
  const name = l.action === null ? "—" : (v.actions.find((a) => a.id === l.action) || { name: l.action }).name;
  $("last").textContent = l.action === null ? "no step yet" : dream
    ? `last: ${name} → r̂ ${signText(l.reward)} (p ${fmt(l.reward_prob)}) · p(end) ${fmt(l.end_prob)}${l.done ? " · the model predicts the end" : ""}`
    : `last: ${name} → reward ${fmt(l.reward, 0)}${l.done ? " · episode over (next step resets)" : ""}`;
  const t = v.timings;
  $("timings").textContent = `ms per step: emulator ${t.env_ms} · imagine ${t.imagine_ms} · planner ${t.plan_ms} · decode ${t.decode_ms}` +
    ` · ${v.recorded_frames} frames recorded`;
  $("message").textContent = v.message || "";
}

const NS = "http://www.w3.org/2000/svg";
function el(tag, attrs, parent) {
  const node = document.createElementNS(NS, tag);
  for (const [k, val] of Object.entries(attrs)) node.setAttribute(k, val);
  if (parent) parent.appendChild(node);
  return node;
}

function actionLabel(v, id) { const a = v.actions.find((x) => x.id === id); return a ? a.name : String(id); }

// Nodes on the best path: from the highest-scoring kept leaf back to the root.
function bestPath(nodes) {
  const depth = Math.max(...nodes.map((n) => n.depth));
  const leaves = nodes.filter((n) => n.depth === depth && n.kept && depth > 0);
  const path = new Set([0]);
  if (!leaves.length) return path;
  let node = leaves.reduce((a, b) => (b.score > a.score ? b : a));
  const byId = Object.fromEntries(nodes.map((n) => [n.id, n]));
  while (node && node.id !== 0) { path.add(node.id); node = byId[node.parent]; }
  return path;
}

function drawTree(v) {
  const tree = v.tree, svg = $("tree");
  svg.replaceChildren();
  const W = 210, H = 62, GX = 46, GY = 10;
  const kids = {};
  for (const n of tree.nodes) (kids[n.parent] = kids[n.parent] || []).push(n);
  const y = {};
  let next = 0;
  const place = (n) => {  // leaves in order, parents centred on their children
    const c = kids[n.id] || [];
    if (!c.length) { y[n.id] = next; next += H + GY; return; }
    c.forEach(place);
    y[n.id] = (y[c[0].id] + y[c[c.length - 1].id]) / 2;
  };
  place(tree.nodes[0]);
  const depth = Math.max(...tree.nodes.map((n) => n.depth));
  svg.setAttribute("width", 20 + (depth + 1) * (W + GX));
  svg.setAttribute("height", Math.max(next, H + GY) + 10);
  const best = bestPath(tree.nodes);
  const x = (n) => 10 + n.depth * (W + GX);
  for (const n of tree.nodes) {
    if (n.parent < 0) continue;
    const p = tree.nodes.find((m) => m.id === n.parent);
    el("line", { x1: x(p) + W, y1: y[p.id] + 5 + H / 2, x2: x(n), y2: y[n.id] + 5 + H / 2,
      class: best.has(n.id) && best.has(p.id) ? "best" : "" }, svg);
  }
  for (const n of tree.nodes) {
    const g = el("g", { class: `node${n.kept ? " kept" : ""}${best.has(n.id) ? " best" : ""}`,
      transform: `translate(${x(n)},${y[n.id] + 5})`, "data-depth": n.depth, "data-action": n.action }, svg);
    el("rect", { class: "node-box", width: W, height: H, rx: 4 }, g);
    const title = n.depth === 0 ? `now (${v.mode})` : `${actionLabel(v, n.action)}  d${n.depth}`;
    el("text", { x: 6, y: 14 }, g).textContent = title + (n.depth === 1 && n.action === tree.chosen_action ? "  ← chosen" : "");
    el("text", { x: 6, y: 28 }, g).textContent = n.depth === 0 ? "root"
      : `r̂ ${signText(n.reward_sign)} (p ${fmt(n.reward_prob)})  end ${fmt(n.end_prob)}`;
    el("text", { x: 6, y: 42 }, g).textContent = n.depth === 0 ? `max Q ${fmt(Math.max(...n.q.filter((q) => q !== null)))}`
      : `score ${fmt(n.score)}`;
    drawQBars(g, n.q, 6, 46, W - 12, 12);
  }
}

function drawQBars(g, q, x0, y0, width, height) {
  const valid = q.map((val, i) => [i, val]).filter(([, val]) => val !== null);
  const lo = Math.min(...valid.map(([, val]) => val)), hi = Math.max(...valid.map(([, val]) => val));
  const w = width / valid.length;
  valid.forEach(([i, val], k) => {
    const h = hi > lo ? 2 + (height - 2) * (val - lo) / (hi - lo) : height / 2;
    const bar = el("rect", { class: `qbar${val === hi ? " max" : ""}`, x: x0 + k * w + 1, y: y0 + height - h,
      width: Math.max(1, w - 2), height: h }, g);
    el("title", {}, bar).textContent = `Q(${i}) = ${fmt(val, 3)}`;
  });
}

function drawRootQ(v) {
  const root = v.tree.nodes[0];
  $("planner-name").textContent = v.tree.planner + (v.plan_stale ? " (view off: an earlier step's decision)" : "");
  $("chosen").textContent = actionLabel(v, v.tree.chosen_action);
  $("rootq").replaceChildren(...v.actions.map((a) => {
    const span = document.createElement("span");
    span.className = a.id === v.tree.chosen_action ? "chosen" : "";
    span.textContent = `Q(${a.name}) ${fmt(root.q[a.id], 3)}`;
    return span;
  }));
}

socket.addEventListener("message", (event) => {
  view = JSON.parse(event.data);
  $("real").src = `data:image/png;base64,${view.real_png}`;
  $("model").src = `data:image/png;base64,${view.model_png}`;
  drawStatus(view);
  drawLegend(view);
  drawRootQ(view);
  drawTree(view);
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
});
socket.addEventListener("close", () => { $("message").textContent = "disconnected from the server"; });
