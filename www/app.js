// The page: tabs, the GPU (adapter) panel, the model picker, status and
// errors. The runtime lives in a worker (retrace.js wraps it); each tab is
// its own module (edit.js, restore.js, watermark.js). The page never blocks: all model work happens
// in the worker.
import { Retrace } from "./retrace.js";
import { initEdit } from "./edit.js";
import { initRestore, currentMask } from "./restore.js";
import { initWatermark } from "./watermark.js";

const $ = (id) => document.getElementById(id);
const DEFAULT_PACK = "packs/default/";

const rt = new Retrace(new URL("./worker.js", import.meta.url));
globalThis.retraceApp = { rt, restoreMask: () => currentMask() }; // for tests and the console

// ---- shared UI helpers (passed to the tabs) ----
const ui = {
  status(text, state = "busy") {
    const s = $("status");
    s.textContent = text;
    s.dataset.state = state;
  },
  error(err, retry = null) {
    if (err?.code === "canceled") {
      ui.clearError();
      ui.status("Canceled.", "idle");
      return;
    }
    const box = $("error");
    $("error-text").textContent = explain(err);
    box.dataset.code = err?.code || "internal";
    box.hidden = false;
    const r = $("retry");
    r.hidden = !retry;
    r.onclick = retry ? async () => { ui.clearError(); await retry(); } : null;
    ui.status("Failed — see the message above.", "error");
  },
  clearError() {
    $("error").hidden = true;
    $("error-text").textContent = "";
  },
  model: null,
  busy: false,
  setBusy(b) {
    ui.busy = b;
    document.body.dataset.busy = b ? "1" : "0";
    $("load").disabled = b;
    ui.onChange?.();
  },
  onChange: null,
  onModel: null,
  reinit: null,
  // filePicker calls onFile with the file chosen in the <input type=file>
  // inputId or dropped on the element dropId (highlighted while dragging).
  filePicker(inputId, dropId, onFile) {
    const input = $(inputId);
    input.addEventListener("change", () => input.files[0] && onFile(input.files[0]));
    const drop = $(dropId);
    for (const t of ["dragenter", "dragover"]) {
      drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); });
    }
    for (const t of ["dragleave", "drop"]) {
      drop.addEventListener(t, () => drop.classList.remove("over"));
    }
    drop.addEventListener("drop", (e) => {
      e.preventDefault();
      const f = e.dataTransfer?.files?.[0];
      if (f) onFile(f);
    });
  },
};

function explain(err) {
  const msg = err?.message || String(err);
  switch (err?.code) {
    case "no-webgpu":
      return `${msg}\n\nThis browser gave the page no WebGPU adapter. Use a current Chrome or Edge (or Firefox/Safari with WebGPU enabled); on Linux, Chrome may need chrome://flags/#enable-unsafe-webgpu.`;
    case "device-lost":
      return `${msg}`;
    case "image-too-large":
      return `${msg}\n\nPick a smaller image.`;
    case "bad-image":
      return `${msg}\n\nretrace reads PNG and JPEG files.`;
    case "prompt-too-long":
      return `${msg}\n\nShorten the prompt.`;
    case "quota":
      return `${msg}`;
    case "worker":
      return `${msg}\n\nThe runtime could not start; reload the page.`;
  }
  return msg;
}

$("error-close").addEventListener("click", () => ui.clearError());

// ---- tabs (WAI-ARIA tabs pattern: arrows, Home, End) ----
const tabs = [...document.querySelectorAll('[role="tab"]')];
function selectTab(tab, focus = true) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !on;
  }
  if (focus) tab.focus();
  history.replaceState(null, "", "#" + tab.id.replace("tab-", ""));
}
for (const t of tabs) {
  t.addEventListener("click", () => selectTab(t));
  t.addEventListener("keydown", (e) => {
    const i = tabs.indexOf(t);
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    selectTab(tabs[(to + tabs.length) % tabs.length]);
  });
}
const initial = tabs.find((t) => "#" + t.id.replace("tab-", "") === location.hash);
if (initial) selectTab(initial, false);

// ---- adapter panel ----
function fmtBytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

function showAdapter(info) {
  const a = info.adapter;
  const name = [a.vendor, a.architecture, a.name].filter(Boolean).join(" · ") || "unnamed adapter";
  const rows = [
    ["Adapter", name],
    ["Description", a.description || "—"],
    ["Type", a.fallback ? "software (CPU): slow" : (a.type || "GPU")],
    ["f16 shaders", info.f16 ? "yes" : "no"],
    ["Max buffer", fmtBytes(info.limits.maxBufferSize)],
    ["Max binding", fmtBytes(info.limits.maxStorageBufferBindingSize)],
    ["Shared memory", fmtBytes(info.limits.maxComputeWorkgroupStorageSize)],
    ["Invocations/group", String(info.limits.maxComputeInvocationsPerWorkgroup)],
  ];
  const dl = document.createElement("dl");
  for (const [k, v] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dl.append(dt, dd);
  }
  const feats = document.createElement("details");
  const sum = document.createElement("summary");
  sum.textContent = `Features (${(info.features || []).length})`;
  const p = document.createElement("p");
  p.className = "features";
  p.textContent = (info.features || []).join(", ") || "none";
  feats.append(sum, p);
  $("adapter").replaceChildren(dl, feats);
  document.body.dataset.adapter = "ready";
}

