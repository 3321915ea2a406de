// The Edit tab: pick or drop an image (with the crop the model will see),
// prompts (free text, or the model's class vocabulary as choices), method
// and settings, live step previews, before/after and download.
const $ = (id) => document.getElementById(id);

let rt, ui;
let picked = null; // {bytes: ArrayBuffer, name, width, height, bitmap}
let running = false;

export function initEdit(ctx) {
  ({ rt, ui } = ctx);
  const prev = ui.onModel;
  ui.onModel = (m) => { prev?.(m); onModel(m); };
  ui.onChange = update;

  ui.filePicker("image-input", "drop", pick);
  $("method").addEventListener("change", methodChanged);
  methodChanged();
  $("reconstruct").addEventListener("change", update);
  $("edit-form").addEventListener("submit", (e) => { e.preventDefault(); run(); });
  $("cancel").addEventListener("click", async () => {
    $("cancel").disabled = true;
    ui.status("Canceling at the next step…");
    await rt.cancel();
  });
  update();
}

function methodChanged() {
  const m = $("method").value;
  $("p2p").open = m === "direct";
  $("skip-field").hidden = m !== "ef-ddpm";
}

function update() {
  $("run").disabled = running || ui.busy || !ui.model || !picked;
  $("cancel").disabled = !running;
  $("target").disabled = $("reconstruct").checked;
}

// Class-vocabulary models take one of their classes as the prompt: the
// prompt fields become selects (same ids, so scripts and tests find them).
function onModel(m) {
  for (const id of ["source", "target"]) {
    const old = $(id);
    let el;
    if (m && m.vocabulary) {
      el = document.createElement("select");
      for (const w of m.vocabulary) el.append(new Option(w, w));
      if (id === "target" && m.vocabulary.length > 1) el.selectedIndex = 1;
    } else {
      el = document.createElement("input");
      el.type = "text";
      el.autocomplete = "off";
      el.value = old.tagName === "INPUT" ? old.value : "";
    }
    el.id = id;
    if (old.tagName !== el.tagName || el.tagName === "SELECT") old.replaceWith(el);
  }
  if (m && !m.vocabulary && !$("source").value) {
    $("source").placeholder = "a photo of a cat";
    $("target").placeholder = "a photo of a dog";
  }
  if (picked) drawCrop();
  update();
}

async function pick(file) {
  ui.clearError();
  picked = null;
  $("crop-figure").hidden = true;
  update();
  try {
    const bytes = await file.arrayBuffer();
    // The worker checks the header (format, size limit) without decoding
    // the pixels: the same checks, and messages, as the edit itself.
    const info = await rt.probe(bytes.slice(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: file.type || "image/png" }));
    picked = { bytes, name: file.name, width: info.width, height: info.height, format: info.format, bitmap };
    drawCrop();
    ui.status(`Image ${file.name}: ${info.width}×${info.height} ${info.format.toUpperCase()}.`, "idle");
  } catch (e) {
    if (!e.code) e.code = "bad-image";
    ui.error(e);
  }
  update();
}

// The centred square the model sees, as nn/imageio.CenterCrop computes it.
function centerCrop(w, h, cw0, ch0) {
  let cw = w, ch = Math.floor((w * ch0) / cw0);
  if (ch > h) { ch = h; cw = Math.floor((h * cw0) / ch0); }
  return { x: Math.floor((w - cw) / 2), y: Math.floor((h - ch) / 2), width: cw, height: ch };
}

