package main

// The runtime's core, free of syscall/js so it is tested natively (on the
// CPU backend) by runtime_test.go: load a pipeline from any pack.Fetcher,
// turn the page's image into the model's input, run an edit or a
// generation with step previews and cancellation, turn the result into
// RGBA. main_js.go only converts between JS values and these types.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"math"
	"strings"
	"time"

	"retrace/nn"
	"retrace/nn/gpu"
	"retrace/nn/imageio"
	"retrace/nn/pack"
	"retrace/samplers"
	"retrace/samplers/watermark"
)

// ErrCanceled is returned by a run stopped with cancel().
var ErrCanceled = errors.New("canceled")

// Error codes the JS API puts on rejected Promises (Error.code); the list
// is documented in docs/JS_API.md.
const (
	CodeNoWebGPU      = "no-webgpu"
	CodeDeviceLost    = "device-lost"
	CodeBadPack       = "bad-pack"
	CodeNetwork       = "network"
	CodeQuota         = "quota"
	CodeBadImage      = "bad-image"
	CodeImageTooLarge = "image-too-large"
	CodePromptTooLong = "prompt-too-long"
	CodeBadOptions    = "bad-options"
	CodeNoModel       = "no-model"
	CodeCanceled      = "canceled"
	CodeInternal      = "internal"
)

// codedError carries the code of an error whose kind the caller knows.
type codedError struct {
	code string
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func withCode(code string, err error) error {
	if err == nil {
		return nil
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return err
	}
	return &codedError{code, err}
}

// ErrorCode classifies err for the page. Conditions that can happen
// anywhere (device loss, cancellation) win over the code given where the
// error was wrapped.
func ErrorCode(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrCanceled):
		return CodeCanceled
	case errors.Is(err, gpu.ErrDeviceLost):
		return CodeDeviceLost
	case errors.Is(err, gpu.ErrNoAdapter):
		return CodeNoWebGPU
	case errors.Is(err, imageio.ErrTooLarge):
		return CodeImageTooLarge
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "imageio:"):
		return CodeBadImage
	case strings.Contains(msg, "the prompt has") && strings.Contains(msg, "tokens"):
		return CodePromptTooLong
	case strings.HasPrefix(msg, "pack:"):
		return CodeBadPack
	}
	return CodeInternal
}

// ModelInfo describes a loaded pipeline to the page.
type ModelInfo struct {
	Name string `json:"name"`
	// Resolution is the square image size the model works at (pixels).
	Resolution int `json:"resolution"`
	// Channels of the model's images (3: RGB, 1: grayscale).
	Channels int `json:"channels"`
	// Vocabulary is the list of prompts a class-conditioned model accepts
	// (nil: free text).
	Vocabulary []string `json:"vocabulary"`
	Latent     bool     `json:"latent"`
	Scheduler  string   `json:"scheduler"`
	Bytes      int64    `json:"bytes"`
	Methods    []string `json:"methods"`
	// Restore lists restore()'s tasks and solvers (nil: a latent-space
	// model, which restore refuses).
	Restore *RestoreInfo `json:"restore"`
	// SafeSD describes the pack's Safe-SD-style QR watermark component
	// (nil: the pack has none; Safe-SD then reports "not available").
	SafeSD *SafeSDInfo `json:"safesd"`
}

// Model is a loaded pipeline.
type Model struct {
	SD *samplers.StableDiffusion
	// SafeSD: the pack's optional Safe-SD injector and detector (nil
	// without one).
	SafeSD *watermark.SafeSD
	Info   ModelInfo
}

// Free releases the model's weights.
func (m *Model) Free() {
	if m == nil {
		return
	}
	if m.SD != nil {
		m.SD.Free()
	}
	m.SafeSD.Free()
}

