// The Restore tab: pick or drop an image (with the crop the model will
// see), choose a task (inpainting: paint the mask with a mouse, pen, finger
// or the keyboard), a solver that supports it, steps and seed; shows the
// degraded input, x̂₀ previews per step, the result, a download link, and
// PSNR/SSIM when the user gives the clean image.
//
// The mask canvas (#restore-mask) has the model's resolution: what is
// painted is exactly the mask the model sees (sent as r×r RGBA, light =
// fill). A mask image file is sent as it is (the picture's size, cropped
// and resized like it in Go, or the model's), so Go checks its size.
const $ = (id) => document.getElementById(id);

const SOLVER_NAMES = {
  pinv: "A†y (baseline, no model)",
  ddim: "DDIM + pasting (baseline)",
  ddnm: "DDNM",
  dds: "DDS (conjugate gradients)",
  reddiff: "RED-Diff (variational)",
  sde: "Score-SDE (predictor–corrector)",
};
const PREFERRED = ["ddnm", "dds", "reddiff", "sde", "ddim", "pinv"];
const MASK_RGB = [255, 59, 48];

let rt, ui;
let picked = null; // {bytes, name, width, height, bitmap}
let clean = null; // {bytes, name}
let maskFile = null; // {width, height, rgba, name}: a mask image sent as is
let running = false;
let res = 32; // the model's resolution (the mask canvas size)
const cursor = { x: 16, y: 16 };

export function initRestore(ctx) {
  ({ rt, ui } = ctx);
  const prevModel = ui.onModel;
  ui.onModel = (m) => { prevModel?.(m); onModel(m); };
  const prevChange = ui.onChange;
  ui.onChange = () => { prevChange?.(); update(); };

  ui.filePicker("restore-image", "restore-drop", pick);
  $("restore-clean").addEventListener("change", async (e) => {
    const f = e.target.files[0];
    clean = f ? { bytes: await f.arrayBuffer(), name: f.name } : null;
  });
  $("restore-mask-file").addEventListener("change", (e) => e.target.files[0] && pickMask(e.target.files[0]));
  $("restore-task").addEventListener("change", taskChanged);
  $("restore-clear").addEventListener("click", () => { clearMask(); note(""); });
  $("restore-box").addEventListener("click", () => {
    clearMask();
    const g = $("restore-mask").getContext("2d");
    g.fillStyle = `rgb(${MASK_RGB})`;
    // restore.CenterBoxMask: the centred box of half the sides
    g.fillRect(Math.floor(res / 4), Math.floor(res / 4), Math.max(1, Math.floor(res / 2)), Math.max(1, Math.floor(res / 2)));
    note("Centre box.");
  });
  $("restore-error-close").addEventListener("click", clearError);
  $("restore-form").addEventListener("submit", (e) => { e.preventDefault(); run(); });
  $("restore-cancel").addEventListener("click", async () => {
    $("restore-cancel").disabled = true;
    ui.status("Canceling at the next step…");
    await rt.cancel();
  });
  initPainting();
  setResolution(32);
  taskChanged();
}

// ---- errors (shown in the tab, next to the form) ----
function showError(err) {
  if (err?.code === "canceled") {
    clearError();
    ui.status("Canceled.", "idle");
    return;
  }
  $("restore-error-text").textContent = err?.message || String(err);
  $("restore-error").dataset.code = err?.code || "internal";
  $("restore-error").hidden = false;
  ui.status("Failed — see the message in the Restore tab.", "error");
}

function clearError() {
  $("restore-error").hidden = true;
  $("restore-error-text").textContent = "";
}

function note(s) { $("restore-mask-note").textContent = s; }

// ---- model, task, solver ----
function onModel(m) {
  const info = m?.restore || null;
  $("restore-unsupported").hidden = !m || !!info;
  if (m) setResolution(m.resolution);
  const task = $("restore-task");
  if (info) {
    for (const o of task.options) o.disabled = !info.tasks.includes(o.value);
    if (task.selectedOptions[0]?.disabled) task.value = info.tasks[0];
  }
  taskChanged();
  if (picked) { drawCrop(); drawView(); }
  update();
}

function taskChanged() {
  const task = $("restore-task").value;
  const info = ui?.model?.restore;
  const sel = $("restore-solver");
  const prev = sel.value;
  const solvers = info?.solvers?.[task] || PREFERRED;
  sel.replaceChildren(...PREFERRED.filter((s) => solvers.includes(s)).map((s) => new Option(SOLVER_NAMES[s] || s, s)));
  if (solvers.includes(prev)) sel.value = prev;
  $("restore-mask-field").hidden = task !== "inpaint";
  $("restore-sigma-field").hidden = task !== "denoise";
  $("restore-blur-field").hidden = task !== "deblur";
  update();
}