function drawCrop() {
  const { bitmap, width, height } = picked;
  const c = $("crop-preview");
  // Fit 320×240; small images are enlarged (pixelated) so the crop shows.
  const scale = Math.min(320 / width, 240 / height);
  c.width = Math.max(1, Math.round(width * scale));
  c.height = Math.max(1, Math.round(height * scale));
  const g = c.getContext("2d");
  g.imageSmoothingEnabled = scale < 1;
  g.drawImage(bitmap, 0, 0, c.width, c.height);
  const res = ui.model?.resolution || 0;
  const r = centerCrop(width, height, 1, 1);
  g.fillStyle = "rgba(0,0,0,0.55)";
  const x = r.x * scale, y = r.y * scale, w = r.width * scale, h = r.height * scale;
  g.fillRect(0, 0, c.width, y);
  g.fillRect(0, y + h, c.width, c.height - y - h);
  g.fillRect(0, y, x, h);
  g.fillRect(x + w, y, c.width - x - w, h);
  g.strokeStyle = "#ffd400";
  g.lineWidth = 2;
  g.strokeRect(x + 1, y + 1, w - 2, h - 2);
  $("crop-caption").textContent = `${width}×${height}: the model sees the highlighted ${r.width}×${r.height} square` +
    (res && res !== r.width ? `, resized to ${res}×${res}.` : ".");
  $("crop-figure").hidden = false;
}

function putRGBA(canvas, img) {
  canvas.width = img.width;
  canvas.height = img.height;
  canvas.getContext("2d").putImageData(new ImageData(img.rgba, img.width, img.height), 0, 0);
}

function number(id, def) {
  const v = Number($(id).value);
  return Number.isFinite(v) ? v : def;
}

async function run() {
  if (!picked || !ui.model || running) return;
  ui.clearError();
  const opts = {
    image: { bytes: picked.bytes.slice(0) },
    source: $("source").value,
    target: $("target").value,
    method: $("method").value,
    steps: Math.round(number("steps", 20)),
    guidance: number("guidance", 3),
    seed: Math.max(0, Math.round(number("seed", 0))),
    cross: number("cross", 0.8),
    self: number("self", 0.4),
    blend: $("blend").value.trim(),
    skip: Math.round(number("skip", 0)),
    reconstruct: $("reconstruct").checked,
  };
  running = true;
  update();
  const bar = $("progress");
  bar.hidden = false;
  bar.value = 0;
  const preview = $("preview");
  const result = $("result");
  preview.hidden = false;
  result.hidden = true;
  $("download").hidden = true;
  $("after-caption").textContent = "Working…";
  ui.status(`${opts.reconstruct ? "Reconstructing" : "Editing"} with ${opts.method}…`);
  try {
    const out = await rt.edit(opts, (s) => {
      bar.max = s.steps;
      bar.value = s.k;
      ui.status(`Step ${s.k} of ${s.steps} (model calls)…`);
      if (s.preview) putRGBA(preview, s.preview);
    });
    if (out.input) putRGBA($("before"), out.input);
    const c = document.createElement("canvas");
    putRGBA(c, out);
    const url = c.toDataURL("image/png");
    result.src = url;
    result.width = out.width;
    result.height = out.height;
    result.dataset.calls = out.calls;
    result.dataset.ms = out.ms;
    result.alt = opts.reconstruct ? `Reconstruction of the source (${opts.method})` : `Edited image: ${opts.target}`;
    result.hidden = false;
    preview.hidden = true;
    const dl = $("download");
    dl.href = url;
    dl.download = `retrace-${opts.method}-${opts.seed}.png`;
    dl.hidden = false;
    $("after-caption").textContent = opts.reconstruct ? "Reconstruction" : "After";
    $("result-info").textContent = `${out.width}×${out.height}, ${out.calls} model calls, ${(out.ms / 1000).toFixed(1)} s.`;
    bar.value = bar.max;
    ui.status(`Done in ${(out.ms / 1000).toFixed(1)} s.`, "done");
  } catch (e) {
    preview.hidden = true;
    $("after-caption").textContent = "After";
    if (e.code === "device-lost") {
      // The worker dropped the device and the model: retry makes a new
      // device and loads the model again (from the cache).
      ui.model = null;
      document.body.dataset.model = "none";
      ui.error(e, () => ui.reinit());
    } else {
      ui.error(e);
    }
  } finally {
    running = false;
    bar.hidden = true;
    update();
  }
}