// LoadModel opens the pack behind f (verifying each shard's sha256 as it
// is first read) and loads its pipeline onto be.
func LoadModel(be nn.Backend, f pack.Fetcher, name string) (*Model, error) {
	p, err := pack.OpenFetcher(f)
	if err != nil {
		return nil, withCode(CodeBadPack, err)
	}
	defer p.Close()
	sd, err := samplers.LoadStableDiffusionFromPack(be, p)
	if err != nil {
		return nil, withCode(CodeBadPack, err)
	}
	m := &Model{SD: sd, Info: ModelInfo{Name: name, Vocabulary: Vocabulary(p.Manifest)}}
	if m.SafeSD, err = loadSafeSD(be, p); err != nil {
		m.Free()
		return nil, withCode(CodeBadPack, err)
	}
	f0 := 1
	m.Info.Channels = sd.UNet.Config.InChannels
	if sd.VAE != nil {
		f0 = sd.VAE.Factor()
		m.Info.Channels = sd.VAE.Config.InChannels
		m.Info.Latent = true
	}
	m.Info.Resolution = sd.UNet.Config.SampleSize * f0
	m.Info.Restore = restoreInfo(m.Info.Latent, m.Info.Channels)
	m.Info.SafeSD = m.safeSDInfo()
	if c, ok := p.Manifest.Components["scheduler"]; ok {
		var sc struct {
			Class string `json:"_class_name"`
		}
		_ = json.Unmarshal(c.Config, &sc)
		m.Info.Scheduler = sc.Class
	}
	for _, s := range p.Manifest.Shards {
		m.Info.Bytes += s.Bytes
	}
	for _, x := range samplers.Methods {
		m.Info.Methods = append(m.Info.Methods, x.Name)
	}
	m.Info.Methods = append(m.Info.Methods, "direct")
	if err := be.Err(); err != nil {
		m.Free()
		return nil, err
	}
	return m, nil
}

// Vocabulary returns the prompts of a class-conditioned model: a
// "classes" (or "vocabulary") list of strings in the text_encoder
// component's config. Free-text models have none (nil).
func Vocabulary(m *pack.Manifest) []string {
	c, ok := m.Components["text_encoder"]
	if !ok || len(c.Config) == 0 {
		return nil
	}
	var cfg struct {
		Classes    []string `json:"classes"`
		Vocabulary []string `json:"vocabulary"`
	}
	if json.Unmarshal(c.Config, &cfg) != nil {
		return nil
	}
	if len(cfg.Classes) > 0 {
		return cfg.Classes
	}
	if len(cfg.Vocabulary) > 0 {
		return cfg.Vocabulary
	}
	return nil
}

// Image is an image crossing the JS boundary: RGBA bytes (non-premultiplied,
// as canvas getImageData gives them) or, with Encoded set, a PNG/JPEG file.
type Image struct {
	Width, Height int
	RGBA          []byte
	Encoded       []byte
}

// decode returns the image as a Go image, checking sizes.
func (im Image) decode() (image.Image, error) {
	if len(im.Encoded) > 0 {
		img, _, err := imageio.Decode(bytes.NewReader(im.Encoded))
		return img, err
	}
	if im.Width <= 0 || im.Height <= 0 {
		return nil, withCode(CodeBadImage, fmt.Errorf("imageio: image size %d×%d", im.Width, im.Height))
	}
	if int64(im.Width)*int64(im.Height) > imageio.MaxPixels {
		return nil, fmt.Errorf("%w: %d×%d pixels (limit %d megapixels)", imageio.ErrTooLarge, im.Width, im.Height, imageio.MaxPixels>>20)
	}
	if len(im.RGBA) != 4*im.Width*im.Height {
		return nil, withCode(CodeBadImage, fmt.Errorf("imageio: %d RGBA bytes for a %d×%d image (want %d)", len(im.RGBA), im.Width, im.Height, 4*im.Width*im.Height))
	}
	return &image.NRGBA{Pix: im.RGBA, Stride: 4 * im.Width, Rect: image.Rect(0, 0, im.Width, im.Height)}, nil
}

// Probe reads an encoded image's header: format and size, with the same
// checks (and errors) an edit applies, without decoding the pixels.
func Probe(b []byte) (w, h int, format string, err error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return 0, 0, "", withCode(CodeBadImage, fmt.Errorf("imageio: not a PNG or JPEG image (%v)", err))
	}
	if int64(cfg.Width)*int64(cfg.Height) > imageio.MaxPixels {
		return cfg.Width, cfg.Height, format, fmt.Errorf("%w: %s of %d×%d pixels (limit %d megapixels)", imageio.ErrTooLarge, format, cfg.Width, cfg.Height, imageio.MaxPixels>>20)
	}
	return cfg.Width, cfg.Height, format, nil
}

// ModelInput centre-crops and resizes img to the model's resolution
// (imageio.ToCHW: the CLI's conversion) and returns [C·H·W] in [−1, 1]
// (grayscale models get ITU-R BT.601 luma, as Go's color.GrayModel) and
// the crop rectangle.
func (m *Model) ModelInput(img image.Image) ([]float32, image.Rectangle, error) {
	r := m.Info.Resolution
	v, crop, err := imageio.ToCHW(img, r, r)
	if err != nil {
		return nil, crop, withCode(CodeBadImage, err)
	}
	if m.Info.Channels == 1 {
		g := make([]float32, r*r)
		for i := range g {
			g[i] = 0.299*v[i] + 0.587*v[r*r+i] + 0.114*v[2*r*r+i]
		}
		return g, crop, nil
	}
	if m.Info.Channels != 3 {
		return nil, crop, fmt.Errorf("edit: models with %d image channels are not supported", m.Info.Channels)
	}
	return v, crop, nil
}

