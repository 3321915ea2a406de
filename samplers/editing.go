package samplers

import (
	"fmt"
	"strings"

	"retrace/nn"
)

// EditImageOptions describes an edit of a real image with a pipeline: the
// image is inverted under the source prompt and regenerated under the
// target prompt.
type EditImageOptions struct {
	// Image [1, 3, H, W] in [−1, 1].
	Image          *nn.Tensor
	Source, Target string
	// Method: ddim, edict, bdia, ef-ddpm, or direct (Direct Inversion +
	// prompt-to-prompt).
	Method   string
	Steps    int
	Guidance float32
	// ReconstructOnly regenerates under the source prompt (shows how exact
	// the inversion is).
	ReconstructOnly bool
	// Skip (edit-friendly DDPM) starts regeneration T_skip steps below the
	// top.
	Skip int
	Seed uint64
	// Prompt-to-prompt for the direct method: CrossReplace and SelfReplace
	// are fractions of steps; BlendWords, if any, restrict the edit to where
	// those words attend (words of the source or target prompt).
	CrossReplace, SelfReplace float64
	BlendWords                []string
	Reweight                  map[string]float32
	// OnStep, if set, is called as the edit goes with the number k of
	// model evaluations done so far, the expected total and the current
	// latents [1, C, h, w] (the ones the next evaluation is applied to; nil
	// before Direct Inversion's inversion, which reports no steps of its
	// own). The latents stay owned by the edit: read them, do not free
	// them. A non-nil error stops the edit and is returned (cancellation).
	OnStep func(k, total int, latents *nn.Tensor) error
}

// EditImage runs an edit and returns the edited image [1, 3, H, W] in
// [0, 1] and the number of model calls.
func (sd *StableDiffusion) EditImage(be nn.Backend, o EditImageOptions) (*nn.Tensor, int, error) {
	if o.Image == nil || o.Image.Rank() != 4 || o.Image.Dim(0) != 1 {
		return nil, 0, fmt.Errorf("edit: image %v must be [1, C, H, W]", o.Image)
	}
	if o.Steps <= 0 {
		return nil, 0, fmt.Errorf("edit: %d steps", o.Steps)
	}
	if o.ReconstructOnly {
		o.Target = o.Source
	}
	z0, err := sd.encodeImage(be, o.Image)
	if err != nil {
		return nil, 0, err
	}
	defer nn.Free(z0)
	src, err := sd.EncodePrompt(be, o.Source)
	if err != nil {
		return nil, 0, err
	}
	defer nn.Free(src)
	tgt, err := sd.EncodePrompt(be, o.Target)
	if err != nil {
		return nil, 0, err
	}
	defer nn.Free(tgt)
	uncond, err := sd.EncodePrompt(be, "")
	if err != nil {
		return nil, 0, err
	}
	defer nn.Free(uncond)
	cfg := sd.schedulerConfig()
	var out *nn.Tensor
	calls := 0
	step := editProgress(o)
	switch o.Method {
	case "direct":
		out, calls, err = sd.editDirect(be, o, cfg, z0, src, tgt, uncond)
	case "ddim", "edict", "bdia", "ef-ddpm":
		// DDIM inversion is run without guidance (its usual setting); the
		// exact methods invert with the same guided ε they regenerate with.
		gi := o.Guidance
		if o.Method == "ddim" {
			gi = 1
		}
		inv, ierr := Invert(be, o.Method, cfg, o.Steps, step(CondUNetEps(sd.UNet, src, uncond, gi)), z0, o.Seed)
		if ierr != nil {
			return nil, 0, ierr
		}
		defer inv.Free()
		var n int
		out, n, err = Regenerate(be, inv, cfg, step(CondUNetEps(sd.UNet, tgt, uncond, o.Guidance)), o.Skip, o.ReconstructOnly)
		calls = inv.Calls + n
	default:
		return nil, 0, fmt.Errorf("edit: unknown method %q (ddim, edict, bdia, ef-ddpm, direct)", o.Method)
	}
	if err != nil {
		return nil, 0, err
	}
	img, err := sd.decodeLatents(be, out)
	nn.Free(out)
	return img, calls, err
}

// editProgress returns a wrapper of eps that reports each evaluation to
// o.OnStep (the identity without one).
func editProgress(o EditImageOptions) func(EpsFunc) EpsFunc {
	if o.OnStep == nil {
		return func(e EpsFunc) EpsFunc { return e }
	}
	total := 2 * o.Steps
	for _, m := range Methods {
		if m.Name == o.Method {
			total = 2 * m.CallsPerStep * o.Steps
		}
	}
	if o.Method == "ef-ddpm" {
		total -= max(o.Skip, 0)
	}
	k := 0
	return func(eps EpsFunc) EpsFunc {
		return func(be nn.Backend, x *nn.Tensor, t float32) (*nn.Tensor, error) {
			if err := o.OnStep(k, max(total, k+1), x); err != nil {
				return nil, err
			}
			k++
			return eps(be, x, t)
		}
	}
}

// schedulerConfig returns the pipeline scheduler's config: the inversion
// methods use its noise schedule and timestep spacing.
func (sd *StableDiffusion) schedulerConfig() SchedulerConfig {
	switch s := sd.Scheduler.(type) {
	case *DDIM:
		return s.Config
	case *DDIMInverse:
		return s.Config
	case *DDPM:
		return s.Config
	case *Euler:
		return s.Config
	case *EulerAncestral:
		return s.Config
	case *DPMSolver:
		return s.Config
	case *PNDM:
		return s.Config
	}
	cfg := SchedulerConfig{}
	cfg.Defaults()
	return cfg
}

