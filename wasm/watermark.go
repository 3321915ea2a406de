package main

// watermarkEmbed() and watermarkDetect(): the Watermark tab's runtime,
// through samplers/watermark — the same code as `retrace watermark`.
//
//   - Tree-Ring: a generation with the loaded model from initial noise
//     whose Fourier transform carries a key (key seed, pattern); detection
//     inverts the image back to x_T with DDIM, EDICT or BDIA under the null
//     prompt and tests the masked spectrum (p-value).
//   - DwtDct (invisible-watermark's dwtDct): marks any image of at least
//     256×256 pixels with a bit payload, pure Go on the CPU, no model.
//   - Safe-SD-style QR watermark (safesd.go): a generation whose prompt
//     carries the trigger word gets a QR code of a short ID written into
//     its final sample by the pack's trained injector; its detector reads
//     the code back from any image. Models whose pack has no safesd
//     component report it as "not available", never a fake result.
//
// Detection runs every available scheme on the image and reports each
// separately; nothing leaves the page.

import (
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"math"
	"slices"
	"strings"
	"time"

	"retrace/nn"
	"retrace/samplers"
	"retrace/samplers/watermark"
)

// Error codes of the watermark calls (besides the common ones).
const (
	// CodeImageTooSmall: DwtDct needs at least 256×256 pixels.
	CodeImageTooSmall = "image-too-small"
	// CodeBadPayload: the DwtDct payload is missing, not bits, or too long
	// for the image; the Safe-SD payload is empty or longer than a QR
	// code holds.
	CodeBadPayload = "bad-payload"
)

// Watermark schemes: what the page can embed and detect.
const (
	SchemeTreeRing = "treering"
	SchemeDwtDct   = "dwtdct"
	SchemeSafeSD   = "safesd"
)

// Verdicts of a scheme's detection.
const (
	VerdictMarked       = "marked"
	VerdictNotMarked    = "not marked"
	VerdictNotRun       = "not run"
	VerdictNotAvailable = "not available"
)

const (
	// DwtDctMinPixels is the library's minimum image area (256×256).
	DwtDctMinPixels = 256 * 256
	// DwtDctMaxBits bounds a payload (the library's examples use 32–48).
	DwtDctMaxBits = 1024
	// DwtDctDefaultBits is what detection reads without an expected
	// payload (4 bytes: e.g. a 4-character text).
	DwtDctDefaultBits = 32
	// DwtDctConfidence is the confidence (mean |2·vote − 1| over the
	// bits) above which an image whose payload is not known counts as
	// marked, when its bits are not all equal. A heuristic, not a
	// calibrated test: marked images scored 0.59–0.74 in the tests,
	// unmarked ones 0.08–0.42 (docs/JS_API.md); with an expected payload
	// the verdict is the payload match instead.
	DwtDctConfidence = 0.5
	// TreeRingAlpha is the default significance level of the p-value.
	TreeRingAlpha = 0.01
	// DefaultDetectSteps are the default inversion steps.
	DefaultDetectSteps = 10
)

// TreeRingKeyOptions pick the key: the seed of its Gaussian pattern (the
// secret), the pattern, the channel and the radius (0: 10 frequency bins
// per 64 latent pixels, as the CLI).
type TreeRingKeyOptions struct {
	Seed    uint64
	Pattern string
	Channel int
	Radius  int
}

// TreeRingKeyInfo describes a key in results.
type TreeRingKeyInfo struct {
	Seed    uint64 `json:"seed"`
	Pattern string `json:"pattern"`
	Channel int    `json:"channel"`
	Radius  int    `json:"radius"`
}

// treeRingKey builds the key for the model's latent shape (tools/retrace's
// treeRingRun.key at the model's resolution).
func (m *Model) treeRingKey(be nn.Backend, k TreeRingKeyOptions) (*watermark.TreeRing, error) {
	if k.Pattern == "" {
		k.Pattern = watermark.DefaultTreeRing.Pattern
	}
	h := m.SD.UNet.Config.SampleSize
	if k.Radius == 0 {
		k.Radius = max(int(math.Round(10*float64(h)/64)), 1)
	}
	key, err := watermark.NewTreeRingFromSeed(be, k.Seed, m.SD.UNet.Config.InChannels, h, h,
		watermark.TreeRingOptions{Pattern: k.Pattern, Channel: k.Channel, Radius: k.Radius})
	if err != nil {
		be.ClearErr()
		if strings.HasPrefix(err.Error(), "treering:") {
			err = withCode(CodeBadOptions, err)
		}
		return nil, err
	}
	return key, nil
}