// Step is one progress event of a run.
type Step struct {
	K, Steps int
	// Preview is a small RGBA image of the current latents (nil when the
	// run has none to show at this point).
	Preview *RGBA
}

// RGBA is an image as the page's ImageData wants it.
type RGBA struct {
	Width, Height int
	Pix           []byte
}

// Result is a finished run.
type Result struct {
	Image RGBA
	// Input is the model's input (the cropped, resized source), for the
	// before/after view; Crop the rectangle of the source it came from.
	Input *RGBA
	Crop  image.Rectangle
	Calls int
	Ms    float64
	// extra fields of the JS result (restore's degraded image, metrics).
	extra map[string]any
}

// EditOptions are the page's edit settings (samplers.EditImageOptions
// plus the image).
type EditOptions struct {
	Image          Image
	Source, Target string
	Method         string
	Steps          int
	Guidance       float32
	Seed           uint64
	Cross, Self    float64
	Blend          []string
	Reconstruct    bool
	Skip           int
	// Previews turns on per-step previews (a readback per step).
	Previews bool
}

// MaxSteps bounds steps (inversion and sampling each).
const MaxSteps = 1000

func (m *Model) checkPrompt(what, p string) error {
	if m.Info.Vocabulary == nil {
		return nil
	}
	for _, v := range m.Info.Vocabulary {
		if v == p {
			return nil
		}
	}
	return withCode(CodeBadOptions, fmt.Errorf("%s prompt %q is not one of the model's classes %q", what, p, m.Info.Vocabulary))
}

// Edit runs an edit. onStep (may be nil) sees progress; its error (e.g.
// ErrCanceled) stops the run.
func (m *Model) Edit(be nn.Backend, o EditOptions, onStep func(Step) error) (*Result, error) {
	if o.Steps <= 0 || o.Steps > MaxSteps {
		return nil, withCode(CodeBadOptions, fmt.Errorf("edit: %d steps (want 1…%d)", o.Steps, MaxSteps))
	}
	if err := m.checkPrompt("source", o.Source); err != nil {
		return nil, err
	}
	if !o.Reconstruct {
		if err := m.checkPrompt("target", o.Target); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	img, err := o.Image.decode()
	if err != nil {
		return nil, err
	}
	v, crop, err := m.ModelInput(img)
	if err != nil {
		return nil, err
	}
	r, c := m.Info.Resolution, m.Info.Channels
	x := be.Upload([]int{1, c, r, r}, v)
	defer nn.Free(x)
	if err := be.Err(); err != nil {
		return nil, err
	}
	in := ToRGBA(v, c, r, r, true)
	var step func(k, total int, z *nn.Tensor) error
	if onStep != nil {
		step = func(k, total int, z *nn.Tensor) error {
			s := Step{K: k, Steps: total}
			if o.Previews && z != nil {
				p, err := m.Preview(be, z)
				if err != nil {
					return err
				}
				s.Preview = p
			}
			return onStep(s)
		}
	}
	out, calls, err := m.SD.EditImage(be, samplers.EditImageOptions{
		Image: x, Source: o.Source, Target: o.Target, Method: o.Method, Steps: o.Steps, Guidance: o.Guidance,
		ReconstructOnly: o.Reconstruct, Skip: o.Skip, Seed: o.Seed, CrossReplace: o.Cross, SelfReplace: o.Self,
		BlendWords: o.Blend, OnStep: step,
	})
	if err != nil {
		be.ClearErr()
		if strings.HasPrefix(err.Error(), "edit: unknown method") {
			err = withCode(CodeBadOptions, err)
		}
		return nil, err
	}
	defer nn.Free(out)
	res, err := m.result(be, out)
	if err != nil {
		return nil, err
	}
	res.Input, res.Crop, res.Calls = &in, crop, calls
	res.Ms = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}

// GenerateOptions are the page's generation settings.
type GenerateOptions struct {
	Prompt, Negative string
	Steps            int
	Guidance         float32
	Seed             uint64
	Previews         bool
	// latents, if set, is the initial noise (a Tree-Ring-marked x_T)
	// instead of the seed's draw.
	latents *nn.Tensor
}

// Generate runs text (or class) to image at the model's resolution.
func (m *Model) Generate(be nn.Backend, o GenerateOptions, onStep func(Step) error) (*Result, error) {
	if o.Steps <= 0 || o.Steps > MaxSteps {
		return nil, withCode(CodeBadOptions, fmt.Errorf("generate: %d steps (want 1…%d)", o.Steps, MaxSteps))
	}
	if err := m.checkPrompt("the", o.Prompt); err != nil {
		return nil, err
	}
	start := time.Now()
	r := m.Info.Resolution
	var step func(k int, t float32, z *nn.Tensor) error
	if onStep != nil {
		step = func(k int, _ float32, z *nn.Tensor) error {
			s := Step{K: k + 1, Steps: o.Steps}
			if o.Previews {
				p, err := m.Preview(be, z)
				if err != nil {
					return err
				}
				s.Preview = p
			}
			return onStep(s)
		}
	}
	lat, img, err := m.SD.Generate(be, samplers.GenerateOptions{
		Prompt: o.Prompt, NegativePrompt: o.Negative, Steps: o.Steps, Guidance: o.Guidance,
		Seed: o.Seed, Height: r, Width: r, OnStep: step, Latents: o.latents,
	})
	if err != nil {
		be.ClearErr()
		return nil, err
	}
	defer nn.Free(lat, img)
	res, err := m.result(be, img)
	if err != nil {
		return nil, err
	}
	res.Calls = o.Steps
	res.Ms = float64(time.Since(start).Microseconds()) / 1000
	return res, nil
}

// result reads an image [1, C, H, W] in [0, 1] back as RGBA.
func (m *Model) result(be nn.Backend, img *nn.Tensor) (*Result, error) {
	v, err := be.Read(img)
	if err != nil {
		return nil, err
	}
	for i, f := range v {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return nil, fmt.Errorf("result pixel value %d is %v (the model output is not finite)", i, f)
		}
	}
	return &Result{Image: ToRGBA(v, img.Dim(1), img.Dim(2), img.Dim(3), false)}, nil
}

