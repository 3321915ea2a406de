// Page-side wrapper of retrace's worker (docs/JS_API.md):
//
//   import { Retrace } from "./retrace.js";
//   const rt = new Retrace(new URL("./worker.js", import.meta.url));
//   const info = await rt.init();                 // {adapter, f16, limits, features}
//   const model = await rt.load("packs/default/", (p) => …);
//   const out = await rt.edit({image, source, target, method, …}, (s) => …);
//
// Every method returns a Promise; failures reject with a RetraceError whose
// .code says what went wrong (no-webgpu, device-lost, bad-pack, network,
// bad-image, image-too-large, prompt-too-long, bad-options, bad-mask,
// unsupported-model, no-model, image-too-small, bad-payload,
// canceled, worker, internal).

export class RetraceError extends Error {
  constructor(message, code = "internal") {
    super(message);
    this.name = "RetraceError";
    this.code = code;
  }
}

export class Retrace {
  constructor(workerURL = new URL("./worker.js", import.meta.url)) {
    this.worker = new Worker(workerURL, { type: "module" });
    this.pending = new Map();
    this.nextId = 1;
    this.worker.onmessage = (ev) => this.#onMessage(ev.data);
    this.worker.onerror = (ev) => {
      ev.preventDefault?.();
      this.#failAll(new RetraceError(`the worker failed: ${ev.message || "could not start (module workers need a current browser)"}`, "worker"));
    };
    this.worker.onmessageerror = () => this.#failAll(new RetraceError("a worker message could not be decoded", "worker"));
  }

  #onMessage({ id, type, data }) {
    const p = this.pending.get(id);
    if (!p) return;
    switch (type) {
      case "progress":
      case "step":
        try { p.onEvent?.(data); } catch (e) { console.error(e); }
        return;
      case "result":
        this.pending.delete(id);
        p.resolve(data);
        return;
      case "error":
        this.pending.delete(id);
        p.reject(new RetraceError(data.message, data.code));
        return;
    }
  }

  #failAll(err) {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  #call(type, args = {}, onEvent = null, transfer = []) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onEvent });
      this.worker.postMessage({ id, type, args }, transfer);
    });
  }

  /** Opens the WebGPU device (again, after a loss). → {adapter, f16, subgroups, limits, features, devices} */
  init() { return this.#call("init"); }

  /** Loads a pack from a URL (string) or picked files (FileList / File[]). → model info */
  load(source, onProgress) {
    const args = typeof source === "string" ? { url: source } : { files: Array.from(source) };
    return this.#call("load", args, onProgress);
  }

  /** Reads an encoded image's header. bytes: ArrayBuffer | Uint8Array. → {width, height, format} */
  probe(bytes) { return this.#call("probe", { bytes }); }

  /** Edits an image. → {width, height, rgba, calls, ms, input, crop} */
  edit(opts, onStep) { return this.#call("edit", opts, onStep); }

  /** Generates an image. → {width, height, rgba, calls, ms} */
  generate(opts, onStep) { return this.#call("generate", opts, onStep); }

  /**
   * Restores an image with the model as the diffusion prior (pixel-space
   * models only). opts: {image, task, mask?, solver, steps, seed, sigmaY?,
   * blurSigma?, clean?}. → {width, height, rgba, calls, ms, input, crop,
   * degraded, psnr, ssim, task, solver}
   */
  restore(opts, onStep) {
    const transfer = [];
    for (const im of [opts.image, opts.mask, opts.clean]) {
      if (im && im.rgba && im.rgba.buffer) transfer.push(im.rgba.buffer);
    }
    return this.#call("restore", opts, onStep, transfer);
  }

  /**
   * Marks an image. opts.scheme "treering": a generation with the loaded
   * model from key-marked noise {prompt, negative, steps, guidance, seed,
   * keySeed, pattern}; "dwtdct": marks opts.image with {payload | bits};
   * "safesd": a generation {generate: {prompt, negative, steps, guidance,
   * seed}, payload, trigger} whose prompt carries the trigger word.
   * → {width, height, rgba, calls, ms, scheme, key? | bits? |
   *    payload, trigger, prompt, marked, modules, qr}
   */
  watermarkEmbed(opts, onStep) {
    const transfer = opts.image?.rgba?.buffer ? [opts.image.rgba.buffer] : [];
    return this.#call("watermarkEmbed", opts, onStep, transfer);
  }

  /**
   * Detects marks in opts.image with every available scheme (or
   * opts.schemes). → {width, height, marked, ms, dwtdct, treering, safesd}
   */
  watermarkDetect(opts, onStep) {
    const transfer = opts.image?.rgba?.buffer ? [opts.image.rgba.buffer] : [];
    return this.#call("watermarkDetect", opts, onStep, transfer);
  }

  /** Stops the running edit, generation or restore at its next step. → true if one was running */
  cancel() { return this.#call("cancel"); }

  /** Deletes the cached pack files. → {deleted} */
  clearCache() { return this.#call("clearCache"); }

  /** Test hook: destroys the worker's GPU device (the next run fails with code "device-lost"). */
  debugLoseDevice() { return this.#call("loseDevice"); }

  /** Stops the worker (pending calls reject). */
  terminate() {
    this.worker.terminate();
    this.#failAll(new RetraceError("terminated", "worker"));
  }
}
