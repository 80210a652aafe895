// vaelab latent explorer: plain JavaScript, no network access beyond this server.
"use strict";
const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
  "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363"];
const MAX_SLIDERS = 32;
const S = { info: null, pts: null, bounds: null, code: null, pick: [], busy: false };

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const res = await fetch(path, opts);
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

function cellText(c) {
  if (c.kind === "numeric") return (c.missing ? "(missing) " : "") + fmtNum(c.value);
  const k = c.probs.indexOf(Math.max(...c.probs));
  return `${c.labels[k]} ${Math.round(100 * c.probs[k])}%` + (c.missing ? " (missing)" : "");
}
function fmtNum(v) {
  const a = Math.abs(v);
  return a >= 1000 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(3);
}

function drawColumns(canvas, out) {
  // a table row: one line per column, in its own units, categories by name
  const cols = out.columns, rowH = 16, nameW = 96;
  canvas.width = 320; canvas.height = 8 + rowH * cols.length;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.font = "10px sans-serif"; ctx.textBaseline = "middle";
  const x0 = nameW + 4, w = canvas.width - x0 - 8;
  cols.forEach((c, i) => {
    const y = 4 + i * rowH + rowH / 2;
    ctx.fillStyle = "#222";
    ctx.fillText(c.name.length > 15 ? c.name.slice(0, 14) + "…" : c.name, 2, y);
    if (c.kind === "numeric") {
      const [lo, hi] = c.range, t = Math.min(1, Math.max(0, (c.value - lo) / ((hi - lo) || 1)));
      ctx.fillStyle = "#e3e6ea"; ctx.fillRect(x0, y - 2, w * 0.62, 4);
      ctx.fillStyle = c.missing ? "#999" : PALETTE[0];
      ctx.beginPath(); ctx.arc(x0 + t * w * 0.62, y, 4, 0, 2 * Math.PI); ctx.fill();
      ctx.fillStyle = "#222"; ctx.fillText(fmtNum(c.value), x0 + w * 0.66, y);
    } else {
      let x = x0;
      c.probs.forEach((p, k) => {
        ctx.fillStyle = PALETTE[(k + (c.kind === "binary" ? 2 : 1)) % PALETTE.length];
        ctx.globalAlpha = c.missing ? 0.35 : 1;
        ctx.fillRect(x, y - 5, p * w * 0.45, 10); x += p * w * 0.45;
      });
      ctx.globalAlpha = 1; ctx.fillStyle = "#222";
      const k = c.probs.indexOf(Math.max(...c.probs));
      const label = c.labels[k].length > 12 ? c.labels[k].slice(0, 11) + "…" : c.labels[k];
      ctx.fillText(`${label} ${Math.round(100 * c.probs[k])}%`, x0 + w * 0.48, y);
    }
  });
}

function tableStrip(box, outputs) {
  // several table rows (samples, an interpolation) as an HTML table, one column per column
  const t = document.createElement("table"); t.className = "rows";
  const head = t.insertRow();
  outputs[0].columns.forEach(c => { const th = document.createElement("th");
    th.textContent = c.name; head.append(th); });
  outputs.forEach(o => { const tr = t.insertRow();
    o.columns.forEach(c => { tr.insertCell().textContent = cellText(c); }); });
  box.append(t);
}

// an image canvas keeps its longer side and takes the image's shape (33 x 41 photos are not
// squares); the first size it had is the longer side it keeps
function fitAspect(canvas, h, w) {
  if (!canvas.dataset.side) canvas.dataset.side = Math.max(canvas.width, canvas.height);
  const side = Number(canvas.dataset.side);
  const cw = w >= h ? side : Math.max(1, Math.round(side * w / h));
  const ch = h >= w ? side : Math.max(1, Math.round(side * h / w));
  if (canvas.width !== cw || canvas.height !== ch) { canvas.width = cw; canvas.height = ch; }
}

