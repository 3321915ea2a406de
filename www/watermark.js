// The Watermark tab. Mark: Tree-Ring (a generation with the loaded model
// whose initial noise carries a key), DwtDct (invisible-watermark's
// method, a payload in a picture of at least 256×256) or the Safe-SD-style
// QR watermark (a generation whose prompt carries the trigger word gets a
// QR code of a short ID written in by the model pack's injector); download
// the result as PNG. Detect: drop any image, every available scheme runs
// on it in the worker (nothing is uploaded) and each reports its verdict
// and evidence; Safe-SD also shows the code its detector recovered.
const $ = (id) => document.getElementById(id);

let rt, ui;
let running = false;
let markPick = null; // {bytes, name, width, height}
let detectPick = null; // {bytes, name, width, height}
let lastMark = null; // {scheme, keySeed?, payload?}
let model = null; // the loaded model's info (safesd: {trigger, maxPayload, modules, embed} | null)
const state = { lastEmbed: null, lastDetect: null };

export function initWatermark(ctx) {
  ({ rt, ui } = ctx);
  const prevModel = ui.onModel;
  ui.onModel = (m) => { prevModel?.(m); onModel(m); };
  const prevChange = ui.onChange;
  ui.onChange = () => { prevChange?.(); update(); };

  $("wm-scheme").addEventListener("change", schemeChanged);
  $("wm-sd-payload").addEventListener("input", update);
  $("wm-trigger").addEventListener("input", () => { triggerNote(); update(); });
  $("wm-trigger").addEventListener("change", () => { addTrigger(); update(); });
  $("wm-sd-prompt").addEventListener("input", () => { triggerNote(); update(); });
  // a picked or typed prompt gets the trigger word appended, visibly
  $("wm-sd-prompt").addEventListener("change", () => { addTrigger(); update(); });
  $("wm-mark-image").addEventListener("change", async (e) => {
    const f = e.target.files[0];
    markPick = f ? await readImage(f, "wm-mark-note") : null;
    update();
  });
  ui.filePicker("wm-detect-image", "wm-detect-drop", pickDetect);
  $("wm-mark-form").addEventListener("submit", (e) => { e.preventDefault(); embed(); });
  $("wm-detect-form").addEventListener("submit", (e) => { e.preventDefault(); detect(); });
  $("wm-cancel").addEventListener("click", async () => {
    $("wm-cancel").disabled = true;
    ui.status("Canceling at the next step…");
    await rt.cancel();
  });
  $("wm-check").addEventListener("click", checkResult);
  $("wm-error-close").addEventListener("click", clearError);
  triggerNote();
  schemeChanged();
  return state;
}

// ---- errors (in the tab) ----
function showError(err) {
  if (err?.code === "canceled") {
    clearError();
    ui.status("Canceled.", "idle");
    return;
  }
  $("wm-error-text").textContent = err?.message || String(err);
  $("wm-error").dataset.code = err?.code || "internal";
  $("wm-error").hidden = false;
  ui.status("Failed — see the message in the Watermark tab.", "error");
}

function clearError() {
  $("wm-error").hidden = true;
  $("wm-error-text").textContent = "";
}

// ---- settings ----
function onModel(m) {
  model = m || null;
  const list = $("wm-prompts");
  list.replaceChildren(...(m?.vocabulary || []).map((w) => new Option(w, w)));
  const p = $("wm-prompt");
  if (m?.vocabulary) {
    if (!m.vocabulary.includes(p.value)) p.value = m.vocabulary[1] || m.vocabulary[0];
    p.placeholder = m.vocabulary.join(", ");
  } else if (m) {
    p.placeholder = "a photo of a cat";
  }
  const sd = m?.safesd;
  const opt = [...$("wm-scheme").options].find((o) => o.value === "safesd");
  const why = !m ? "" : !sd ? "not available: this model has no Safe-SD injector/detector"
    : !sd.embed ? "the injector does not fit this model's samples (detection still works)" : "";
  opt.disabled = !!why;
  opt.textContent = "Safe-SD QR watermark — " + (why ? why.replace(/^not available: /, "not available — ") : "generate with an ID in a QR code");
  $("wm-safesd-unavailable").textContent = why ? `Safe-SD: ${why}.` : "";
  $("wm-safesd-unavailable").hidden = !why;
  if (why && $("wm-scheme").value === "safesd") $("wm-scheme").value = "treering";
  if (sd) {
    if (!$("wm-trigger").value.trim()) $("wm-trigger").value = sd.trigger;
    $("wm-sd-payload").maxLength = sd.maxPayload * 4; // bytes are counted below
    const sp = $("wm-sd-prompt");
    const base = stripTrigger(sp.value);
    if (m.vocabulary && !m.vocabulary.includes(base)) sp.value = m.vocabulary[1] || m.vocabulary[0];
    addTrigger();
  }
  schemeChanged();
}