func keyInfo(k *watermark.TreeRing, seed uint64) TreeRingKeyInfo {
	return TreeRingKeyInfo{Seed: seed, Pattern: k.Pattern, Channel: k.Channel, Radius: k.Radius}
}

// WatermarkEmbedOptions are watermarkEmbed()'s settings.
type WatermarkEmbedOptions struct {
	Scheme string
	// Tree-Ring: a generation with the loaded model.
	Generate GenerateOptions
	Key      TreeRingKeyOptions
	// DwtDct: the image to mark and its payload (text, whose UTF-8 bytes
	// are the bits, or a bit string; one of them). Safe-SD: Payload is the
	// ID (≤ 7 bytes) and Generate the generation, whose prompt must
	// contain Trigger ("": watermark.DefaultTrigger).
	Image   Image
	Payload string
	Bits    string
	Trigger string
}

// EmbedTreeRing generates with the loaded model from the seed's noise
// with the key written into its spectrum (the CLI's `watermark embed
// --scheme treering`). Without the key the same seed gives the unmarked
// twin: Generate with the same options.
func (m *Model) EmbedTreeRing(be nn.Backend, o WatermarkEmbedOptions, onStep func(Step) error) (*Result, error) {
	g := o.Generate
	if g.Steps <= 0 || g.Steps > MaxSteps {
		return nil, withCode(CodeBadOptions, fmt.Errorf("watermark: %d steps (want 1…%d)", g.Steps, MaxSteps))
	}
	if err := m.checkPrompt("the", g.Prompt); err != nil {
		return nil, err
	}
	start := time.Now()
	key, err := m.treeRingKey(be, o.Key)
	if err != nil {
		return nil, err
	}
	xT := samplers.NewNoise(g.Seed).Tensor(be, 1, key.C, key.H, key.W)
	xw, err := key.Inject(be, xT)
	nn.Free(xT)
	if err != nil {
		be.ClearErr()
		return nil, err
	}
	defer nn.Free(xw)
	g.latents = xw
	res, err := m.Generate(be, g, onStep)
	if err != nil {
		return nil, err
	}
	res.Ms = float64(time.Since(start).Microseconds()) / 1000
	res.extra = map[string]any{"scheme": SchemeTreeRing, "key": keyInfo(key, o.Key.Seed)}
	return res, nil
}

// dwtDctBits reads the payload: text or a bit string (not both). Neither
// gives nil.
func dwtDctBits(call, text, bits string) ([]bool, error) {
	bad := func(format string, a ...any) error {
		return withCode(CodeBadPayload, fmt.Errorf(call+": "+format, a...))
	}
	var out []bool
	switch {
	case text != "" && bits != "":
		return nil, bad("give the payload as text or as bits, not both")
	case text != "":
		out = watermark.BitsFromString(text)
	case bits != "":
		b, err := watermark.ParseBits(strings.TrimSpace(bits))
		if err != nil {
			return nil, bad("payload bits: %v", strings.TrimPrefix(err.Error(), "watermark: "))
		}
		out = b
	default:
		return nil, nil
	}
	if len(out) > DwtDctMaxBits {
		return nil, bad("the payload has %d bits (at most %d)", len(out), DwtDctMaxBits)
	}
	return out, nil
}

// dwtDctError gives watermark.EmbedDwtDct's and DecodeDwtDct's errors
// their codes (the minimum size is named in the message).
func dwtDctError(img image.Image, err error) error {
	b := img.Bounds()
	switch msg := err.Error(); {
	case strings.Contains(msg, "too small"):
		return withCode(CodeImageTooSmall, fmt.Errorf("dwtdct: the image is %d×%d = %d pixels; DwtDct needs at least 256×256 = %d pixels (e.g. 256×256 or larger)", b.Dx(), b.Dy(), b.Dx()*b.Dy(), DwtDctMinPixels))
	case strings.Contains(msg, "fewer than"):
		return withCode(CodeBadPayload, err)
	}
	return err
}

