package main

// The Safe-SD-style QR watermark in the page (samplers/watermark's SafeSD,
// the same code as `retrace watermark embed|detect --scheme safesd`): the
// pack's optional `safesd` component holds the trained injector and
// detector. Embedding is a generation whose prompt carries the trigger
// word; detection reads the 21×21 code from the image (centre-cropped and
// resized to the detector's size, channels averaged, as the CLI) and
// decodes it with the QR code's Reed–Solomon code.

import (
	"errors"
	"fmt"
	"image"
	"strings"
	"time"

	"retrace/nn"
	"retrace/nn/imageio"
	"retrace/nn/pack"
	"retrace/samplers"
	"retrace/samplers/watermark"
	"retrace/samplers/watermark/qr"
)

// Safe-SD generation defaults for the default model: the CLI's.
const (
	SafeSDDefaultSteps    = 25
	SafeSDDefaultGuidance = 1.5
)

// SafeSDInfo describes the loaded model's Safe-SD component to the page
// (ModelInfo.SafeSD; nil: the pack has none).
type SafeSDInfo struct {
	// Trigger is the default trigger word.
	Trigger string `json:"trigger"`
	// MaxPayload is the longest payload in bytes (a version-1 QR code at
	// level H: 7).
	MaxPayload int `json:"maxPayload"`
	// Modules per side of the code (21); ImageSize the detector's input.
	Modules   int `json:"modules"`
	ImageSize int `json:"imageSize"`
	// Embed: the injector fits this model's samples (pixel space at the
	// size it was trained on); detection works on any image.
	Embed bool `json:"embed"`
}

// safeSDNone is why Safe-SD cannot run with a model whose pack has no
// safesd component.
const safeSDNone = "not available: this model has no Safe-SD injector/detector (its pack has no safesd component)"

// loadSafeSD loads the pack's safesd component (nil, nil without one).
func loadSafeSD(be nn.Backend, p *pack.Pack) (*watermark.SafeSD, error) {
	if _, ok := p.Manifest.Components["safesd"]; !ok {
		return nil, nil
	}
	src, err := p.Component("safesd")
	if err != nil {
		return nil, err
	}
	ss, err := watermark.LoadSafeSD(be, src.Config(), src)
	if err != nil {
		be.ClearErr()
		return nil, fmt.Errorf("pack: component safesd: %w", err)
	}
	return ss, nil
}

func (m *Model) safeSDInfo() *SafeSDInfo {
	s := m.SafeSD
	if s == nil {
		return nil
	}
	c := s.Config
	u := m.SD.UNet.Config
	return &SafeSDInfo{Trigger: watermark.DefaultTrigger, MaxPayload: qr.ByteCapacity(c.Version, watermark.SafeSDLevel),
		Modules: c.Modules, ImageSize: c.ImageSize,
		Embed: m.SD.VAE == nil && u.OutChannels == 1 && u.SampleSize == c.ImageSize}
}

// safeSDMissing is the error of a Safe-SD call on a model without the
// component.
func (m *Model) safeSDMissing() error {
	return withCode(CodeUnsupportedModel, fmt.Errorf("watermark: Safe-SD %s", safeSDNone))
}

// safeSDCode checks the payload and returns its QR code.
func (m *Model) safeSDCode(payload string) (*qr.Code, error) {
	capacity := qr.ByteCapacity(m.SafeSD.Config.Version, watermark.SafeSDLevel)
	switch n := len(payload); {
	case n == 0:
		return nil, withCode(CodeBadPayload, fmt.Errorf("watermark: safesd needs a payload: an ID of 1–%d bytes", capacity))
	case n > capacity:
		return nil, withCode(CodeBadPayload, fmt.Errorf("watermark: the payload %q has %d bytes; a Safe-SD QR code (version %d, level %v) holds at most %d", payload, n, m.SafeSD.Config.Version, watermark.SafeSDLevel, capacity))
	}
	code, err := m.SafeSD.Code(payload)
	if err != nil {
		return nil, withCode(CodeBadPayload, err)
	}
	return code, nil
}