function drawOutput(canvas, out, info) {
  if (out.columns) { drawColumns(canvas, out); return; }
  const ctx = canvas.getContext("2d");
  if (out.shape) {
    const [c, h, w] = out.shape;
    const tmp = document.createElement("canvas");
    tmp.width = w; tmp.height = h;
    const img = tmp.getContext("2d").createImageData(w, h);
    for (let i = 0; i < h * w; i++) {
      for (let k = 0; k < 3; k++) {
        const v = c === 1 ? out.data[i] : out.data[Math.min(k, c - 1) * h * w + i];
        img.data[4 * i + k] = Math.round(255 * v);
      }
      img.data[4 * i + 3] = 255;
    }
    tmp.getContext("2d").putImageData(img, 0, 0);
    fitAspect(canvas, h, w);
    ctx.imageSmoothingEnabled = false;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(tmp, 0, 0, canvas.width, canvas.height);
  } else {
    const v = out.values, n = v.length;
    const lo = Math.min(0, ...v), hi = Math.max(1e-9, ...v);
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    const bw = canvas.width / n, scale = (canvas.height - 30) / (hi - lo);
    const zero = 10 + hi * scale;
    for (let i = 0; i < n; i++) {
      ctx.fillStyle = PALETTE[i % 10];
      const y = zero - v[i] * scale;
      ctx.fillRect(i * bw + 3, Math.min(y, zero), bw - 6, Math.abs(zero - y));
      ctx.fillStyle = "#222"; ctx.font = "10px sans-serif";
      const name = (info.feature_names || [])[i] || `x${i}`;
      ctx.fillText(name.slice(0, 12), i * bw + 2, canvas.height - 4);
      ctx.fillText(v[i].toFixed(2), i * bw + 2, Math.max(10, Math.min(y, zero) - 2));
    }
  }
}

function toCanvas(xy) {
  const b = S.bounds, c = document.getElementById("scatter");
  return [20 + (xy[0] - b.x0) / (b.x1 - b.x0) * (c.width - 40),
          c.height - 20 - (xy[1] - b.y0) / (b.y1 - b.y0) * (c.height - 40)];
}
function fromCanvas(px, py) {
  const b = S.bounds, c = document.getElementById("scatter");
  return [b.x0 + (px - 20) / (c.width - 40) * (b.x1 - b.x0),
          b.y0 + (c.height - 20 - py) / (c.height - 40) * (b.y1 - b.y0)];
}

function drawScatter() {
  const c = document.getElementById("scatter"), ctx = c.getContext("2d");
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.strokeStyle = "#e3e6ea";
  const [ox, oy] = toCanvas([0, 0]);
  ctx.beginPath(); ctx.moveTo(ox, 0); ctx.lineTo(ox, c.height); ctx.moveTo(0, oy);
  ctx.lineTo(c.width, oy); ctx.stroke();
  const { x, y, labels } = S.pts;
  for (let i = 0; i < x.length; i++) {
    const [px, py] = toCanvas([x[i], y[i]]);
    ctx.fillStyle = labels && labels[i] >= 0 ? PALETTE[labels[i] % PALETTE.length] : "#888";
    ctx.globalAlpha = 0.7;
    ctx.beginPath(); ctx.arc(px, py, 2.6, 0, 2 * Math.PI); ctx.fill();
  }
  ctx.globalAlpha = 1;
  for (const i of S.pick) {
    const [px, py] = toCanvas([x[i], y[i]]);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(px, py, 7, 0, 2 * Math.PI); ctx.stroke();
  }
  if (S.code) {
    const [px, py] = toCanvas(S.position);
    ctx.strokeStyle = "#d62728"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(px - 8, py); ctx.lineTo(px + 8, py); ctx.moveTo(px, py - 8);
    ctx.lineTo(px, py + 8); ctx.stroke();
  }
  ctx.lineWidth = 1;
}

function nearest(px, py) {
  const { x, y } = S.pts;
  let best = -1, bd = 64;
  for (let i = 0; i < x.length; i++) {
    const [qx, qy] = toCanvas([x[i], y[i]]);
    const d = (qx - px) ** 2 + (qy - py) ** 2;
    if (d < bd) { bd = d; best = i; }
  }
  return best;
}

function label() {
  const sel = document.getElementById("label");
  return S.info.needs_label ? Number(sel.value) : undefined;
}

async function decodeBody(body) {
  if (S.busy) { S.pending = body; return; }
  S.busy = true;
  try {
    const lab = label();
    const r = await api("/api/decode", lab === undefined ? body : { ...body, label: lab });
    S.code = r.z; S.position = r.position;
    drawOutput(document.getElementById("decoded"), r.output, S.info);
    document.getElementById("code").textContent =
      "z = [" + r.z.map(v => v.toFixed(2)).join(", ") + "]";
    syncSliders(); drawScatter();
  } finally {
    S.busy = false;
    if (S.pending) { const p = S.pending; S.pending = null; decodeBody(p); }
  }
}

function buildSliders() {
  const box = document.getElementById("sliders");
  const n = Math.min(S.info.latent_dim, MAX_SLIDERS);
  for (let d = 0; d < n; d++) {
    const lab = document.createElement("span");
    lab.textContent = S.info.dim_labels ? S.info.dim_labels[d] : `z${d + 1}`;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: -4, max: 4, step: 0.01, value: 0 });
    input.id = `slider-${d}`;
    const val = document.createElement("span"); val.id = `slider-val-${d}`;
    input.addEventListener("input", () => {
      if (!S.code) return;
      const z = S.code.slice(); z[d] = Number(input.value);
      decodeBody({ z });
    });
    box.append(lab, input, val);
  }
  if (S.info.latent_dim > MAX_SLIDERS) {
    const note = document.createElement("span");
    note.style.gridColumn = "1 / 4";
    note.textContent = `showing ${MAX_SLIDERS} of ${S.info.latent_dim} dimensions`;
    box.append(note);
  }
}