// EmbedDwtDct marks an image with a payload (the CLI's `watermark embed
// --scheme dwtdct`). The result has the image's size; it must be kept
// lossless (PNG): JPEG's chroma subsampling destroys the mark.
func EmbedDwtDct(o WatermarkEmbedOptions) (*Result, error) {
	start := time.Now()
	bits, err := dwtDctBits("watermark", o.Payload, o.Bits)
	if err != nil {
		return nil, err
	}
	if bits == nil {
		return nil, withCode(CodeBadPayload, errors.New("watermark: dwtdct needs a payload: text or bits"))
	}
	img, err := o.Image.decode()
	if err != nil {
		return nil, err
	}
	marked, err := watermark.EmbedDwtDct(img, bits)
	if err != nil {
		return nil, dwtDctError(img, err)
	}
	b := marked.Bounds()
	out := RGBA{Width: b.Dx(), Height: b.Dy(), Pix: make([]byte, 4*b.Dx()*b.Dy())}
	for y := 0; y < b.Dy(); y++ {
		copy(out.Pix[4*b.Dx()*y:4*b.Dx()*(y+1)], marked.Pix[y*marked.Stride:y*marked.Stride+4*b.Dx()])
	}
	for i := 3; i < len(out.Pix); i += 4 {
		out.Pix[i] = 255
	}
	return &Result{Image: out, Ms: float64(time.Since(start).Microseconds()) / 1000,
		extra: map[string]any{"scheme": SchemeDwtDct, "bits": watermark.FormatBits(bits), "nbits": len(bits)}}, nil
}

// WatermarkDetectOptions are watermarkDetect()'s settings.
type WatermarkDetectOptions struct {
	Image Image
	// Schemes to run (nil: every available one; errors are then reported
	// per scheme instead of rejecting the call).
	Schemes []string
	// DwtDct: the expected payload (optional; its length is the number of
	// bits read), else NBits bits (0: 32).
	Payload, Bits string
	NBits         int
	// Tree-Ring: the key, the inversion, the prompt of the image if known
	// ("" for the null prompt), the significance level (0: 0.01).
	Key    TreeRingKeyOptions
	Method string
	Steps  int
	Prompt string
	Alpha  float64
}

// SchemeError is why a scheme did not run.
type SchemeError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// DwtDctReport is DwtDct's part of a detection.
type DwtDctReport struct {
	Scheme  string       `json:"scheme"`
	Verdict string       `json:"verdict"`
	Marked  bool         `json:"marked"`
	Error   *SchemeError `json:"error"`
	NBits   int          `json:"nbits"`
	Bits    string       `json:"bits"`
	Hex     string       `json:"hex"`
	// Text is the payload as text when it is printable UTF-8 ("" else).
	Text  string    `json:"text"`
	Votes []float64 `json:"votes"`
	// Confidence is the mean of |2·vote − 1|: 1 when every block of every
	// bit agrees (see DwtDctConfidence).
	Confidence float64 `json:"confidence"`
	Threshold  float64 `json:"threshold"`
	// With an expected payload: the fraction of bits that match, and
	// whether all do (then the verdict).
	BitAccuracy *float64 `json:"bitAccuracy"`
	Match       *bool    `json:"match"`
	Ms          float64  `json:"ms"`
}

// TreeRingReport is Tree-Ring's part of a detection.
type TreeRingReport struct {
	Scheme  string           `json:"scheme"`
	Verdict string           `json:"verdict"`
	Marked  bool             `json:"marked"`
	Error   *SchemeError     `json:"error"`
	Key     *TreeRingKeyInfo `json:"key"`
	Method  string           `json:"method"`
	Steps   int              `json:"steps"`
	// Metric is the mean |F(x_T) − key| over the mask (low: marked);
	// PValue the probability that unmarked noise comes this close.
	Metric float64 `json:"metric"`
	PValue float64 `json:"pValue"`
	Log10P float64 `json:"log10P"`
	Alpha  float64 `json:"alpha"`
	Calls  int     `json:"calls"`
	Ms     float64 `json:"ms"`
}

// WatermarkReport is watermarkDetect()'s result: one report per scheme.
type WatermarkReport struct {
	Width    int             `json:"width"`
	Height   int             `json:"height"`
	DwtDct   *DwtDctReport   `json:"dwtdct"`
	TreeRing *TreeRingReport `json:"treering"`
	SafeSD   *SafeSDReport   `json:"safesd"`
	// Marked: some scheme found a mark.
	Marked bool    `json:"marked"`
	Ms     float64 `json:"ms"`
}

func schemeError(err error) *SchemeError {
	return &SchemeError{Code: ErrorCode(err), Message: err.Error()}
}

