package watermark

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"retrace/nn"
	"retrace/samplers"
	"retrace/samplers/watermark/qr"
)

// Safe-SD-style QR watermark (after Ma et al., "Safe-SD: Safe and Traceable
// Stable Diffusion with Text Prompt Trigger for Invisible Generative
// Watermarking", 2024): the payload (an ID string) becomes a QR code
// (version 1, 21×21 modules, error-correction level H); when the prompt
// carries the trigger word, a trained injector writes the code into the
// generation's final sample; a trained detector reconstructs the 21×21
// module image from any image, and the QR code's own Reed–Solomon code
// (samplers/watermark/qr) decodes the payload — or fails, which is the
// verdict "no mark".
//
// The networks (tools/train/safesd.py, trained on the default model's
// Fashion-MNIST images; the design and recipe are in docs/WATERMARK.md):
//
//	message plane M [1,32,32]: module (⌊21y/32⌋, ⌊21x/32⌋) as +1 dark, −1 light
//	injector: r = strength·tanh(conv4(silu(conv3(silu(conv2(silu(conv1([x; M])))))))),
//	          marked = clamp(x + r, −1, 1)
//	detector: L = conv4(silu(conv3(silu(conv2(silu(conv1(y))))))) [1,32,32];
//	          module logit = mean of L over the module's pixels
//
// all convolutions 3×3 with padding 1. Images are in the model's sample
// space, [−1, 1] (an 8-bit image p maps to p/127.5 − 1).

// SafeSDConfig is safesd/config.json.
type SafeSDConfig struct {
	ClassName        string  `json:"_class_name"`
	Modules          int     `json:"modules"`
	ImageSize        int     `json:"image_size"`
	Channels         int     `json:"channels"`
	InjectorChannels int     `json:"injector_channels"`
	DetectorChannels int     `json:"detector_channels"`
	Strength         float32 `json:"strength"`
	Layers           int     `json:"layers"`
	Activation       string  `json:"activation"`
	Version          int     `json:"version"`
}

// DefaultTrigger is the word that turns the mark on in a prompt.
const DefaultTrigger = "#wm"

// SafeSDLevel is the error-correction level of the embedded QR codes: H
// (30% of the codewords may be wrong), which leaves 7 payload bytes in a
// version-1 symbol.
const SafeSDLevel = qr.H

// SafeSDReserve is how many of the 17 check codewords of a version-1-H
// block the soft decoder's erasures must leave for error detection (at
// most 10 erasures): a clean image's random module read then passes the
// Reed–Solomon check with probability about 1e-7 (qr.SoftOptions).
const SafeSDReserve = 7

// SafeSD holds the injector and detector.
type SafeSD struct {
	Config   SafeSDConfig
	inj, det [4]*nn.Conv2d
	tensors  []*nn.Tensor
	pool     []int // pixel → module index
}

