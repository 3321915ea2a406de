//go:build js

// Command wasm is retrace's browser runtime (GOOS=js GOARCH=wasm), meant to
// run in a Web Worker (www/worker.js). It exposes a Promise-based API on
// globalThis.retrace — init, load, probe, edit, generate, restore,
// watermarkEmbed, watermarkDetect, cancel, clearCache — documented in docs/JS_API.md.
//
// Calls never block inside js.FuncOf callbacks (the Go runtime deadlocks
// when a callback awaits a Promise): each call returns a Promise and does
// its work on a goroutine. Runs are serialised (the device serves one at a
// time); cancel() is checked between steps.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall/js"
	"time"

	"retrace/nn"
	"retrace/nn/gpu"
	"retrace/nn/pack"
)

type state struct {
	mu    sync.Mutex // held by the running call: one at a time
	dev   *gpu.Device
	be    *nn.GPU
	model *Model
	// opened counts devices created (a device lost is replaced by the
	// next init).
	opened int

	running  atomic.Bool
	canceled atomic.Bool
}

var st state

func main() {
	api := map[string]any{
		"init":     js.FuncOf(func(js.Value, []js.Value) any { return promise(apiInit) }),
		"info":     js.FuncOf(func(js.Value, []js.Value) any { return promise(apiInit) }),
		"load":     js.FuncOf(apiLoad),
		"probe":    js.FuncOf(apiProbe),
		"edit":     js.FuncOf(apiEdit),
		"generate": js.FuncOf(apiGenerate),
		"restore":  js.FuncOf(apiRestore),
		// watermark.go / watermark_js.go
		"watermarkEmbed":  js.FuncOf(apiWatermarkEmbed),
		"watermarkDetect": js.FuncOf(apiWatermarkDetect),
		"cancel":          js.FuncOf(apiCancel),
		"clearCache":      js.FuncOf(func(js.Value, []js.Value) any { return promise(apiClearCache) }),
		"version":         "1",
	}
	js.Global().Set("retrace", js.ValueOf(api))
	select {}
}

func arg(args []js.Value, i int) js.Value {
	if i < len(args) {
		return args[i]
	}
	return js.Undefined()
}

// device returns the open device, opening one if needed. The caller holds
// st.mu.
func (s *state) device() (*gpu.Device, error) {
	if s.dev != nil {
		return s.dev, nil
	}
	d, err := gpu.Open(gpu.Options{})
	if err == gpu.ErrNoAdapter { // its text is about native drivers
		err = withCode(CodeNoWebGPU, errors.New("gpu: navigator.gpu.requestAdapter() gave no adapter (WebGPU disabled or blocklisted here, or no usable GPU)"))
	}
	if err != nil {
		return nil, err
	}
	s.dev, s.be = d, nn.NewGPU(d)
	s.opened++
	return d, nil
}

// failed drops the device and the model after a device loss, so the next
// init (or load) starts over with a new device.
func (s *state) failed(err error) error {
	if ErrorCode(err) == CodeDeviceLost {
		s.model = nil
		s.be = nil
		s.dev = nil
		msg := strings.TrimRight(err.Error(), ". ")
		return withCode(CodeDeviceLost, fmt.Errorf("%s. The GPU device was lost (driver reset, GPU process crash or memory pressure): call init() and load the model again to retry", msg))
	}
	if s.be != nil {
		s.be.ClearErr()
	}
	return err
}