function syncSliders() {
  const n = Math.min(S.info.latent_dim, MAX_SLIDERS);
  for (let d = 0; d < n; d++) {
    document.getElementById(`slider-${d}`).value = S.code[d];
    document.getElementById(`slider-val-${d}`).textContent = S.code[d].toFixed(2);
  }
}

function strip(id, outputs) {
  const box = document.getElementById(id);
  box.innerHTML = "";
  if (outputs.length && outputs[0].columns) { tableStrip(box, outputs); return; }
  for (const o of outputs) {
    const c = document.createElement("canvas");
    c.width = 112; c.height = 112;
    drawOutput(c, o, S.info);
    box.append(c);
  }
}

async function interpolate() {
  const [a, b] = S.pick;
  const method = document.getElementById("method").value;
  const lab = label();
  const r = await api("/api/interpolate", { a, b, steps: 10, method,
    ...(lab === undefined ? {} : { label: lab }) });
  document.getElementById("pair").textContent = `test points ${a} -> ${b}`;
  strip("strip", r.outputs);
}

async function resample() {
  const lab = label();
  const sampler = document.getElementById("sampler").value;
  const r = await api("/api/sample", { n: 12, seed: Math.floor(Math.random() * 1e9), sampler,
    ...(lab === undefined ? {} : { label: lab }) });
  strip("samples", r.outputs);
}

async function showInput(i) {
  // the test input at point i in the "input under the cursor" panel
  S.hovered = i;
  const e = await api("/api/encode", { indices: [i] });
  drawOutput(document.getElementById("hover"), e.inputs[0], S.info);
  const names = S.info.label_names;
  const lab = S.pts.labels ? S.pts.labels[i] : null;
  document.getElementById("hoverinfo").textContent =
    `test point ${i}` + (lab !== null && lab >= 0 && names ? ` — label ${names[lab]}` : "");
}

async function main() {
  S.info = await api("/api/info");
  S.pts = await api("/api/points");
  const names = S.info.label_names;
  document.getElementById("subtitle").textContent =
    `${S.info.model}, latent dimension ${S.info.latent_dim}, ${S.info.n_points} test points — ${S.info.run}`;
  document.getElementById("projection").textContent = S.info.projection_note;
  const xs = S.pts.x, ys = S.pts.y;
  const pad = v => Math.max(0.5, v * 0.08);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  S.bounds = { x0: x0 - pad(x1 - x0), x1: x1 + pad(x1 - x0), y0: y0 - pad(y1 - y0),
               y1: y1 + pad(y1 - y0) };
  const legend = document.getElementById("legend");
  if (S.pts.labels && names) {
    names.forEach((n, i) => {
      const s = document.createElement("span");
      s.style.setProperty("--c", PALETTE[i % PALETTE.length]); s.textContent = n;
      legend.append(s);
    });
  }
  if (S.info.needs_label) {
    document.getElementById("labelbox").classList.remove("hidden");
    const sel = document.getElementById("label");
    (names || []).forEach((n, i) => sel.append(new Option(n, i)));
    sel.addEventListener("change", () => { if (S.code) decodeBody({ z: S.code }); resample(); });
  }
  buildSliders();
  const c = document.getElementById("scatter");
  c.addEventListener("mousemove", async ev => {
    const r = c.getBoundingClientRect();
    const i = nearest(ev.clientX - r.left, ev.clientY - r.top);
    if (i < 0 || i === S.hovered) return;
    await showInput(i);
  });
  c.addEventListener("click", ev => {
    const r = c.getBoundingClientRect();
    const px = ev.clientX - r.left, py = ev.clientY - r.top;
    if (ev.shiftKey) {
      const i = nearest(px, py);
      if (i < 0) return;
      S.pick = S.pick.length >= 2 ? [i] : [...S.pick, i];
      drawScatter();
      if (S.pick.length === 2) interpolate();
      return;
    }
    decodeBody({ position: fromCanvas(px, py) });
  });
  document.getElementById("method").addEventListener("change", () => {
    if (S.pick.length === 2) interpolate();
  });
  document.getElementById("resample").addEventListener("click", resample);
  document.getElementById("sampler").addEventListener("change", resample);
  drawScatter();
  await decodeBody({ z: S.info.mean_code });
  await showInput(0);  // never an empty panel before the first hover
  await resample();
  document.body.dataset.ready = "1";
}

main().catch(err => {
  document.getElementById("subtitle").textContent = "error: " + err.message;
});