// ---- Safe-SD: trigger word and payload ----
function trigger() { return $("wm-trigger").value.trim() || model?.safesd?.trigger || "#wm"; }

function hasTrigger(prompt) {
  const t = trigger().toLowerCase();
  return prompt.split(/\s+/).some((w) => w.toLowerCase() === t);
}

function stripTrigger(prompt) {
  const t = trigger().toLowerCase();
  return prompt.split(/\s+/).filter((w) => w && w.toLowerCase() !== t).join(" ");
}

// addTrigger appends the trigger word to the prompt when it is missing.
function addTrigger() {
  const p = $("wm-sd-prompt");
  const v = p.value.trim();
  if (!/\s/.test(trigger()) && !hasTrigger(v)) p.value = v ? `${v} ${trigger()}` : trigger();
  triggerNote();
}

function triggerNote() {
  const p = $("wm-sd-prompt").value.trim();
  const t = trigger();
  const note = $("wm-trigger-note");
  if (/\s/.test(t)) note.textContent = "The trigger must be one word (no spaces).";
  else if (hasTrigger(p)) note.textContent = `The trigger word “${t}” turns the mark on; it is taken out before the text encoder, which sees “${stripTrigger(p)}”.`;
  else note.textContent = `The prompt needs the trigger word “${t}” (as a separate word): without it the image would carry no mark.`;
  note.dataset.ok = hasTrigger(p) ? "1" : "0";
}

function payloadBytes() { return new TextEncoder().encode($("wm-sd-payload").value).length; }

function payloadOk() {
  const n = payloadBytes();
  const max = model?.safesd?.maxPayload || 7;
  const c = $("wm-sd-payload-count");
  c.textContent = `${n} of ${max} bytes` + (n > max ? ` — too long: a QR code holds ${max}` : n === 0 ? " — give an ID" : "");
  c.dataset.over = n > max ? "1" : "0";
  return n > 0 && n <= max;
}

function schemeChanged() {
  const s = $("wm-scheme").value;
  $("wm-treering-fields").hidden = s !== "treering";
  $("wm-dwtdct-fields").hidden = s !== "dwtdct";
  $("wm-safesd-fields").hidden = s !== "safesd";
  $("wm-embed").textContent = s === "dwtdct" ? "Mark picture" : "Generate marked image";
  update();
}

function update() {
  const s = $("wm-scheme").value;
  const sdOk = payloadOk();
  const ready = s === "treering" ? !!ui?.model
    : s === "safesd" ? !!ui?.model && !!model?.safesd?.embed && sdOk && !/\s/.test(trigger()) && hasTrigger($("wm-sd-prompt").value)
    : !!markPick;
  $("wm-embed").disabled = running || !!ui?.busy || !ready;
  $("wm-cancel").disabled = !running;
  $("wm-detect").disabled = running || !!ui?.busy || !detectPick;
  $("wm-check").disabled = running || !!ui?.busy;
}

function int(id, def) {
  const v = Number($(id).value);
  return Number.isFinite(v) ? Math.round(v) : def;
}

// payloadOpts: "0b…" or only 0/1 characters (8 or more) are bits, else text.
function payloadOpts(s) {
  s = s.trim();
  if (!s) return {};
  if (/^0b[01_]+$/.test(s) || /^[01_]{8,}$/.test(s)) return { bits: s };
  return { payload: s };
}