function update() {
  const supported = !ui?.model || !!ui.model.restore;
  $("restore-run").disabled = running || !!ui?.busy || !ui?.model || !supported || !picked;
  $("restore-cancel").disabled = !running;
}

// ---- the picture ----
async function pick(file) {
  clearError();
  picked = null;
  $("restore-crop-figure").hidden = true;
  update();
  try {
    const bytes = await file.arrayBuffer();
    const info = await rt.probe(bytes.slice(0));
    const bitmap = await createImageBitmap(new Blob([bytes], { type: file.type || "image/png" }));
    picked = { bytes, name: file.name, width: info.width, height: info.height, bitmap };
    drawCrop();
    drawView();
    ui.status(`Image ${file.name}: ${info.width}×${info.height} ${info.format.toUpperCase()}.`, "idle");
  } catch (e) {
    if (!e.code) e.code = "bad-image";
    showError(e);
  }
  update();
}

// The centred square the model sees, as nn/imageio.CenterCrop computes it.
function centerCrop(w, h) {
  const s = Math.min(w, h);
  return { x: Math.floor((w - s) / 2), y: Math.floor((h - s) / 2), width: s, height: s };
}

function drawCrop() {
  const { bitmap, width, height } = picked;
  const c = $("restore-crop-preview");
  const scale = Math.min(320 / width, 240 / height);
  c.width = Math.max(1, Math.round(width * scale));
  c.height = Math.max(1, Math.round(height * scale));
  const g = c.getContext("2d");
  g.imageSmoothingEnabled = scale < 1;
  g.drawImage(bitmap, 0, 0, c.width, c.height);
  const r = centerCrop(width, height);
  g.fillStyle = "rgba(0,0,0,0.55)";
  const x = r.x * scale, y = r.y * scale, w = r.width * scale, h = r.height * scale;
  g.fillRect(0, 0, c.width, y);
  g.fillRect(0, y + h, c.width, c.height - y - h);
  g.fillRect(0, y, x, h);
  g.fillRect(x + w, y, c.width - x - w, h);
  g.strokeStyle = "#ffd400";
  g.lineWidth = 2;
  g.strokeRect(x + 1, y + 1, w - 2, h - 2);
  $("restore-crop-caption").textContent = `${width}×${height}: the model sees the highlighted ${r.width}×${r.height} square` +
    (res && res !== r.width ? `, resized to ${res}×${res}.` : ".");
  $("restore-crop-figure").hidden = false;
}

// The model's view under the mask: the crop at the model's resolution
// (grayscale for a one-channel model).
function drawView() {
  const v = $("restore-view");
  v.width = v.height = res;
  const g = v.getContext("2d");
  if (!picked) { g.clearRect(0, 0, res, res); return; }
  const r = centerCrop(picked.width, picked.height);
  g.imageSmoothingEnabled = true;
  g.imageSmoothingQuality = "high";
  g.drawImage(picked.bitmap, r.x, r.y, r.width, r.height, 0, 0, res, res);
  if (ui?.model?.channels === 1) {
    const d = g.getImageData(0, 0, res, res);
    for (let i = 0; i < d.data.length; i += 4) {
      const l = 0.299 * d.data[i] + 0.587 * d.data[i + 1] + 0.114 * d.data[i + 2];
      d.data[i] = d.data[i + 1] = d.data[i + 2] = l;
    }
    g.putImageData(d, 0, 0);
  }
}

// ---- the mask ----
function setResolution(r) {
  if (!r || r === res && $("restore-mask").width === r) return;
  res = r;
  const m = $("restore-mask");
  m.width = m.height = r;
  $("restore-brush").max = String(r);
  $("restore-brush").value = String(Math.max(1, Math.round(r / 8)));
  cursor.x = cursor.y = Math.floor(r / 2);
  maskFile = null;
  drawView();
}

function clearMask() {
  maskFile = null;
  $("restore-mask-file").value = "";
  $("restore-mask").getContext("2d").clearRect(0, 0, res, res);
}

// dab paints (or erases) a disc of the brush's diameter at model pixel (x, y).
function dab(x, y) {
  const g = $("restore-mask").getContext("2d");
  const d = Math.max(1, Number($("restore-brush").value) || 1);
  g.save();
  g.globalCompositeOperation = $("restore-erase").checked ? "destination-out" : "source-over";
  g.fillStyle = `rgb(${MASK_RGB})`;
  g.beginPath();
  g.arc(x, y, d / 2, 0, 2 * Math.PI);
  g.fill();
  g.restore();
}