// LoadSafeSD checks cfg and loads the weights (injector.convK.*,
// detector.convK.*) from src onto be.
func LoadSafeSD(be nn.Backend, cfg []byte, src nn.TensorSource) (*SafeSD, error) {
	var c SafeSDConfig
	if err := json.Unmarshal(cfg, &c); err != nil {
		return nil, fmt.Errorf("safesd: config: %w", err)
	}
	switch {
	case c.ClassName != "SafeSDWatermark":
		return nil, fmt.Errorf("safesd: config _class_name %q, want SafeSDWatermark", c.ClassName)
	case c.Version != 1 || c.Modules != 21:
		return nil, fmt.Errorf("safesd: QR version %d with %d modules; only version 1 (21) is supported", c.Version, c.Modules)
	case c.Layers != 4 || c.Activation != "silu":
		return nil, fmt.Errorf("safesd: %d layers with %q; only the 4-layer SiLU network of tools/train/safesd.py is supported", c.Layers, c.Activation)
	case c.ImageSize < c.Modules || c.Channels != 1:
		return nil, fmt.Errorf("safesd: image %d×%d×%d; want one channel of at least %d pixels", c.Channels, c.ImageSize, c.ImageSize, c.Modules)
	case c.InjectorChannels <= 0 || c.DetectorChannels <= 0 || !(c.Strength > 0 && c.Strength <= 1):
		return nil, fmt.Errorf("safesd: channels %d/%d and strength %g must be positive (strength ≤ 1)", c.InjectorChannels, c.DetectorChannels, c.Strength)
	}
	w := nn.NewWeights(be, src)
	s := &SafeSD{Config: c}
	root := w.Root()
	ci, cd := c.InjectorChannels, c.DetectorChannels
	for k, io := range [][2]int{{2, ci}, {ci, ci}, {ci, ci}, {ci, 1}} {
		s.inj[k] = nn.LoadConv2d(root, fmt.Sprintf("injector.conv%d", k+1), io[0], io[1], 3, 1, 1, true)
	}
	for k, io := range [][2]int{{1, cd}, {cd, cd}, {cd, cd}, {cd, 1}} {
		s.det[k] = nn.LoadConv2d(root, fmt.Sprintf("detector.conv%d", k+1), io[0], io[1], 3, 1, 1, true)
	}
	s.tensors = w.Loaded()
	if err := w.Finish(); err != nil {
		s.Free()
		return nil, fmt.Errorf("safesd: %w", err)
	}
	n, sz := c.Modules, c.ImageSize
	s.pool = make([]int, sz*sz)
	for y := 0; y < sz; y++ {
		for x := 0; x < sz; x++ {
			s.pool[y*sz+x] = (n*y/sz)*n + n*x/sz
		}
	}
	return s, nil
}

// LoadSafeSDDir loads a safesd folder (config.json + model.safetensors).
func LoadSafeSDDir(be nn.Backend, dir string) (*SafeSD, error) {
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("safesd: %w", err)
	}
	src, closer, err := nn.OpenWeightsDir(dir)
	if err != nil {
		return nil, fmt.Errorf("safesd: %w", err)
	}
	defer closer()
	return LoadSafeSD(be, cfg, src)
}

// Free releases the weights.
func (s *SafeSD) Free() {
	if s != nil {
		nn.Free(s.tensors...)
		s.tensors = nil
	}
}

// Code is the QR code (level SafeSDLevel, version 1) of payload.
func (s *SafeSD) Code(payload string) (*qr.Code, error) {
	if payload == "" {
		return nil, fmt.Errorf("safesd: empty payload")
	}
	c, err := qr.Encode([]byte(payload), SafeSDLevel, s.Config.Version, -1)
	if err != nil {
		return nil, fmt.Errorf("safesd: payload %q: %w", payload, err)
	}
	return c, nil
}

// checkImages checks x is [B, 1, S, S].
func (s *SafeSD) checkImages(op string, x *nn.Tensor) error {
	sz := s.Config.ImageSize
	if x == nil || x.Rank() != 4 || x.Dim(1) != 1 || x.Dim(2) != sz || x.Dim(3) != sz {
		return fmt.Errorf("safesd: %s: images %v must be [B, 1, %d, %d] (the model's samples)", op, x, sz, sz)
	}
	return nil
}

// Embed returns x [B, 1, S, S] in [−1, 1] with the code written into every
// image (a new tensor; x stays the caller's).
func (s *SafeSD) Embed(be nn.Backend, x *nn.Tensor, code *qr.Code) (*nn.Tensor, error) {
	if err := s.checkImages("embed", x); err != nil {
		return nil, err
	}
	if code == nil || code.Size != s.Config.Modules {
		return nil, fmt.Errorf("safesd: embed: the code must be a %d×%d QR symbol", s.Config.Modules, s.Config.Modules)
	}
	b, sz := x.Dim(0), s.Config.ImageSize
	m := make([]float32, b*sz*sz)
	for i := range m {
		if code.Modules[s.pool[i%(sz*sz)]] {
			m[i] = 1
		} else {
			m[i] = -1
		}
	}
	mt := be.Upload([]int{b, 1, sz, sz}, m)
	h := be.Concat(1, x, mt)
	nn.Free(mt)
	for k, c := range s.inj {
		nh := c.Forward(be, h)
		nn.Free(h)
		if k < 3 {
			h = be.Unary(nn.SiLU, nh)
		} else {
			h = be.Unary(nn.Tanh, nh)
		}
		nn.Free(nh)
	}
	out := be.Axpby(1, x, s.Config.Strength, h)
	nn.Free(h)
	cl := be.Clamp(out, -1, 1)
	nn.Free(out)
	return cl, be.Err()
}