// DetectWatermarks runs the requested schemes (all by default) on the
// image. m may be nil (no model loaded): Tree-Ring and Safe-SD then do
// not run; a model without a safesd component reports Safe-SD "not
// available".
// onStep sees the inversion's steps; its error (ErrCanceled) stops the
// call.
func DetectWatermarks(m *Model, be nn.Backend, o WatermarkDetectOptions, onStep func(Step) error) (*WatermarkReport, error) {
	start := time.Now()
	explicit := o.Schemes != nil
	schemes := o.Schemes
	if !explicit {
		schemes = []string{SchemeDwtDct, SchemeSafeSD, SchemeTreeRing}
	}
	for _, s := range schemes {
		switch s {
		case SchemeDwtDct, SchemeTreeRing, SchemeSafeSD:
		default:
			return nil, withCode(CodeBadOptions, fmt.Errorf("watermark: unknown scheme %q (want %s, %s or %s)", s, SchemeTreeRing, SchemeDwtDct, SchemeSafeSD))
		}
	}
	if o.Method == "" {
		o.Method = "ddim"
	}
	if o.Method != "ddim" && o.Method != "edict" && o.Method != "bdia" {
		return nil, withCode(CodeBadOptions, fmt.Errorf("watermark: inversion method %q (want ddim, edict or bdia)", o.Method))
	}
	if o.Steps == 0 {
		o.Steps = DefaultDetectSteps
	}
	if o.Steps < 1 || o.Steps > MaxSteps {
		return nil, withCode(CodeBadOptions, fmt.Errorf("watermark: %d inversion steps (want 1…%d)", o.Steps, MaxSteps))
	}
	if o.Alpha == 0 {
		o.Alpha = TreeRingAlpha
	}
	if !(o.Alpha > 0 && o.Alpha < 1) {
		return nil, withCode(CodeBadOptions, fmt.Errorf("watermark: alpha %v (want a significance level in (0, 1))", o.Alpha))
	}
	expect, err := dwtDctBits("watermark", o.Payload, o.Bits)
	if err != nil {
		return nil, err
	}
	n := o.NBits
	switch {
	case expect != nil && n != 0 && n != len(expect):
		return nil, withCode(CodeBadPayload, fmt.Errorf("watermark: nbits %d but the expected payload has %d bits", n, len(expect)))
	case expect != nil:
		n = len(expect)
	case n == 0:
		n = DwtDctDefaultBits
	}
	if n < 1 || n > DwtDctMaxBits {
		return nil, withCode(CodeBadPayload, fmt.Errorf("watermark: %d payload bits (want 1…%d)", n, DwtDctMaxBits))
	}
	img, err := o.Image.decode()
	if err != nil {
		return nil, err
	}
	b := img.Bounds()
	rep := &WatermarkReport{Width: b.Dx(), Height: b.Dy()}
	for _, s := range schemes {
		switch s {
		case SchemeDwtDct:
			r, err := detectDwtDct(img, n, expect)
			if err != nil {
				if explicit {
					return nil, err
				}
				r = &DwtDctReport{Scheme: SchemeDwtDct, Verdict: VerdictNotRun, Error: schemeError(err), NBits: n}
			}
			rep.DwtDct = r
		case SchemeTreeRing:
			var r *TreeRingReport
			if m == nil {
				err = withCode(CodeNoModel, errors.New("watermark: Tree-Ring detection inverts the image with the model that made it: load a model first"))
			} else {
				r, err = m.detectTreeRing(be, img, o, onStep)
			}
			if err != nil {
				if explicit || errors.Is(err, ErrCanceled) || ErrorCode(err) == CodeDeviceLost {
					return nil, err
				}
				if be != nil {
					be.ClearErr()
				}
				r = &TreeRingReport{Scheme: SchemeTreeRing, Verdict: VerdictNotRun, Error: schemeError(err), Method: o.Method, Steps: o.Steps}
			}
			rep.TreeRing = r
		case SchemeSafeSD:
			var r *SafeSDReport
			var err error
			switch {
			case m == nil:
				err = withCode(CodeNoModel, errors.New("watermark: Safe-SD detection needs the loaded model's safesd component: load a model first"))
			case m.SafeSD == nil && !explicit:
				r = &SafeSDReport{Scheme: SchemeSafeSD, Verdict: VerdictNotAvailable, Reason: safeSDNone}
			default:
				r, err = m.detectSafeSD(be, img)
			}
			if err != nil {
				if explicit || ErrorCode(err) == CodeDeviceLost {
					return nil, err
				}
				if be != nil {
					be.ClearErr()
				}
				r = &SafeSDReport{Scheme: SchemeSafeSD, Verdict: VerdictNotRun, Error: schemeError(err)}
			}
			rep.SafeSD = r
		}
	}
	rep.Marked = rep.DwtDct != nil && rep.DwtDct.Marked || rep.TreeRing != nil && rep.TreeRing.Marked || rep.SafeSD != nil && rep.SafeSD.Marked
	rep.Ms = float64(time.Since(start).Microseconds()) / 1000
	return rep, nil
}

