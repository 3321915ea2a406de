//go:build js

package main

// The JS side of watermarkEmbed() and watermarkDetect() (watermark.go).

import (
	"encoding/json"
	"errors"
	"math"
	"syscall/js"

	"retrace/nn"
)

// keyOptions reads the Tree-Ring key: keySeed, pattern, channel, radius.
func keyOptions(o js.Value) TreeRingKeyOptions {
	return TreeRingKeyOptions{Seed: uint64(optNumber(o, "keySeed", 0)), Pattern: optString(o, "pattern", "rand"),
		Channel: int(optNumber(o, "channel", 0)), Radius: int(optNumber(o, "radius", 0))}
}

// payloadOptions reads a DwtDct payload: payload (text) or bits.
func payloadOptions(o js.Value) (text, bits string) {
	return optString(o, "payload", ""), optString(o, "bits", "")
}

// generateOptions reads a marked generation's settings: prompt, negative,
// steps, guidance, seed, previews — from o, or from o.generate when given.
func generateOptions(o js.Value, steps, guidance float64) GenerateOptions {
	if g := o.Get("generate"); isObject(g) {
		o = g
	}
	return GenerateOptions{
		Prompt: optString(o, "prompt", ""), Negative: optString(o, "negative", ""),
		Steps: int(optNumber(o, "steps", steps)), Guidance: float32(optNumber(o, "guidance", guidance)),
		Seed: uint64(optNumber(o, "seed", 0)), Previews: optBool(o, "previews", true),
	}
}

func apiWatermarkEmbed(_ js.Value, args []js.Value) any {
	o := arg(args, 0)
	return promise(func() (any, error) {
		if !isObject(o) {
			return nil, withCode(CodeBadOptions, errors.New("watermarkEmbed: pass an options object"))
		}
		eo := WatermarkEmbedOptions{Scheme: optString(o, "scheme", "")}
		switch eo.Scheme {
		case SchemeDwtDct:
			im, err := imageOption(o.Get("image"), "watermarkEmbed", "image", CodeBadImage)
			if err != nil {
				return nil, err
			}
			eo.Image = im
			eo.Payload, eo.Bits = payloadOptions(o)
			res, err := EmbedDwtDct(eo) // pure Go: no model, no GPU
			if err != nil {
				return nil, err
			}
			return resultJS(res), nil
		case SchemeTreeRing:
			eo.Generate = generateOptions(o, 50, 7.5)
			eo.Key = keyOptions(o)
			return run(o, func(m *Model, be nn.Backend, step func(Step) error) (*Result, error) {
				res, err := m.EmbedTreeRing(be, eo, step)
				if err == nil {
					k := res.extra["key"].(TreeRingKeyInfo)
					res.extra["key"] = map[string]any{"seed": float64(k.Seed), "pattern": k.Pattern, "channel": k.Channel, "radius": k.Radius}
				}
				return res, err
			})
		case SchemeSafeSD:
			eo.Generate = generateOptions(o, SafeSDDefaultSteps, SafeSDDefaultGuidance)
			eo.Payload = optString(o, "payload", "")
			eo.Trigger = optString(o, "trigger", "")
			return run(o, func(m *Model, be nn.Backend, step func(Step) error) (*Result, error) {
				return m.EmbedSafeSD(be, eo, step)
			})
		}
		return nil, withCode(CodeBadOptions, errors.New(`watermarkEmbed: scheme must be "treering", "dwtdct" or "safesd"`))
	})
}

func apiWatermarkDetect(_ js.Value, args []js.Value) any {
	o := arg(args, 0)
	onStep := optFunc(o, "onStep")
	return promise(func() (any, error) {
		if !isObject(o) {
			return nil, withCode(CodeBadOptions, errors.New("watermarkDetect: pass an options object"))
		}
		im, err := imageOption(o.Get("image"), "watermarkDetect", "image", CodeBadImage)
		if err != nil {
			return nil, err
		}
		do := WatermarkDetectOptions{Image: im, Schemes: optStrings(o, "schemes"), NBits: int(optNumber(o, "nbits", 0)),
			Key: keyOptions(o), Method: optString(o, "method", "ddim"), Steps: int(optNumber(o, "steps", DefaultDetectSteps)),
			Prompt: optString(o, "prompt", ""), Alpha: optNumber(o, "alpha", TreeRingAlpha)}
		do.Payload, do.Bits = payloadOptions(o)
		st.mu.Lock()
		defer st.mu.Unlock()
		st.canceled.Store(false)
		st.running.Store(true)
		defer st.running.Store(false)
		step := func(s Step) error {
			if onStep.Truthy() {
				onStep.Invoke(map[string]any{"k": s.K, "steps": s.Steps, "scheme": SchemeTreeRing, "preview": nil})
			}
			yield()
			if st.canceled.Load() {
				return ErrCanceled
			}
			return nil
		}
		var be nn.Backend
		if st.be != nil {
			be = st.be
		}
		rep, err := DetectWatermarks(st.model, be, do, step)
		if err != nil {
			return nil, st.failed(err)
		}
		if t := rep.TreeRing; t != nil && (math.IsInf(t.Log10P, 0) || math.IsNaN(t.Log10P)) {
			t.Log10P = -1000 // JSON has no −Inf
		}
		b, err := json.Marshal(rep)
		if err != nil {
			return nil, err
		}
		return js.Global().Get("JSON").Call("parse", string(b)), nil
	})
}