// stroke paints dabs from (x0, y0) to (x1, y1), half a pixel apart.
function stroke(x0, y0, x1, y1) {
  const n = Math.max(1, Math.ceil(2 * Math.hypot(x1 - x0, y1 - y0)));
  for (let i = 0; i <= n; i++) dab(x0 + ((x1 - x0) * i) / n, y0 + ((y1 - y0) * i) / n);
}

function initPainting() {
  const m = $("restore-mask");
  let last = null;
  const at = (e) => {
    const b = m.getBoundingClientRect();
    return [((e.clientX - b.left) / b.width) * res, ((e.clientY - b.top) / b.height) * res];
  };
  const startPainting = () => {
    if (maskFile) { // painting replaces a loaded mask file
      maskFile = null;
      $("restore-mask-file").value = "";
      note("");
    }
  };
  m.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    startPainting();
    try { m.setPointerCapture(e.pointerId); } catch { /* synthetic events */ }
    last = at(e);
    stroke(...last, ...last);
  });
  m.addEventListener("pointermove", (e) => {
    if (!last) return;
    e.preventDefault();
    const p = at(e);
    stroke(...last, ...p);
    last = p;
  });
  for (const t of ["pointerup", "pointercancel", "lostpointercapture"]) {
    m.addEventListener(t, () => { last = null; });
  }
  // Keyboard: arrows move the brush, Space/Enter paints, Delete erases.
  const c = $("restore-cursor");
  const showCursor = () => {
    const d = Math.max(1, Number($("restore-brush").value) || 1);
    c.style.left = `${((cursor.x + 0.5) / res) * 100}%`;
    c.style.top = `${((cursor.y + 0.5) / res) * 100}%`;
    c.style.width = c.style.height = `${(d / res) * 100}%`;
    c.hidden = false;
  };
  m.addEventListener("focus", showCursor);
  m.addEventListener("blur", () => { c.hidden = true; });
  m.addEventListener("keydown", (e) => {
    const step = e.shiftKey ? 4 : 1;
    const mv = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
    if (mv) {
      cursor.x = Math.min(res - 1, Math.max(0, cursor.x + mv[0]));
      cursor.y = Math.min(res - 1, Math.max(0, cursor.y + mv[1]));
    } else if (e.key === " " || e.key === "Enter" || e.key === "Delete" || e.key === "Backspace") {
      startPainting();
      const erase = $("restore-erase");
      const was = erase.checked;
      if (e.key === "Delete" || e.key === "Backspace") erase.checked = true;
      dab(cursor.x + 0.5, cursor.y + 0.5);
      erase.checked = was;
    } else {
      return;
    }
    e.preventDefault();
    showCursor();
  });
}

// maskImage is the painted mask as opaque RGBA: white = fill, black = keep.
function maskImage() {
  const d = $("restore-mask").getContext("2d").getImageData(0, 0, res, res).data;
  const out = new Uint8ClampedArray(d.length);
  for (let i = 0; i < d.length; i += 4) {
    const v = d[i + 3] >= 128 ? 255 : 0;
    out[i] = out[i + 1] = out[i + 2] = v;
    out[i + 3] = 255;
  }
  return { width: res, height: res, rgba: out };
}

// pickMask loads a mask image: it is sent as it is (Go checks its size and
// crops it like the picture); the overlay shows it when its size fits.
async function pickMask(file) {
  clearError();
  try {
    const bitmap = await createImageBitmap(file);
    const c = new OffscreenCanvas(bitmap.width, bitmap.height);
    const g = c.getContext("2d");
    g.drawImage(bitmap, 0, 0);
    const data = g.getImageData(0, 0, bitmap.width, bitmap.height).data;
    const mg = $("restore-mask").getContext("2d");
    mg.clearRect(0, 0, res, res);
    // the overlay: light pixels (after the crop, when it is the picture's size)
    let src = null;
    if (bitmap.width === res && bitmap.height === res) src = { x: 0, y: 0, width: res, height: res };
    else if (picked && bitmap.width === picked.width && bitmap.height === picked.height) src = centerCrop(bitmap.width, bitmap.height);
    if (src) {
      const t = new OffscreenCanvas(res, res);
      const tg = t.getContext("2d");
      tg.drawImage(bitmap, src.x, src.y, src.width, src.height, 0, 0, res, res);
      const d = tg.getImageData(0, 0, res, res);
      for (let i = 0; i < d.data.length; i += 4) {
        const l = (0.299 * d.data[i] + 0.587 * d.data[i + 1] + 0.114 * d.data[i + 2]) * (d.data[i + 3] / 255);
        [d.data[i], d.data[i + 1], d.data[i + 2]] = MASK_RGB;
        d.data[i + 3] = l >= 127.5 ? 255 : 0;
      }
      mg.putImageData(d, 0, 0);
    }
    maskFile = { width: bitmap.width, height: bitmap.height, rgba: new Uint8ClampedArray(data), name: file.name };
    note(`Mask ${file.name}: ${bitmap.width}×${bitmap.height}` + (src ? "." : ` (it must be ${picked ? `${picked.width}×${picked.height} or ` : ""}${res}×${res}).`));
  } catch (e) {
    showError(Object.assign(new Error(`Mask ${file.name}: ${e.message || e}`), { code: "bad-mask" }));
  }
}