// EmbedSafeSD generates with the loaded model; the prompt must carry the
// trigger word (o.Trigger, default "#wm"), which is taken out of it
// before the text encoder and makes the injector write the QR code of
// o.Payload into the final sample (the CLI's `watermark embed --scheme
// safesd`).
func (m *Model) EmbedSafeSD(be nn.Backend, o WatermarkEmbedOptions, onStep func(Step) error) (*Result, error) {
	if m.SafeSD == nil {
		return nil, m.safeSDMissing()
	}
	g := o.Generate
	if g.Steps <= 0 || g.Steps > MaxSteps {
		return nil, withCode(CodeBadOptions, fmt.Errorf("watermark: %d steps (want 1…%d)", g.Steps, MaxSteps))
	}
	trigger := o.Trigger
	if trigger == "" {
		trigger = watermark.DefaultTrigger
	}
	if len(strings.Fields(trigger)) != 1 {
		return nil, withCode(CodeBadOptions, fmt.Errorf("watermark: the trigger %q must be one word (no spaces)", trigger))
	}
	prompt, on := watermark.SplitTrigger(g.Prompt, trigger)
	if !on {
		return nil, withCode(CodeBadOptions, fmt.Errorf("watermark: the prompt %q lacks the trigger word %q, so the image would carry no mark (add it as a separate word, e.g. %q)", g.Prompt, trigger, strings.TrimSpace(g.Prompt+" "+trigger)))
	}
	if err := m.checkPrompt("the", prompt); err != nil {
		return nil, err
	}
	code, err := m.safeSDCode(o.Payload)
	if err != nil {
		return nil, err
	}
	if info := m.safeSDInfo(); !info.Embed {
		return nil, withCode(CodeUnsupportedModel, fmt.Errorf("watermark: the Safe-SD injector works on pixel-space 1×%d×%d samples; model %s makes other samples (detection still works)", info.ImageSize, info.ImageSize, m.Info.Name))
	}
	start := time.Now()
	r := m.Info.Resolution
	var step func(k int, t float32, z *nn.Tensor) error
	if onStep != nil {
		step = func(k int, _ float32, z *nn.Tensor) error {
			s := Step{K: k + 1, Steps: g.Steps}
			if g.Previews {
				p, err := m.Preview(be, z)
				if err != nil {
					return err
				}
				s.Preview = p
			}
			return onStep(s)
		}
	}
	img, marked, err := m.SafeSD.GenerateSafeSD(be, m.SD, samplers.GenerateOptions{
		Prompt: g.Prompt, NegativePrompt: g.Negative, Steps: g.Steps, Guidance: g.Guidance,
		Seed: g.Seed, Height: r, Width: r, OnStep: step,
	}, trigger, o.Payload)
	if err != nil {
		be.ClearErr()
		return nil, err
	}
	defer nn.Free(img)
	if !marked { // SplitTrigger found the trigger above
		return nil, errors.New("watermark: safesd: the generation was not marked")
	}
	res, err := m.result(be, img)
	if err != nil {
		return nil, err
	}
	bits := make([]any, len(code.Modules))
	for i, d := range code.Modules {
		bits[i] = 0
		if d {
			bits[i] = 1
		}
	}
	res.Calls = g.Steps
	res.Ms = float64(time.Since(start).Microseconds()) / 1000
	res.extra = map[string]any{"scheme": SchemeSafeSD, "payload": o.Payload, "trigger": trigger, "prompt": prompt,
		"marked": true, "modules": code.Size, "qr": bits}
	return res, nil
}

// SafeSDReport is Safe-SD's part of a detection.
type SafeSDReport struct {
	Scheme string `json:"scheme"`
	// Verdict: marked, not marked, not run (Error says why) or not
	// available (the model has no safesd component; Reason says so).
	Verdict string       `json:"verdict"`
	Marked  bool         `json:"marked"`
	Error   *SchemeError `json:"error"`
	// Payload: the decoded ID when marked.
	Payload string `json:"payload"`
	// Corrected and Erasures: the Reed–Solomon work (codewords) the
	// decode needed; Reason: why no code decoded (or why not available).
	Corrected int    `json:"corrected"`
	Erasures  int    `json:"erasures"`
	Reason    string `json:"reason"`
	// ModuleAgreement: when marked, the fraction of modules read as the
	// decoded code has them; Confidence: mean |2p − 1| over the modules.
	ModuleAgreement float64 `json:"moduleAgreement"`
	Confidence      float64 `json:"confidence"`
	// Probs: P(dark) per module, row-major Modules×Modules (the recovered
	// code image).
	Modules int       `json:"modules"`
	Probs   []float32 `json:"probs"`
	Ms      float64   `json:"ms"`
}

// detectSafeSD reads the QR code from img: centre crop and resize to the
// detector's size (imageio.ToCHW), channels averaged (watermark.Gray), as
// `retrace watermark detect --scheme safesd`.
func (m *Model) detectSafeSD(be nn.Backend, img image.Image) (*SafeSDReport, error) {
	if m.SafeSD == nil {
		return nil, m.safeSDMissing()
	}
	start := time.Now()
	s := m.SafeSD.Config.ImageSize
	v, _, err := imageio.ToCHW(img, s, s)
	if err != nil {
		return nil, withCode(CodeBadImage, err)
	}
	y := be.Upload([]int{1, 1, s, s}, watermark.Gray(v, 3))
	det, err := m.SafeSD.Detect(be, y)
	nn.Free(y)
	if err != nil {
		return nil, err
	}
	d := det[0]
	r := &SafeSDReport{Scheme: SchemeSafeSD, Marked: d.Marked, Payload: d.Payload, Corrected: d.Corrected, Erasures: d.Erasures,
		Reason: d.Reason, ModuleAgreement: d.ModuleAgreement, Confidence: d.Confidence, Modules: m.SafeSD.Config.Modules, Probs: d.Probs,
		Verdict: VerdictNotMarked, Ms: float64(time.Since(start).Microseconds()) / 1000}
	if r.Marked {
		r.Verdict = VerdictMarked
	}
	return r, nil
}
