package main

// restore(): inverse problems (inpainting, super-resolution, deblurring,
// denoising) with the loaded pixel-space model as the diffusion prior,
// through samplers/restore — the same code as `retrace restore`.

import (
	"fmt"
	"math"
	"slices"
	"time"

	"retrace/nn"
	"retrace/samplers"
	"retrace/samplers/restore"
)

// Error codes of restore() (besides the common ones).
const (
	// CodeBadMask: the inpainting mask is empty or has the wrong size.
	CodeBadMask = "bad-mask"
	// CodeUnsupportedModel: the loaded model cannot serve the call (a
	// latent-space model for restore).
	CodeUnsupportedModel = "unsupported-model"
)

// RestoreTasks are the tasks restore() offers (colorize needs an RGB
// model; the default model is grayscale, so the page leaves it out when
// the model has one channel).
var RestoreTasks = []string{"inpaint", "sr2", "sr4", "deblur", "denoise", "colorize"}

// RestoreInfo tells the page what restore() accepts for a model: for each
// task, the solvers that support it (at the task's default σ_y).
type RestoreInfo struct {
	Solvers map[string][]string `json:"solvers"`
	Tasks   []string            `json:"tasks"`
}

// restoreInfo is nil for latent-space models (restore is refused).
func restoreInfo(latent bool, channels int) *RestoreInfo {
	if latent {
		return nil
	}
	ri := &RestoreInfo{Solvers: map[string][]string{}}
	for _, t := range RestoreTasks {
		if t == "colorize" && channels != 3 {
			continue
		}
		ri.Tasks = append(ri.Tasks, t)
		ri.Solvers[t] = restore.SolversFor(t, defaultSigmaY(t))
	}
	return ri
}

// defaultSigmaY is σ_y in [0, 1] pixel units when the page gives none:
// 0.1 for denoising, else a noiseless measurement (as the CLI).
func defaultSigmaY(task string) float64 {
	if task == "denoise" {
		return 0.1
	}
	return 0
}

// RestoreOptions are restore()'s settings. The image is the picture to
// restore at the model's resolution (centre crop and resize, as edit):
// it is degraded by the task's operator (the painted holes blanked, pooled
// to ½ or ¼ size, blurred, or noised) and restored from that measurement.
type RestoreOptions struct {
	Image  Image
	Task   string
	Solver string
	// Mask (inpaint; light = hole) has the image's size (it gets the same
	// crop and resize) or the model's resolution (painted on the cropped
	// picture). Nil: a centred box of half the sides.
	Mask  *Image
	Steps int
	Seed  uint64
	// SigmaY is the measurement noise σ_y in [0, 1] pixel units (< 0:
	// the task's default, 0.1 for denoise and 0 elsewhere).
	SigmaY float64
	// BlurSigma is deblur's Gaussian σ in model pixels (≤ 0: 2).
	BlurSigma float64
	// Clean, if set, is the ground truth (same crop and resize): the
	// result gets its PSNR and SSIM.
	Clean    *Image
	Previews bool
}

// RestoreResult is a finished restore: the restored image, the degraded
// measurement y as the solver saw it, and metrics against Clean.
type RestoreResult struct {
	Result
	Degraded RGBA
	// PSNR (dB, capped at 100) and SSIM of the result against the clean
	// image, when one was given.
	PSNR, SSIM *float64
	Solver     string
	Task       string
}

// restorePrior makes the model's prior (the null prompt, no guidance).
func (m *Model) restorePrior(be nn.Backend) (restore.Prior, func(), error) {
	if m.Info.Latent || m.SD.VAE != nil {
		return restore.Prior{}, nil, withCode(CodeUnsupportedModel, fmt.Errorf("restore: model %s: %w", m.Info.Name, restore.ErrLatentModel))
	}
	return restore.PipelinePrior(be, m.SD, "", m.Info.Name)
}