// ToRGBA converts [C, H, W] (C = 1 or 3; values in [−1, 1] when signed,
// else [0, 1]) to opaque RGBA, rounding as imageio.FromCHW does.
func ToRGBA(v []float32, c, h, w int, signed bool) RGBA {
	out := RGBA{Width: w, Height: h, Pix: make([]byte, 4*w*h)}
	q := func(f float32) byte {
		x := float64(f)
		if signed {
			x = (x + 1) / 2
		}
		return uint8(math.Max(0, math.Min(255, math.Round(x*255))))
	}
	n := w * h
	for i := 0; i < n; i++ {
		p := out.Pix[4*i : 4*i+4]
		if c >= 3 {
			p[0], p[1], p[2] = q(v[i]), q(v[n+i]), q(v[2*n+i])
		} else {
			p[0] = q(v[i])
			p[1], p[2] = p[0], p[0]
		}
		p[3] = 255
	}
	return out
}

// latentRGB projects Stable Diffusion's 4 latent channels to RGB (the
// usual linear approximation of the VAE decoder; rows: channels).
var latentRGB = [4][3]float32{
	{0.298, 0.207, 0.208},
	{0.187, 0.286, 0.173},
	{-0.158, 0.189, 0.264},
	{-0.184, -0.271, -0.473},
}

// Preview returns a cheap RGBA picture of latents z [1, C, h, w]: pixel
// space models show the (noisy) image itself, 4-channel latents go through
// a fixed linear projection to RGB, anything else shows its first channel.
func (m *Model) Preview(be nn.Backend, z *nn.Tensor) (*RGBA, error) {
	if z == nil || z.Rank() != 4 {
		return nil, nil
	}
	v, err := be.Read(z)
	if err != nil {
		return nil, err
	}
	c, h, w := z.Dim(1), z.Dim(2), z.Dim(3)
	n := h * w
	v = v[:c*n] // first batch row
	switch {
	case !m.Info.Latent && (c == 1 || c == 3):
		p := ToRGBA(v, c, h, w, true)
		return &p, nil
	case c == 4:
		rgb := make([]float32, 3*n)
		for i := 0; i < n; i++ {
			for o := 0; o < 3; o++ {
				var s float32
				for k := 0; k < 4; k++ {
					s += latentRGB[k][o] * v[k*n+i]
				}
				rgb[o*n+i] = s
			}
		}
		p := ToRGBA(rgb, 3, h, w, true)
		return &p, nil
	}
	p := ToRGBA(v[:n], 1, h, w, true)
	return &p, nil
}

// toNRGBA wraps RGBA pixels as an image (for tests and encoders).
func (p RGBA) toNRGBA() *image.NRGBA {
	return &image.NRGBA{Pix: p.Pix, Stride: 4 * p.Width, Rect: image.Rect(0, 0, p.Width, p.Height)}
}