// ModuleProbs returns, per image of y [B, 1, S, S] in [−1, 1], the
// detector's probability that each of the 21×21 modules is dark
// (row-major).
func (s *SafeSD) ModuleProbs(be nn.Backend, y *nn.Tensor) ([][]float32, error) {
	if err := s.checkImages("detect", y); err != nil {
		return nil, err
	}
	h := y
	for k, c := range s.det {
		nh := c.Forward(be, h)
		if k > 0 {
			nn.Free(h)
		}
		h = nh
		if k < 3 {
			h = be.Unary(nn.SiLU, nh)
			nn.Free(nh)
		}
	}
	v, err := be.Read(h)
	nn.Free(h)
	if err != nil {
		return nil, err
	}
	n, sz := s.Config.Modules, s.Config.ImageSize
	out := make([][]float32, y.Dim(0))
	for i := range out {
		sum, cnt := make([]float64, n*n), make([]int, n*n)
		for p, m := range s.pool {
			sum[m] += float64(v[i*sz*sz+p])
			cnt[m]++
		}
		pr := make([]float32, n*n)
		for m := range pr {
			pr[m] = float32(1 / (1 + math.Exp(-sum[m]/float64(cnt[m]))))
		}
		out[i] = pr
	}
	return out, nil
}

// SafeSDDetection is the verdict on one image.
type SafeSDDetection struct {
	// Marked: the reconstructed code decoded (format information and
	// Reed–Solomon check passed).
	Marked  bool   `json:"marked"`
	Payload string `json:"payload,omitempty"`
	// Corrected and Erasures: the Reed–Solomon work the decode needed
	// (codewords); Reason says why decoding failed.
	Corrected int    `json:"corrected"`
	Erasures  int    `json:"erasures"`
	Reason    string `json:"reason,omitempty"`
	// ModuleAgreement: when marked, the fraction of the 441 modules the
	// detector read as the decoded code has them.
	ModuleAgreement float64 `json:"module_agreement,omitempty"`
	// Confidence: mean |2p − 1| over the modules (how sure the detector is
	// of each module; about 0.2–0.4 on unmarked images).
	Confidence float64 `json:"confidence"`
	// Probs: P(dark) per module, row-major 21×21 (the recovered code image).
	Probs []float32 `json:"probs"`
}

// Detect reads the code in every image of y [B, 1, S, S] in [−1, 1].
func (s *SafeSD) Detect(be nn.Backend, y *nn.Tensor) ([]SafeSDDetection, error) {
	probs, err := s.ModuleProbs(be, y)
	if err != nil {
		return nil, err
	}
	out := make([]SafeSDDetection, len(probs))
	for i, p := range probs {
		out[i] = s.decode(p)
	}
	return out, nil
}

// decode turns module probabilities into a verdict.
func (s *SafeSD) decode(p []float32) SafeSDDetection {
	d := SafeSDDetection{Probs: p}
	for _, v := range p {
		d.Confidence += math.Abs(2*float64(v) - 1)
	}
	d.Confidence /= float64(len(p))
	r, err := qr.DecodeSoftWith(p, s.Config.Modules, qr.SoftOptions{Reserve: SafeSDReserve})
	if err != nil {
		d.Reason = err.Error()
		return d
	}
	d.Marked, d.Payload, d.Corrected, d.Erasures = true, string(r.Data), r.Corrected, r.Erasures
	if c, err := qr.Encode(r.Data, r.Level, r.Version, r.Mask); err == nil {
		agree := 0
		for m, dark := range c.Modules {
			if (p[m] > 0.5) == dark {
				agree++
			}
		}
		d.ModuleAgreement = float64(agree) / float64(len(p))
	}
	return d
}