func apiInit() (any, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	d, err := st.device()
	if err != nil {
		return nil, err
	}
	i := d.Info()
	out := map[string]any{
		"adapter": map[string]any{
			"name": i.Name, "vendor": i.Vendor, "architecture": i.Architecture, "description": i.Driver,
			"type": i.AdapterType, "backend": i.Backend, "fallback": i.CPU,
		},
		"f16":       i.ShaderF16,
		"subgroups": i.Subgroups,
		"features":  i.Features,
		"limits":    i.Limits,
		"devices":   st.opened,
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return js.Global().Get("JSON").Call("parse", string(b)), nil
}

// apiLoad: load(source, {onProgress}) with source a pack URL or
// {files: FileList | File[]}.
func apiLoad(_ js.Value, args []js.Value) any {
	src, opts := arg(args, 0), arg(args, 1)
	onProgress := optFunc(opts, "onProgress")
	return promise(func() (any, error) {
		st.mu.Lock()
		defer st.mu.Unlock()
		start := time.Now()
		if _, err := st.device(); err != nil {
			return nil, err
		}
		progress := func(p Progress) {
			if onProgress.Truthy() {
				onProgress.Invoke(map[string]any{"loaded": p.Loaded, "total": p.Total, "shard": p.Shard, "cached": p.Cached})
			}
		}
		var f pack.Fetcher
		var hf *httpFetcher
		var name string
		switch {
		case src.Type() == js.TypeString:
			var err error
			if hf, err = newHTTPFetcher(src.String(), progress); err != nil {
				return nil, err
			}
			f, name = hf, modelName(hf.base)
		case src.Type() == js.TypeObject && src.Get("files").Truthy():
			f, name = newFilesFetcher(src.Get("files"), progress)
		case src.Type() == js.TypeObject && src.Get("length").Type() == js.TypeNumber:
			f, name = newFilesFetcher(src, progress)
		default:
			return nil, withCode(CodeBadOptions, errors.New("load: pass a pack URL or {files}"))
		}
		if st.model != nil {
			st.model.Free()
			st.model = nil
		}
		m, err := LoadModel(st.be, f, name)
		if err != nil {
			return nil, st.failed(err)
		}
		st.model = m
		out := map[string]any{}
		b, _ := json.Marshal(m.Info)
		json.Unmarshal(b, &out)
		out["cacheError"] = nil
		out["offline"] = false
		if hf != nil {
			out["offline"] = hf.offline
			out["cached"] = hf.downloaded == 0
			if err := hf.commit(); err != nil {
				out["cacheError"] = err.Error()
			}
		}
		out["ms"] = float64(time.Since(start).Microseconds()) / 1000
		return js.ValueOf(out), nil
	})
}

// modelName is the last path segment of a pack URL ("…/packs/default/" →
// "default").
func modelName(base string) string {
	s := strings.TrimRight(strings.SplitN(base, "?", 2)[0], "/")
	if i := strings.LastIndex(s, "/"); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func apiProbe(_ js.Value, args []js.Value) any {
	v := arg(args, 0)
	return promise(func() (any, error) {
		b, err := bytesFromJS(v)
		if err != nil {
			return nil, withCode(CodeBadImage, fmt.Errorf("probe: %w", err))
		}
		w, h, f, err := Probe(b)
		if err != nil {
			return nil, err
		}
		return js.ValueOf(map[string]any{"width": w, "height": h, "format": f}), nil
	})
}

func apiCancel(js.Value, []js.Value) any {
	return promise(func() (any, error) {
		if !st.running.Load() {
			return false, nil
		}
		st.canceled.Store(true)
		return true, nil
	})
}

func apiClearCache() (any, error) {
	ok, err := clearCache()
	if err != nil {
		return nil, err
	}
	return js.ValueOf(map[string]any{"deleted": ok}), nil
}

// run holds the device for one edit or generation, with step events and
// cancellation. parse reads the options (on the goroutine, so a bad value
// rejects the Promise instead of crashing the Go program).
func run(opts js.Value, work func(m *Model, be nn.Backend, step func(Step) error) (*Result, error)) (any, error) {
	onStep := optFunc(opts, "onStep")
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.model == nil {
		return nil, withCode(CodeNoModel, errors.New("no model is loaded: call load() first"))
	}
	st.canceled.Store(false)
	st.running.Store(true)
	defer st.running.Store(false)
	step := func(s Step) error {
		if onStep.Truthy() {
			onStep.Invoke(map[string]any{"k": s.K, "steps": s.Steps, "preview": rgbaToJS(s.Preview)})
		}
		yield() // let a cancel message in
		if st.canceled.Load() {
			return ErrCanceled
		}
		return nil
	}
	res, err := work(st.model, st.be, step)
	if err != nil {
		return nil, st.failed(err)
	}
	return resultJS(res), nil
}

// resultJS is a finished run's result object (docs/JS_API.md).
func resultJS(res *Result) js.Value {
	out := map[string]any{
		"width": res.Image.Width, "height": res.Image.Height, "rgba": bytesToJS(res.Image.Pix),
		"calls": res.Calls, "ms": res.Ms, "input": rgbaToJS(res.Input),
	}
	for k, v := range res.extra {
		out[k] = v
	}
	if res.Input != nil {
		out["crop"] = map[string]any{"x": res.Crop.Min.X, "y": res.Crop.Min.Y, "width": res.Crop.Dx(), "height": res.Crop.Dy()}
	}
	return js.ValueOf(out)
}

// imageOption reads an image option ({bytes} or {width, height, rgba}).
func imageOption(img js.Value, call, what, code string) (Image, error) {
	var im Image
	if !isObject(img) {
		return im, withCode(code, fmt.Errorf("%s: %s is missing (pass {bytes} or {width, height, rgba})", call, what))
	}
	var err error
	if b := img.Get("bytes"); b.Truthy() {
		im.Encoded, err = bytesFromJS(b)
	} else {
		im.Width, im.Height = int(optNumber(img, "width", 0)), int(optNumber(img, "height", 0))
		im.RGBA, err = bytesFromJS(img.Get("rgba"))
	}
	if err != nil {
		return im, withCode(code, fmt.Errorf("%s: %s: %w", call, what, err))
	}
	return im, nil
}

// editOptions reads edit()'s options object.
func editOptions(o js.Value) (EditOptions, error) {
	if !isObject(o) {
		return EditOptions{}, withCode(CodeBadOptions, errors.New("edit: pass an options object"))
	}
	im, err := imageOption(o.Get("image"), "edit", "image", CodeBadImage)
	if err != nil {
		return EditOptions{}, err
	}
	blend := optStrings(o, "blend")
	if len(blend) == 1 {
		blend = strings.FieldsFunc(blend[0], func(r rune) bool { return r == ',' || r == ' ' })
	}
	return EditOptions{
		Image: im, Source: optString(o, "source", ""), Target: optString(o, "target", ""),
		Method: optString(o, "method", "edict"), Steps: int(optNumber(o, "steps", 50)),
		Guidance: float32(optNumber(o, "guidance", 3)), Seed: uint64(optNumber(o, "seed", 0)),
		Cross: optNumber(o, "cross", 0.8), Self: optNumber(o, "self", 0.4), Blend: blend,
		Reconstruct: optBool(o, "reconstruct", false), Skip: int(optNumber(o, "skip", 0)),
		Previews: optBool(o, "previews", true),
	}, nil
}

func apiEdit(_ js.Value, args []js.Value) any {
	o := arg(args, 0)
	return promise(func() (any, error) {
		eo, err := editOptions(o)
		if err != nil {
			return nil, err
		}
		return run(o, func(m *Model, be nn.Backend, step func(Step) error) (*Result, error) {
			return m.Edit(be, eo, step)
		})
	})
}

func apiGenerate(_ js.Value, args []js.Value) any {
	o := arg(args, 0)
	return promise(func() (any, error) {
		if !isObject(o) {
			return nil, withCode(CodeBadOptions, errors.New("generate: pass an options object"))
		}
		g := GenerateOptions{
			Prompt: optString(o, "prompt", ""), Negative: optString(o, "negative", ""),
			Steps: int(optNumber(o, "steps", 50)), Guidance: float32(optNumber(o, "guidance", 7.5)),
			Seed: uint64(optNumber(o, "seed", 0)), Previews: optBool(o, "previews", true),
		}
		return run(o, func(m *Model, be nn.Backend, step func(Step) error) (*Result, error) {
			return m.Generate(be, g, step)
		})
	})
}

// restoreOptions reads restore()'s options object.
func restoreOptions(o js.Value) (RestoreOptions, error) {
	if !isObject(o) {
		return RestoreOptions{}, withCode(CodeBadOptions, errors.New("restore: pass an options object"))
	}
	im, err := imageOption(o.Get("image"), "restore", "image", CodeBadImage)
	if err != nil {
		return RestoreOptions{}, err
	}
	ro := RestoreOptions{
		Image: im, Task: optString(o, "task", "inpaint"), Solver: optString(o, "solver", "ddnm"),
		Steps: int(optNumber(o, "steps", 20)), Seed: uint64(optNumber(o, "seed", 0)),
		SigmaY: optNumber(o, "sigmaY", -1), BlurSigma: optNumber(o, "blurSigma", 2),
		Previews: optBool(o, "previews", true),
	}
	if m := o.Get("mask"); isObject(m) {
		mi, err := imageOption(m, "restore", "mask", CodeBadMask)
		if err != nil {
			return RestoreOptions{}, err
		}
		ro.Mask = &mi
	}
	if c := o.Get("clean"); isObject(c) {
		ci, err := imageOption(c, "restore", "clean image", CodeBadImage)
		if err != nil {
			return RestoreOptions{}, err
		}
		ro.Clean = &ci
	}
	return ro, nil
}

func apiRestore(_ js.Value, args []js.Value) any {
	o := arg(args, 0)
	return promise(func() (any, error) {
		ro, err := restoreOptions(o)
		if err != nil {
			return nil, err
		}
		return run(o, func(m *Model, be nn.Backend, step func(Step) error) (*Result, error) {
			r, err := m.Restore(be, ro, step)
			if err != nil {
				return nil, err
			}
			res := r.Result
			res.extra = map[string]any{"degraded": rgbaToJS(&r.Degraded), "psnr": nil, "ssim": nil, "task": r.Task, "solver": r.Solver}
			if r.PSNR != nil {
				res.extra["psnr"], res.extra["ssim"] = *r.PSNR, *r.SSIM
			}
			return &res, nil
		})
	})
}