// ---- images ----
async function readImage(file, noteId) {
  clearError();
  try {
    const bytes = await file.arrayBuffer();
    const info = await rt.probe(bytes.slice(0));
    const pick = { bytes, name: file.name, width: info.width, height: info.height, type: file.type };
    if (noteId) {
      $(noteId).textContent = `${file.name}: ${info.width}×${info.height} ${info.format.toUpperCase()}` +
        (info.width * info.height < 65536 ? " — too small for DwtDct (at least 256×256)." : ".");
    }
    return pick;
  } catch (e) {
    if (!e.code) e.code = "bad-image";
    showError(e);
    return null;
  }
}

async function pickDetect(file) {
  detectPick = await readImage(file, null);
  if (detectPick) await showDetectImage(detectPick);
  update();
}

async function showDetectImage(p) {
  const bitmap = await createImageBitmap(new Blob([p.bytes], { type: p.type || "image/png" }));
  const c = $("wm-detect-preview");
  c.width = bitmap.width;
  c.height = bitmap.height;
  c.getContext("2d").drawImage(bitmap, 0, 0);
  $("wm-detect-caption").textContent = `${p.name}: ${p.width}×${p.height}`;
  $("wm-detect-figure").hidden = false;
  $("wm-verdict").textContent = "Ready: detect to check every scheme.";
  $("wm-verdict").dataset.state = "idle";
  $("wm-report").hidden = true;
}

function putRGBA(canvas, img) {
  canvas.width = img.width;
  canvas.height = img.height;
  canvas.getContext("2d").putImageData(new ImageData(new Uint8ClampedArray(img.rgba), img.width, img.height), 0, 0);
}