function showNoAdapter(err) {
  const p = document.createElement("p");
  p.className = "warn";
  p.textContent = err.code === "no-webgpu"
    ? "WebGPU is not available in this browser, so models cannot run here. Use a current Chrome or Edge, or enable WebGPU in your browser's settings."
    : `WebGPU failed to start: ${err.message}`;
  $("adapter").replaceChildren(p);
  document.body.dataset.adapter = "missing";
}

async function initGPU() {
  try {
    showAdapter(await rt.init());
    return true;
  } catch (e) {
    showNoAdapter(e);
    ui.error(e);
    return false;
  }
}

// ---- model picker ----
let lastSource = null;

function pickSource() {
  const v = document.querySelector('input[name="model-src"]:checked').value;
  if (v === "url") {
    const u = $("pack-url").value.trim();
    if (!u) throw Object.assign(new Error("Enter a pack URL (a folder with manifest.json)."), { code: "bad-options" });
    return u.endsWith("/") ? u : u + "/";
  }
  if (v === "folder") {
    const files = $("pack-folder").files;
    if (!files.length) throw Object.assign(new Error("Choose a pack folder (with manifest.json and its shards)."), { code: "bad-options" });
    return files;
  }
  return DEFAULT_PACK;
}

function showModel(m) {
  const dl = document.createElement("dl");
  const rows = [
    ["Name", m.name],
    ["Resolution", `${m.resolution}×${m.resolution}${m.channels === 1 ? " grayscale" : ""}`],
    ["Prompts", m.vocabulary ? `classes: ${m.vocabulary.join(", ")}` : "free text"],
    ["Weights", fmtBytes(m.bytes)],
    ["Loaded", `${(m.ms / 1000).toFixed(1)} s${m.cached ? " from the cache" : ""}${m.offline ? " (offline)" : ""}`],
  ];
  for (const [k, v] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    dl.append(dt, dd);
  }
  const nodes = [dl];
  if (m.cacheError) {
    const w = document.createElement("p");
    w.className = "warn";
    w.textContent = `Not cached for offline use: ${m.cacheError}`;
    nodes.push(w);
  }
  $("model-info").replaceChildren(...nodes);
}

async function loadModel(source) {
  ui.clearError();
  ui.setBusy(true);
  const bar = $("load-progress");
  bar.hidden = false;
  bar.removeAttribute("value");
  const label = typeof source === "string" ? source : "local folder";
  ui.status(`Loading model from ${label}…`);
  document.body.dataset.model = "loading";
  try {
    const m = await rt.load(source, (p) => {
      if (p.total > 0) {
        bar.max = p.total;
        bar.value = p.loaded;
        ui.status(`Loading model: ${fmtBytes(p.loaded)} of ${fmtBytes(p.total)}${p.cached ? " (cache)" : ""}`);
      }
    });
    lastSource = source;
    ui.model = m;
    showModel(m);
    document.body.dataset.model = "loaded";
    ui.onModel?.(m);
    ui.status(`Model ${m.name} ready.`, "done");
    return m;
  } catch (e) {
    ui.model = null;
    document.body.dataset.model = "none";
    $("model-info").replaceChildren(Object.assign(document.createElement("p"), { className: "muted", textContent: "No model loaded." }));
    ui.onModel?.(null);
    if (e.code === "device-lost") {
      ui.error(e, recover);
    } else if (source === DEFAULT_PACK && /HTTP 404/.test(e.message)) {
      ui.error(Object.assign(new Error(`No bundled model at ${DEFAULT_PACK} on this server. Enter a pack URL or choose a local pack folder.`), { code: "bad-pack" }));
    } else {
      ui.error(e);
    }
    return null;
  } finally {
    bar.hidden = true;
    ui.setBusy(false);
  }
}

// After a device loss: a new device, the same model again (from the cache).
async function recover() {
  if (!(await initGPU())) return false;
  if (lastSource) return (await loadModel(lastSource)) !== null;
  return true;
}
ui.reinit = recover;

$("model-form").addEventListener("submit", (e) => {
  e.preventDefault();
  try {
    loadModel(pickSource());
  } catch (err) {
    ui.error(err);
  }
});
$("pack-url").addEventListener("input", () => { document.querySelector('input[name="model-src"][value="url"]').checked = true; });
$("pack-folder").addEventListener("change", () => { document.querySelector('input[name="model-src"][value="folder"]').checked = true; });
$("clear-cache").addEventListener("click", async () => {
  try {
    const r = await rt.clearCache();
    ui.status(r.deleted ? "Cache cleared: models will be downloaded again." : "The cache was already empty.", "done");
  } catch (e) {
    ui.error(e);
  }
});

// ---- start ----
initEdit({ rt, ui });
initRestore({ rt, ui });
globalThis.retraceApp.watermark = initWatermark({ rt, ui });

const params = new URLSearchParams(location.search);
(async () => {
  ui.status("Starting WebGPU…");
  if (!(await initGPU())) return;
  const pack = params.get("pack");
  if (pack) {
    document.querySelector('input[name="model-src"][value="url"]').checked = true;
    $("pack-url").value = pack;
  }
  if (params.get("autoload") === "0") {
    ui.status("Ready: load a model.", "idle");
    return;
  }
  await loadModel(pack ? (pack.endsWith("/") ? pack : pack + "/") : DEFAULT_PACK);
})();