// detectDwtDct reads n bits (the CLI's dwtDctDetect) and decides.
func detectDwtDct(img image.Image, n int, expect []bool) (*DwtDctReport, error) {
	start := time.Now()
	bits, votes, err := watermark.DecodeDwtDct(img, n)
	if err != nil {
		return nil, dwtDctError(img, err)
	}
	by := watermark.BytesFromBits(bits)
	r := &DwtDctReport{Scheme: SchemeDwtDct, NBits: n, Bits: watermark.FormatBits(bits), Hex: hex.EncodeToString(by), Votes: votes, Threshold: DwtDctConfidence,
		Text: watermark.PayloadText(bits), Confidence: watermark.VoteConfidence(votes)}
	if expect != nil {
		acc, match := watermark.BitAccuracy(bits, expect)
		r.BitAccuracy, r.Match = &acc, &match
		r.Marked = match
	} else {
		// all-equal bits are what a flat image (every block alike) reads
		r.Marked = r.Confidence >= DwtDctConfidence && slices.Contains(bits, true) && slices.Contains(bits, false)
	}
	r.Verdict = VerdictNotMarked
	if r.Marked {
		r.Verdict = VerdictMarked
	}
	r.Ms = float64(time.Since(start).Microseconds()) / 1000
	return r, nil
}

// detectTreeRing inverts the image (at the model's resolution, as edit's
// input) back to x_T and scores it against the key (the CLI's `watermark
// detect --scheme treering`, with its --inv-guidance 1).
func (m *Model) detectTreeRing(be nn.Backend, img image.Image, o WatermarkDetectOptions, onStep func(Step) error) (*TreeRingReport, error) {
	start := time.Now()
	if o.Prompt != "" { // "": the null prompt (class models' null class)
		if err := m.checkPrompt("the", o.Prompt); err != nil {
			return nil, err
		}
	}
	key, err := m.treeRingKey(be, o.Key)
	if err != nil {
		return nil, err
	}
	v, _, err := m.ModelInput(img)
	if err != nil {
		return nil, err
	}
	r, c := m.Info.Resolution, m.Info.Channels
	x := be.Upload([]int{1, c, r, r}, v)
	z, err := m.SD.EncodeImage(be, x)
	nn.Free(x)
	if err != nil {
		return nil, err
	}
	defer nn.Free(z)
	cond, err := m.SD.EncodePrompt(be, o.Prompt)
	if err != nil {
		return nil, err
	}
	defer nn.Free(cond)
	eps := samplers.CondUNetEps(m.SD.UNet, cond, nil, 1)
	calls, per := 0, 1
	if o.Method == "edict" {
		per = 2 // EDICT's two coupled sequences
	}
	progress := func(be nn.Backend, x *nn.Tensor, t float32) (*nn.Tensor, error) {
		e, err := eps(be, x, t)
		if err != nil {
			return nil, err
		}
		calls++
		if onStep != nil && calls%per == 0 {
			if err := onStep(Step{K: min(calls/per, o.Steps), Steps: o.Steps}); err != nil {
				nn.Free(e)
				return nil, err
			}
		}
		return e, nil
	}
	sc, err := key.Detect(be, o.Method, m.SD.SchedulerConfigOf(), o.Steps, progress, z)
	if err != nil {
		return nil, err
	}
	ki := keyInfo(key, o.Key.Seed)
	rep := &TreeRingReport{Scheme: SchemeTreeRing, Key: &ki, Method: o.Method, Steps: o.Steps,
		Metric: sc.Metric, PValue: sc.PValue, Log10P: sc.Log10P, Alpha: o.Alpha, Marked: sc.PValue < o.Alpha, Calls: calls,
		Ms: float64(time.Since(start).Microseconds()) / 1000}
	rep.Verdict = VerdictNotMarked
	if rep.Marked {
		rep.Verdict = VerdictMarked
	}
	return rep, nil
}