// encodeImage maps an image in [−1, 1] to the model's latents (the VAE's
// mean times its scaling factor).
func (sd *StableDiffusion) encodeImage(be nn.Backend, img *nn.Tensor) (*nn.Tensor, error) {
	if sd.VAE == nil {
		return be.Affine(img, 1, 0), be.Err()
	}
	d, err := sd.VAE.Encode(be, img)
	if err != nil {
		return nil, err
	}
	z := be.Affine(d.Mean, sd.VAE.Config.ScalingFactor, 0)
	d.Free()
	return z, be.Err()
}

// decodeLatents maps latents to an image in [0, 1].
func (sd *StableDiffusion) decodeLatents(be nn.Backend, z *nn.Tensor) (*nn.Tensor, error) {
	x := z
	if sd.VAE != nil {
		s := be.Affine(z, 1/sd.VAE.Config.ScalingFactor, 0)
		dec, err := sd.VAE.Decode(be, s)
		nn.Free(s)
		if err != nil {
			return nil, err
		}
		x = dec
		defer nn.Free(dec)
	}
	a := be.Affine(x, 0.5, 0.5)
	img := be.Clamp(a, 0, 1)
	nn.Free(a)
	return img, be.Err()
}

// wordPositions returns the token positions (BOS = 0) of the words of
// prompt that appear in words.
func (sd *StableDiffusion) wordPositions(prompt string, words []string) []int {
	if sd.Tokenizer == nil {
		return nil
	}
	var out []int
	pos := 1
	for _, w := range strings.Fields(prompt) {
		n := len(sd.Tokenizer.Encode(w)) - 2
		for _, want := range words {
			if strings.EqualFold(strings.Trim(w, ".,;:!?"), want) {
				for i := 0; i < n; i++ {
					out = append(out, pos+i)
				}
			}
		}
		pos += n
	}
	return out
}

func (sd *StableDiffusion) editDirect(be nn.Backend, o EditImageOptions, cfg SchedulerConfig, z0, src, tgt, uncond *nn.Tensor) (*nn.Tensor, int, error) {
	if o.OnStep != nil {
		if err := o.OnStep(0, 2*o.Steps, nil); err != nil {
			return nil, 0, err
		}
	}
	traj, err := InvertTrajectory(be, z0, InvertOptions{UNet: sd.UNet, Scheduler: cfg, Steps: o.Steps, Prompt: src})
	if err != nil {
		return nil, 0, err
	}
	defer traj.Free()
	var st, tt []int
	if sd.Tokenizer != nil {
		st, tt = sd.Tokenizer.Encode(o.Source), sd.Tokenizer.Encode(o.Target)
	} else {
		// A class-prompt encoder: every context token describes the class,
		// so a class swap is a word swap of the whole sequence.
		st, tt = make([]int, src.Dim(1)), make([]int, tgt.Dim(1))
	}
	po := P2POptions{
		Mode: P2PRefine, ContextLen: src.Dim(1), SourceTokens: st, TargetTokens: tt,
		CrossReplace: o.CrossReplace, SelfReplace: o.SelfReplace, SelfMaxTokens: 256,
	}
	if len(st) == len(tt) {
		po.Mode = P2PReplace
	}
	if len(o.Reweight) > 0 {
		po.Reweight = map[int]float32{}
		for w, f := range o.Reweight {
			for _, p := range sd.wordPositions(o.Target, []string{w}) {
				po.Reweight[p] = f
			}
		}
	}
	if len(o.BlendWords) > 0 {
		po.Blend = &LocalBlend{
			SourceWords: sd.wordPositions(o.Source, o.BlendWords),
			TargetWords: sd.wordPositions(o.Target, o.BlendWords),
			Res:         max(z0.Dim(2)/4, 1), Threshold: 0.3, Dilate: 1,
		}
	}
	ctl, err := NewP2P(be, po)
	if err != nil {
		return nil, 0, err
	}
	defer ctl.Free()
	calls := o.Steps
	_, out, err := Edit(be, EditOptions{
		UNet: sd.UNet, Scheduler: cfg, Steps: o.Steps, Guidance: o.Guidance,
		Source: src, Target: tgt, Uncond: uncond, Trajectory: traj, Controller: ctl,
		OnStep: func(k, _ int, x *nn.Tensor) error {
			calls++
			if o.OnStep == nil {
				return nil
			}
			tgt := nn.Narrow(x, 1, 1)
			defer nn.Free(tgt)
			return o.OnStep(o.Steps+k+1, 2*o.Steps, tgt)
		},
	})
	return out, calls, err
}

// EncodeImage maps an image [1, 3, H, W] in [−1, 1] to the model's
// latents.
func (sd *StableDiffusion) EncodeImage(be nn.Backend, img *nn.Tensor) (*nn.Tensor, error) {
	return sd.encodeImage(be, img)
}

// SchedulerConfigOf returns the pipeline scheduler's config.
func (sd *StableDiffusion) SchedulerConfigOf() SchedulerConfig { return sd.schedulerConfig() }