// Restore runs one restoration. onStep (may be nil) sees progress with
// x̂₀ previews; its error (e.g. ErrCanceled) stops the run.
func (m *Model) Restore(be nn.Backend, o RestoreOptions, onStep func(Step) error) (*RestoreResult, error) {
	start := time.Now()
	bad := func(format string, a ...any) error {
		return withCode(CodeBadOptions, fmt.Errorf("restore: "+format, a...))
	}
	if m.Info.Latent || m.SD.VAE != nil {
		_, _, err := m.restorePrior(be)
		return nil, err
	}
	if !slices.Contains(RestoreTasks, o.Task) {
		return nil, bad("unknown task %q (want one of %v)", o.Task, RestoreTasks)
	}
	if !slices.Contains(restore.Solvers, o.Solver) {
		return nil, bad("unknown solver %q (want one of %v)", o.Solver, restore.Solvers)
	}
	if o.Solver != "pinv" && (o.Steps <= 0 || o.Steps > MaxSteps) {
		return nil, bad("%d steps (want 1…%d)", o.Steps, MaxSteps)
	}
	if o.SigmaY < 0 {
		o.SigmaY = defaultSigmaY(o.Task)
	}
	if !(o.SigmaY <= 1) {
		return nil, bad("measurement noise σ_y = %v (want 0…1, in pixel units)", o.SigmaY)
	}
	if o.BlurSigma <= 0 {
		o.BlurSigma = 2
	}
	if o.BlurSigma > 16 {
		return nil, bad("blur σ = %v pixels (want at most 16)", o.BlurSigma)
	}
	img, err := o.Image.decode()
	if err != nil {
		return nil, err
	}
	v, crop, err := m.ModelInput(img)
	if err != nil {
		return nil, err
	}
	var clean []float32
	if o.Clean != nil {
		ci, err := o.Clean.decode()
		if err != nil {
			return nil, fmt.Errorf("clean image: %w", err)
		}
		if clean, _, err = m.ModelInput(ci); err != nil {
			return nil, fmt.Errorf("clean image: %w", err)
		}
	}
	r, c := m.Info.Resolution, m.Info.Channels
	var known []float32
	if o.Task == "inpaint" && o.Mask != nil {
		mi, err := o.Mask.decode()
		if err != nil {
			return nil, &codedError{CodeBadMask, fmt.Errorf("restore: mask: %w", err)} // over decode's bad-image
		}
		b := img.Bounds()
		if known, err = restore.UserMask(mi, b.Dx(), b.Dy(), r, r); err != nil {
			return nil, withCode(CodeBadMask, err)
		}
	}
	op, err := restore.NewOperator(be, o.Task, c, restore.TaskOptions{Known: known, H: r, W: r, BlurSigma: o.BlurSigma})
	if err != nil {
		be.ClearErr()
		return nil, withCode(CodeBadOptions, err)
	}
	defer op.Free()
	sigmaY := 2 * o.SigmaY // model units: [−1, 1]
	if err := restore.Supports(o.Solver, op, sigmaY); err != nil {
		return nil, withCode(CodeBadOptions, err)
	}
	prior, freePrior, err := m.restorePrior(be)
	if err != nil {
		be.ClearErr()
		return nil, err
	}
	defer freePrior()

	shape := []int{1, c, r, r}
	x := be.Upload(shape, v)
	y, err := restore.Degrade(be, op, x, sigmaY, samplers.NewNoise(o.Seed^0x9e3779b97f4a7c15))
	nn.Free(x)
	if err != nil {
		be.ClearErr()
		return nil, err
	}
	defer nn.Free(y)
	yv, err := be.Read(y)
	if err != nil {
		return nil, err
	}
	out := &RestoreResult{Degraded: ToRGBA(yv, y.Dim(1), y.Dim(2), y.Dim(3), true), Solver: o.Solver, Task: o.Task}
	in := ToRGBA(v, c, r, r, true)

	opts := restore.Options{Steps: o.Steps, Seed: o.Seed}
	if onStep != nil {
		opts.OnStep = func(k int, x0 *nn.Tensor) error {
			s := Step{K: k + 1, Steps: o.Steps}
			if o.Previews && x0 != nil {
				p, err := m.Preview(be, x0)
				if err != nil {
					return err
				}
				s.Preview = p
			}
			return onStep(s)
		}
	}
	res, st, err := restore.Solve(be, o.Solver, prior, restore.Problem{Op: op, Y: y, Shape: shape, SigmaY: sigmaY}, opts)
	if err != nil {
		be.ClearErr()
		return nil, err
	}
	defer nn.Free(res)
	rv, err := be.Read(res)
	if err != nil {
		return nil, err
	}
	for i, f := range rv {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return nil, fmt.Errorf("restore: result pixel value %d is %v (the model output is not finite)", i, f)
		}
	}
	out.Image = ToRGBA(rv, c, r, r, true)
	out.Input, out.Crop, out.Calls = &in, crop, st.Calls
	if clean != nil {
		a, b := unit(clean), unit(rv)
		p, err := restore.PSNR(a, b)
		if err != nil {
			return nil, err
		}
		if math.IsInf(p, 1) {
			p = 100
		}
		s, err := restore.SSIM(a, b, c, r, r)
		if err != nil {
			return nil, err
		}
		out.PSNR, out.SSIM = &p, &s
	}
	out.Ms = float64(time.Since(start).Microseconds()) / 1000
	return out, nil
}

// unit maps [−1, 1] to [0, 1], clamped (the metrics' scale).
func unit(v []float32) []float32 {
	o := make([]float32, len(v))
	for i, f := range v {
		o[i] = min(max(f/2+0.5, 0), 1)
	}
	return o
}