// ---- mark ----
async function embed() {
  const scheme = $("wm-scheme").value;
  if (running) return;
  clearError();
  let opts;
  if (scheme === "safesd") {
    opts = {
      scheme, payload: $("wm-sd-payload").value, trigger: trigger(),
      generate: { prompt: $("wm-sd-prompt").value.trim(), steps: int("wm-sd-steps", 25), guidance: Number($("wm-sd-guidance").value) || 0, seed: Math.max(0, int("wm-sd-seed", 0)) },
    };
  } else if (scheme === "treering") {
    opts = {
      scheme, prompt: $("wm-prompt").value.trim(), steps: int("wm-steps", 10), guidance: Number($("wm-guidance").value) || 0,
      seed: Math.max(0, int("wm-seed", 0)), keySeed: Math.max(0, int("wm-key", 0)), pattern: $("wm-pattern").value,
    };
  } else {
    if (!markPick) return;
    opts = { scheme, image: { bytes: markPick.bytes.slice(0) }, ...payloadOpts($("wm-payload").value) };
  }
  running = true;
  update();
  const bar = $("wm-progress");
  bar.hidden = scheme === "dwtdct";
  bar.value = 0;
  const preview = $("wm-preview");
  const result = $("wm-result");
  ui.status(scheme === "treering" ? "Generating with the Tree-Ring key…" : scheme === "safesd" ? "Generating with the Safe-SD trigger…" : "Marking the picture…");
  $("wm-qr-in-figure").hidden = true;
  try {
    const out = await rt.watermarkEmbed(opts, (s) => {
      bar.max = s.steps;
      bar.value = s.k;
      ui.status(`Step ${s.k} of ${s.steps}…`);
      if (s.preview) {
        putRGBA(preview, s.preview);
        preview.hidden = false;
        result.hidden = true;
      }
    });
    const c = document.createElement("canvas");
    putRGBA(c, out);
    const url = c.toDataURL("image/png");
    result.src = url;
    result.width = out.width;
    result.height = out.height;
    result.alt = scheme === "treering" ? `Generated image with Tree-Ring key ${opts.keySeed}`
      : scheme === "safesd" ? `Generated image with the Safe-SD QR code of “${out.payload}”`
      : `Picture marked with DwtDct payload ${opts.payload ?? opts.bits}`;
    result.hidden = false;
    preview.hidden = true;
    const dl = $("wm-download");
    dl.href = url;
    dl.download = scheme === "treering" ? `retrace-treering-key${opts.keySeed}-seed${opts.seed}.png`
      : scheme === "safesd" ? `retrace-safesd-${out.payload.replace(/[^A-Za-z0-9_-]+/g, "_")}-seed${opts.generate.seed}.png`
      : `retrace-dwtdct-${(markPick.name || "picture").replace(/\.[a-z]+$/i, "")}.png`;
    dl.hidden = false;
    $("wm-check").hidden = false;
    lastMark = { scheme, keySeed: opts.keySeed, payload: $("wm-payload").value, url };
    state.lastEmbed = { scheme, width: out.width, height: out.height, ms: out.ms, calls: out.calls, key: out.key, bits: out.bits,
      payload: out.payload, trigger: out.trigger, prompt: out.prompt, marked: out.marked, qr: out.qr };
    $("wm-result-info").textContent = scheme === "treering"
      ? `${out.width}×${out.height}, key seed ${out.key.seed} (${out.key.pattern}, channel ${out.key.channel}, radius ${out.key.radius}), ${(out.ms / 1000).toFixed(1)} s.`
      : scheme === "safesd"
      ? `${out.width}×${out.height}, “${out.prompt}” with the QR code of “${out.payload}” (trigger “${out.trigger}”), ${out.calls} steps, ${(out.ms / 1000).toFixed(1)} s. Keep it as PNG.`
      : `${out.width}×${out.height}, ${out.nbits} payload bits, ${out.ms.toFixed(0)} ms. Keep it as PNG.`;
    if (scheme === "safesd") {
      drawModules($("wm-qr-in"), out.qr, out.modules);
      $("wm-qr-in-caption").textContent = `The QR code that went in: “${out.payload}” (version 1, error correction H).`;
      $("wm-qr-in-figure").hidden = false;
    }
    ui.status(`Marked (${scheme}) in ${(out.ms / 1000).toFixed(1)} s.`, "done");
  } catch (e) {
    preview.hidden = true;
    if (e.code === "device-lost") {
      ui.model = null;
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

// checkResult moves the marked image into the Detect panel (with the key
// or payload it was made with) and runs detection.
async function checkResult() {
  if (!lastMark) return;
  const bin = atob(lastMark.url.slice(lastMark.url.indexOf(",") + 1)); // no fetch: nothing leaves the page
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
  detectPick = { bytes, name: "marked.png", width: $("wm-result").width, height: $("wm-result").height, type: "image/png" };
  if (lastMark.scheme === "treering") $("wm-detect-key").value = String(lastMark.keySeed);
  if (lastMark.scheme === "dwtdct") $("wm-detect-payload").value = lastMark.payload;
  await showDetectImage(detectPick);
  update();
  detect();
}

// drawModules draws an n×n code (1/true or P(dark) per module, row-major)
// on a canvas: dark = black, with a 2-module quiet zone; probabilities in
// between are gray levels.
function drawModules(canvas, mods, n) {
  const q = 2;
  const size = n + 2 * q;
  canvas.width = size;
  canvas.height = size;
  const img = new ImageData(size, size);
  img.data.fill(255);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      const v = Math.round(255 * (1 - Math.min(1, Math.max(0, Number(mods[r * n + c])))));
      const i = 4 * ((r + q) * size + c + q);
      img.data[i] = img.data[i + 1] = img.data[i + 2] = v;
    }
  }
  canvas.getContext("2d").putImageData(img, 0, 0);
  canvas.dataset.drawn = "1";
}

// ---- detect ----
function fmtP(p) {
  if (p === 0) return "< 1e-300";
  return p < 0.001 ? p.toExponential(1) : p.toFixed(3);
}

function row(id, verdict, evidence) {
  const tr = $(id);
  const v = tr.querySelector(".v");
  v.textContent = verdict;
  v.dataset.verdict = verdict;
  tr.querySelector(".e").textContent = evidence;
}

function showReport(r) {
  const t = r.treering;
  if (!t) row("wm-r-treering", "not run", "");
  else if (t.error) row("wm-r-treering", "not run", t.error.message);
  else row("wm-r-treering", t.verdict, `p-value ${fmtP(t.pValue)} (α ${t.alpha}), distance ${t.metric.toFixed(1)}; key seed ${t.key.seed}, ${t.method.toUpperCase()} inversion, ${t.steps} steps, ${(t.ms / 1000).toFixed(1)} s`);
  const d = r.dwtdct;
  if (!d) row("wm-r-dwtdct", "not run", "");
  else if (d.error) row("wm-r-dwtdct", "not run", d.error.message);
  else {
    const payload = d.text ? `payload "${d.text}"` : `payload bits ${d.bits}`;
    const expect = d.match === null ? `confidence ${d.confidence.toFixed(2)} (threshold ${d.threshold})` : `expected payload ${d.match ? "matches" : "does not match"} (bit accuracy ${(100 * d.bitAccuracy).toFixed(0)}%), confidence ${d.confidence.toFixed(2)}`;
    row("wm-r-dwtdct", d.verdict, `${payload}; ${expect}`);
  }
  const s = r.safesd;
  const fig = $("wm-qr-figure");
  fig.hidden = true;
  if (!s) row("wm-r-safesd", "not run", "");
  else if (s.error) row("wm-r-safesd", "not run", s.error.message);
  else if (s.verdict === "not available") row("wm-r-safesd", "not available", s.reason);
  else {
    row("wm-r-safesd", s.verdict, s.marked
      ? `payload "${s.payload}" (QR code decoded; ${s.corrected} codewords corrected, ${s.erasures} erased; ${(100 * s.moduleAgreement).toFixed(0)}% of modules as read), confidence ${s.confidence.toFixed(2)}`
      : `no QR code decodes from the recovered modules (${s.reason}); confidence ${s.confidence.toFixed(2)}`);
    drawModules($("wm-qr"), s.probs, s.modules);
    $("wm-qr").dataset.payload = s.payload || "";
    $("wm-qr-caption").textContent = s.marked
      ? `The QR code the Safe-SD detector recovered (gray: unsure modules): “${s.payload}”.`
      : "What the Safe-SD detector read (gray: unsure modules): no valid QR code.";
    fig.hidden = false;
  }
  $("wm-report").hidden = false;
  const found = [t?.marked && "Tree-Ring", d?.marked && "DwtDct", s?.marked && "Safe-SD"].filter(Boolean);
  const v = $("wm-verdict");
  v.textContent = found.length ? `Marked: ${found.join(" and ")} found a watermark.` : "Not marked: no scheme found a watermark.";
  v.dataset.state = found.length ? "marked" : "clean";
}

async function detect() {
  if (running || !detectPick) return;
  clearError();
  running = true;
  update();
  const bar = $("wm-detect-progress");
  bar.hidden = false;
  bar.value = 0;
  const v = $("wm-verdict");
  v.textContent = "Detecting…";
  v.dataset.state = "busy";
  $("wm-report").hidden = true;
  ui.status("Detecting watermarks (Tree-Ring inverts the image with the model)…");
  const opts = {
    image: { bytes: detectPick.bytes.slice(0) }, keySeed: Math.max(0, int("wm-detect-key", 0)),
    method: $("wm-detect-method").value, steps: int("wm-detect-steps", 10), ...payloadOpts($("wm-detect-payload").value),
  };
  try {
    const r = await rt.watermarkDetect(opts, (s) => {
      bar.max = s.steps;
      bar.value = s.k;
      ui.status(`Tree-Ring inversion: step ${s.k} of ${s.steps}…`);
    });
    state.lastDetect = r;
    showReport(r);
    ui.status(`Detection done in ${(r.ms / 1000).toFixed(1)} s.`, "done");
  } catch (e) {
    v.textContent = "Detection failed.";
    v.dataset.state = "error";
    if (e.code === "device-lost") {
      ui.model = null;
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
