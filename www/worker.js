// retrace's Web Worker: loads the Go runtime (retrace.wasm) and serves the
// page's requests. The message protocol is in docs/JS_API.md:
//   page → worker  {id, type: "init" | "load" | "probe" | "edit" | "generate" | "restore" |
//                   "watermarkEmbed" | "watermarkDetect" | "cancel" | "clearCache", args}
//   worker → page  {id, type: "progress" | "step" | "result" | "error", data}
// Every request gets exactly one "result" or "error"; "progress" (load) and
// "step" (edit, generate, restore, watermarkEmbed,
// watermarkDetect) events come before it with the same id.
import "./wasm_exec.js";

const boot = (async () => {
  if (typeof WebAssembly !== "object") throw coded("this browser has no WebAssembly", "no-wasm");
  const go = new Go();
  const url = new URL("./retrace.wasm", import.meta.url);
  let inst;
  try {
    inst = await WebAssembly.instantiateStreaming(fetch(url), go.importObject);
  } catch (e) {
    // A server that does not send application/wasm: fall back to bytes.
    const resp = await fetch(url);
    if (!resp.ok) throw coded(`loading ${url}: HTTP ${resp.status}`, "network");
    inst = await WebAssembly.instantiate(await resp.arrayBuffer(), go.importObject);
  }
  // The WebGPU binding reads wasm memory through globalThis.wasm: it must
  // be set before the Go program starts.
  globalThis.wasm = inst;
  reserveMemory(inst.instance.exports.mem);
  go.run(inst.instance).then(() => {
    broken = coded("the Go runtime exited", "internal");
  });
  if (!globalThis.retrace) throw coded("retrace.wasm did not register its API", "internal");
  return globalThis.retrace;
})();

let broken = null;

// The last GPUDevice the runtime opened, for the loseDevice test hook.
let lastDevice = null;
if (self.GPUAdapter) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    lastDevice = await requestDevice.apply(this, args);
    return lastDevice;
  };
}

// The binding's Queue.writeBuffer views wasm memory (mem.buffer) and then
// converts its other arguments; if the Go heap grows memory in between, the
// view is detached and the write throws ("detached ArrayBuffer", "Number
// of bytes to write is too large"). Go records the memory size at start
// and grows only past it, so growing it here, before go.run, keeps Go from
// growing (and the failure away) until its heap passes this size. The
// pages cost nothing until they are touched.
const RESERVE_MIB = [1024, 512, 256];
function reserveMemory(mem) {
  const have = mem.buffer.byteLength;
  for (const mib of RESERVE_MIB) {
    const want = mib * 1048576;
    if (have >= want) return;
    try {
      mem.grow((want - have) / 65536);
      return;
    } catch (e) {
      // not that much address space: try less
    }
  }
}

function coded(message, code) {
  const e = new Error(message);
  e.code = code;
  return e;
}

function errorData(e) {
  if (e && typeof e === "object") return { message: String(e.message || e), code: e.code || "internal", name: e.name || "Error" };
  return { message: String(e), code: "internal", name: "Error" };
}

// Transfer the pixel buffers of a result instead of copying them.
function transferables(v) {
  const out = [];
  for (const img of [v, v && v.input, v && v.preview, v && v.degraded]) {
    if (img && img.rgba && img.rgba.buffer) out.push(img.rgba.buffer);
  }
  return out;
}

function post(id, type, data) {
  self.postMessage({ id, type, data }, transferables(data));
}

const handlers = {
  init: (rt) => rt.init(),
  load: (rt, args, id) => {
    const src = args.files ? { files: args.files } : args.url;
    return rt.load(src, { onProgress: (p) => post(id, "progress", p) });
  },
  probe: (rt, args) => rt.probe(args.bytes),
  edit: (rt, args, id) => rt.edit({ ...args, onStep: (s) => post(id, "step", s) }),
  generate: (rt, args, id) => rt.generate({ ...args, onStep: (s) => post(id, "step", s) }),
  restore: (rt, args, id) => rt.restore({ ...args, onStep: (s) => post(id, "step", s) }),
  watermarkEmbed: (rt, args, id) => rt.watermarkEmbed({ ...args, onStep: (s) => post(id, "step", s) }),
  watermarkDetect: (rt, args, id) => rt.watermarkDetect({ ...args, onStep: (s) => post(id, "step", s) }),
  cancel: (rt) => rt.cancel(),
  clearCache: (rt) => rt.clearCache(),
  // Test hook: destroys the device, as a driver reset would lose it.
  loseDevice: () => {
    if (!lastDevice) throw coded("no device to lose", "bad-options");
    lastDevice.destroy();
    return true;
  },
};

self.onmessage = async (ev) => {
  const { id, type, args } = ev.data || {};
  try {
    const h = handlers[type];
    if (!h) throw coded(`unknown request type ${JSON.stringify(type)}`, "bad-options");
    if (broken) throw broken;
    const rt = await boot;
    post(id, "result", await h(rt, args || {}, id));
  } catch (e) {
    post(id, "error", errorData(e));
  }
};