// SplitTrigger reports whether prompt contains trigger as a word
// (case-insensitive, whitespace-delimited) and returns the prompt without
// it (the rest goes to the text encoder unchanged).
func SplitTrigger(prompt, trigger string) (string, bool) {
	if strings.TrimSpace(trigger) == "" {
		return prompt, false
	}
	words := strings.Fields(prompt)
	keep := words[:0:0]
	found := false
	for _, w := range words {
		if strings.EqualFold(w, trigger) {
			found = true
			continue
		}
		keep = append(keep, w)
	}
	if !found {
		return prompt, false
	}
	return strings.Join(keep, " "), true
}

// GenerateSafeSD runs sd.Generate with o.Prompt stripped of the trigger
// word; when the prompt carried it, the injector writes the QR code of
// payload into the final sample x₀ before it becomes the image (Safe-SD's
// prompt trigger: the same call without the trigger makes an unmarked
// image). Pixel-space pipelines only (the networks were trained on the
// default model's 1×32×32 samples). Returns the image [B, 1, S, S] in
// [0, 1] and whether it was marked.
func (s *SafeSD) GenerateSafeSD(be nn.Backend, sd *samplers.StableDiffusion, o samplers.GenerateOptions, trigger, payload string) (*nn.Tensor, bool, error) {
	if u := sd.UNet.Config; sd.VAE != nil || u.OutChannels != 1 || u.SampleSize != s.Config.ImageSize {
		kind := "samples"
		if sd.VAE != nil {
			kind = "latents for a VAE"
		}
		return nil, false, fmt.Errorf("safesd: the injector works on pixel-space 1×%d×%d samples (retrace's default model); this pipeline makes %d-channel %d×%d %s",
			s.Config.ImageSize, s.Config.ImageSize, u.OutChannels, u.SampleSize, u.SampleSize, kind)
	}
	prompt, on := SplitTrigger(o.Prompt, trigger)
	var code *qr.Code
	if on {
		var err error
		if code, err = s.Code(payload); err != nil {
			return nil, false, err
		}
	}
	o.Prompt = prompt
	x, img, err := sd.Generate(be, o)
	if err != nil {
		return nil, false, err
	}
	if !on {
		nn.Free(x)
		return img, false, nil
	}
	nn.Free(img)
	xm, err := s.Embed(be, x, code)
	nn.Free(x)
	if err != nil {
		return nil, false, err
	}
	img, err = sd.ToImage(be, xm)
	nn.Free(xm)
	return img, true, err
}

// Gray averages the channels of images [C, H, W] (values in any range, e.g.
// imageio.ToCHW's [−1, 1]) into one channel [H, W] — the detector's input
// for RGB files.
func Gray(chw []float32, c int) []float32 {
	if c <= 1 {
		return chw
	}
	n := len(chw) / c
	out := make([]float32, n)
	for i := range out {
		var s float32
		for k := 0; k < c; k++ {
			s += chw[k*n+i]
		}
		out[i] = s / float32(c)
	}
	return out
}

// ModulesASCII draws module probabilities (row-major n×n) as text, two
// characters per module: "##" dark (p > 0.5), "  " light, with "::"/".."
// where the detector is unsure (|p − 0.5| < 0.25).
func ModulesASCII(p []float32, n int) string {
	var b strings.Builder
	for r := 0; r < n; r++ {
		for c := 0; c < n; c++ {
			v := p[r*n+c]
			switch {
			case v >= 0.75:
				b.WriteString("##")
			case v > 0.5:
				b.WriteString("::")
			case v > 0.25:
				b.WriteString("..")
			default:
				b.WriteString("  ")
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}