// ---- running ----
function putRGBA(canvas, img) {
  canvas.width = img.width;
  canvas.height = img.height;
  canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(img.rgba), img.width, img.height), 0, 0);
}

function number(id, def) {
  const v = Number($(id).value);
  return Number.isFinite(v) ? v : def;
}

async function run() {
  if (!picked || !ui.model || running) return;
  clearError();
  const task = $("restore-task").value;
  const opts = {
    image: { bytes: picked.bytes.slice(0) },
    task,
    solver: $("restore-solver").value,
    steps: Math.round(number("restore-steps", 20)),
    seed: Math.max(0, Math.round(number("restore-seed", 0))),
    blurSigma: number("restore-blur", 2),
  };
  if (task === "denoise") opts.sigmaY = number("restore-sigma", 0.1);
  if (task === "inpaint") {
    const m = maskFile || maskImage();
    opts.mask = { width: m.width, height: m.height, rgba: new Uint8ClampedArray(m.rgba) };
  }
  if (clean) opts.clean = { bytes: clean.bytes.slice(0) };
  running = true;
  update();
  const bar = $("restore-progress");
  bar.hidden = false;
  bar.value = 0;
  const preview = $("restore-preview");
  const result = $("restore-result");
  // The previous result stays until the first preview replaces it.
  let first = true;
  $("restore-metrics").textContent = "";
  $("restore-after-caption").textContent = "Working…";
  ui.status(`Restoring (${task}, ${opts.solver})…`);
  try {
    const out = await rt.restore(opts, (s) => {
      bar.max = s.steps;
      bar.value = s.k;
      ui.status(`Step ${s.k} of ${s.steps}…`);
      if (s.preview) putRGBA(preview, s.preview);
      if (first) {
        first = false;
        preview.hidden = false;
        result.hidden = true;
        $("restore-download").hidden = true;
      }
    });
    if (out.degraded) putRGBA($("restore-degraded"), out.degraded);
    const c = document.createElement("canvas");
    putRGBA(c, out);
    const url = c.toDataURL("image/png");
    result.src = url;
    result.width = out.width;
    result.height = out.height;
    result.dataset.calls = out.calls;
    result.dataset.ms = out.ms;
    result.alt = `Restored image (${task}, ${opts.solver})`;
    result.hidden = false;
    preview.hidden = true;
    const dl = $("restore-download");
    dl.href = url;
    dl.download = `retrace-${task}-${opts.solver}-${opts.seed}.png`;
    dl.hidden = false;
    $("restore-after-caption").textContent = "Restored";
    if (out.psnr !== null && out.psnr !== undefined) {
      $("restore-metrics").textContent = `PSNR ${out.psnr.toFixed(2)} dB, SSIM ${out.ssim.toFixed(4)} against ${clean?.name || "the clean image"}.`;
    }
    $("restore-info").textContent = `${out.width}×${out.height}, ${out.calls} model calls, ${(out.ms / 1000).toFixed(1)} s.`;
    bar.value = bar.max;
    ui.status(`Restored in ${(out.ms / 1000).toFixed(1)} s.`, "done");
  } catch (e) {
    preview.hidden = true;
    result.hidden = !result.getAttribute("src");
    $("restore-download").hidden = result.hidden;
    $("restore-after-caption").textContent = "Restored";
    if (e.code === "device-lost") {
      ui.model = null;
      document.body.dataset.model = "none";
      ui.error(e, () => ui.reinit());
    } else {
      showError(e);
    }
  } finally {
    running = false;
    bar.hidden = true;
    update();
  }
}

// For tests and the console: the mask as it would be sent.
export function currentMask() {
  return maskFile || maskImage();
}
