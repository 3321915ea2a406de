package samplers

import (
	"fmt"

	"retrace/nn"
)

// Direct Inversion (Ju et al., "PnP Inversion: Boosting Diffusion-based
// Editing with 3 Lines of Code", ICLR 2024, Algorithm 1). The source image
// is inverted once (z*_0 … z*_T); editing then denoises a source and a
// target branch together from z*_T and, after every step, adds the
// difference z*_{t−1} − z^src_{t−1} to the source branch, so the source
// branch follows the inversion exactly while the target branch runs free
// and is steered only through the source branch's attention (P2P). The
// reference precomputes these offsets in a source-only pass; the source
// branch of the joint run is the same computation (the controller edits
// only the target), so here they are applied online.

// Trajectory yields an inverted source trajectory in sampling order. DDIM
// inversion (InvertTrajectory) implements it through LatentTrajectory;
// exact inversions (EDICT, BDIA) can supply their own latents per step.
type Trajectory interface {
	// Steps is the number n of sampling steps the trajectory covers.
	Steps() int
	// Latent returns z* after i of the n sampling steps, [1, C, h, w]:
	// Latent(0) is the start point z*_T, Latent(n) the source latent z*_0.
	// The trajectory keeps ownership.
	Latent(i int) *nn.Tensor
}

// editDDIM is the deterministic DDIM schedule of the editing loops (Song et
// al. 2021, eq. 12 with η = 0; the exact methods' grid, exactGrid, with
// leading or trailing spacing; epsilon prediction), kept private so that
// editing does not depend on the scheduler set's API.
type editDDIM struct {
	ac        []float32 // ᾱ_t
	final     float64   // ᾱ before the first timestep (set_alpha_to_one)
	ratio     int       // Δ between timesteps
	timesteps []int     // descending
}

func newEditDDIM(cfg SchedulerConfig, n int) (*editDDIM, error) {
	cfg.Defaults()
	if cfg.PredictionType != "epsilon" {
		return nil, fmt.Errorf("edit: prediction_type %q is not supported (epsilon only)", cfg.PredictionType)
	}
	ac, err := cfg.AlphasCumprod()
	if err != nil {
		return nil, err
	}
	T := cfg.NumTrainTimesteps
	if n <= 0 || n > T {
		return nil, fmt.Errorf("edit: %d steps (want 1…%d)", n, T)
	}
	d := &editDDIM{ac: ac, final: finalAlpha(cfg, ac), ratio: T / n}
	if s := cfg.TimestepSpacing; s != "leading" && s != "trailing" {
		return nil, fmt.Errorf("edit: timestep_spacing %q is not supported (leading, trailing)", s)
	}
	d.timesteps, _ = exactGrid(cfg.TimestepSpacing, T, n, cfg.StepsOffset)
	for _, t := range d.timesteps {
		if t < 0 || t >= T {
			return nil, fmt.Errorf("edit: timestep %d outside [0, %d)", t, T)
		}
	}
	return d, nil
}

// alphas returns ᾱ_t and ᾱ of the timestep Δ before t.
func (d *editDDIM) alphas(t int) (at, ap float64) {
	at, ap = float64(d.ac[t]), d.final
	if p := t - d.ratio; p >= 0 {
		ap = float64(d.ac[p])
	}
	return at, ap
}

// step is the DDIM update x_t → x_{t−Δ} with x̂0 substituted:
// x_prev = √ᾱ_prev·(x − √(1−ᾱ_t)·ε)/√ᾱ_t + √(1−ᾱ_prev)·ε.
func (d *editDDIM) step(be nn.Backend, eps *nn.Tensor, t int, x *nn.Tensor) *nn.Tensor {
	at, ap := d.alphas(t)
	cx, ce := ddimCoef(at, ap)
	return be.Axpby(float32(cx), x, float32(ce), eps)
}

// LatentTrajectory is a Trajectory held as a slice, Latents[i] = Latent(i).
type LatentTrajectory struct{ Latents []*nn.Tensor }

// Steps implements Trajectory.
func (t *LatentTrajectory) Steps() int { return len(t.Latents) - 1 }

// Latent implements Trajectory.
func (t *LatentTrajectory) Latent(i int) *nn.Tensor { return t.Latents[i] }

// Free releases the latents.
func (t *LatentTrajectory) Free() { nn.Free(t.Latents...); t.Latents = nil }

// InvertOptions configures DDIM inversion for editing.
type InvertOptions struct {
	UNet      *nn.UNet2DConditionModel
	Scheduler SchedulerConfig
	Steps     int
	// Prompt is the source prompt's embeddings [1, L, D].
	Prompt *nn.Tensor
	// Negative, if set, makes the noise estimate
	// ε = ε(Negative) + Guidance·(ε(Prompt) − ε(Negative)): classifier-free
	// guidance during inversion, with a negative prompt (StyleSSP's negative
	// guidance: Negative describes what the start point should move away
	// from, Guidance > 1), or the empty prompt with Guidance < 1 (negative
	// CFG scales). Without Negative, ε = ε(Prompt) as in the reference
	// (null-text / PnP inversion use the source prompt at scale 1).
	Negative *nn.Tensor
	Guidance float32
}

// InvertTrajectory runs deterministic DDIM inversion of the source latent
// x0 [1, C, h, w] (Song et al. 2021, eq. 13 run backwards; diffusers'
// DDIMInverseScheduler / null-text inversion's next_step): with timesteps
// t_0 < t_1 < … (the sampler's, ascending) and t_{−1} = t_0 − Δ,
//
//	x̂0 = (z_{t_{i−1}} − √(1−ᾱ_{t_{i−1}})·ε_θ(z_{t_{i−1}}, t_i)) / √ᾱ_{t_{i−1}}
//	z_{t_i} = √ᾱ_{t_i}·x̂0 + √(1−ᾱ_{t_i})·ε_θ(z_{t_{i−1}}, t_i)
//
// (ᾱ_{t_{−1}} is the final alpha: 1 with set_alpha_to_one). The noise is
// predicted at the next timestep from the current latent, the usual
// approximation of the implicit update.
func InvertTrajectory(be nn.Backend, x0 *nn.Tensor, o InvertOptions) (*LatentTrajectory, error) {
	if o.UNet == nil || o.Prompt == nil || x0 == nil {
		return nil, fmt.Errorf("invert: missing UNet, scheduler, prompt or latents")
	}
	if x0.Rank() != 4 || x0.Dim(0) != 1 {
		return nil, fmt.Errorf("invert: latents %v, want [1, C, h, w]", x0.Shape())
	}
	d, err := newEditDDIM(o.Scheduler, o.Steps)
	if err != nil {
		return nil, err
	}
	n := len(d.timesteps)
	ctx := o.Prompt
	if o.Negative != nil {
		ctx = be.Concat(0, o.Negative, o.Prompt)
		defer nn.Free(ctx)
	}
	inv := []*nn.Tensor{be.Affine(x0, 1, 0)} // inv[i]: after i inversion steps
	fail := func(err error) (*LatentTrajectory, error) {
		nn.Free(inv...)
		return nil, err
	}
	for i := 0; i < n; i++ {
		t := d.timesteps[n-1-i]
		x := inv[i]
		in := x
		if o.Negative != nil {
			in = be.Concat(0, x, x)
		}
		eps, err := o.UNet.Forward(be, in, []float32{float32(t)}, ctx)
		if in != x {
			nn.Free(in)
		}
		if err != nil {
			return fail(err)
		}
		if o.Negative != nil {
			en, ec := nn.Narrow(eps, 0, 1), nn.Narrow(eps, 1, 1)
			g := be.Axpby(1-o.Guidance, en, o.Guidance, ec)
			nn.Free(en, ec, eps)
			eps = g
		}
		at, ap := d.alphas(t)
		cx, ce := ddimCoef(ap, at) // inversion: from the level below t up to t
		next := be.Axpby(float32(cx), x, float32(ce), eps)
		nn.Free(eps)
		if err := be.Err(); err != nil {
			nn.Free(next)
			return fail(err)
		}
		inv = append(inv, next)
	}
	// Sampling order: Latent(0) = z*_T = inv[n].
	tr := &LatentTrajectory{Latents: make([]*nn.Tensor, n+1)}
	for i := range inv {
		tr.Latents[n-i] = inv[i]
	}
	return tr, nil
}

// EditOptions configures Edit.
type EditOptions struct {
	UNet      *nn.UNet2DConditionModel
	Scheduler SchedulerConfig
	Steps     int
	// Guidance is the classifier-free guidance scale; 1 runs the batch
	// [cond_src, cond_tgt] without unconditional rows.
	Guidance float32
	// Source, Target, Uncond are prompt embeddings [1, L, D] (Uncond only
	// when Guidance ≠ 1).
	Source, Target, Uncond *nn.Tensor
	// Latents is the start point [1, C, h, w] of both branches; nil with a
	// Trajectory means Trajectory.Latent(0).
	Latents *nn.Tensor
	// Trajectory, if set, turns on Direct Inversion: after step k the
	// source branch is moved onto Trajectory.Latent(k+1).
	Trajectory Trajectory
	// Controller, if set, is installed as the UNet's attention hook.
	Controller *P2P
	// OnStep, if set, sees the latents [2, C, h, w] = [src, tgt] after
	// each step (after correction and blend).
	OnStep func(k, t int, x *nn.Tensor) error
}

// Edit denoises the source and target branches together and returns the
// final latents of each, [1, C, h, w]. Per step: UNet on the batch
// [uncond_src, uncond_tgt, cond_src, cond_tgt] (P2P edits the last two
// rows' attention), guidance, DDIM step of both branches, Direct
// Inversion correction of the source branch, local blend of the target.
// (The local blend runs after the correction, so the unmasked region of
// the target follows the exact inversion; PnP Inversion's code blends
// before correcting.)
func Edit(be nn.Backend, o EditOptions) (src, tgt *nn.Tensor, err error) {
	if o.UNet == nil || o.Source == nil || o.Target == nil {
		return nil, nil, fmt.Errorf("edit: missing UNet, scheduler or prompt embeddings")
	}
	if o.Source.Rank() != 3 || o.Source.Dim(0) != 1 || o.Target.Rank() != 3 || o.Target.Dim(0) != 1 {
		return nil, nil, fmt.Errorf("edit: prompt embeddings %v and %v, want [1, L, D] each", o.Source.Shape(), o.Target.Shape())
	}
	cfg := o.Guidance != 1
	if cfg && o.Uncond == nil {
		return nil, nil, fmt.Errorf("edit: guidance %v needs unconditional embeddings", o.Guidance)
	}
	start := o.Latents
	if o.Trajectory != nil {
		if o.Trajectory.Steps() != o.Steps {
			return nil, nil, fmt.Errorf("edit: the trajectory covers %d steps, the edit runs %d", o.Trajectory.Steps(), o.Steps)
		}
		if start == nil {
			start = o.Trajectory.Latent(0)
		}
	}
	if start == nil || start.Rank() != 4 || start.Dim(0) != 1 {
		return nil, nil, fmt.Errorf("edit: start latents %v, want [1, C, h, w]", editShapeOf(start))
	}
	var ctx *nn.Tensor
	if cfg {
		ctx = be.Concat(0, o.Uncond, o.Uncond, o.Source, o.Target)
	} else {
		ctx = be.Concat(0, o.Source, o.Target)
	}
	defer nn.Free(ctx)
	if o.Controller != nil {
		o.Controller.Begin(o.Steps, start.Dim(2), start.Dim(3))
	}
	x := be.Concat(0, start, start)
	run := pairRun{unet: o.UNet, sched: o.Scheduler, steps: o.Steps, guidance: o.Guidance, ctx: ctx}
	if c := o.Controller; c != nil {
		run.hook = c.Hook()
		run.before = func(k int) { c.SetStep(be, k) }
		run.check = c.Err
	}
	run.after = func(k, t int, x *nn.Tensor) (*nn.Tensor, error) {
		if o.Trajectory != nil {
			x = directInversionCorrect(be, x, o.Trajectory.Latent(k+1))
		}
		if o.Controller != nil {
			x = o.Controller.Blend(be, x)
			if err := o.Controller.Err(); err != nil {
				return x, err
			}
		}
		if o.OnStep != nil {
			return x, o.OnStep(k, t, x)
		}
		return x, nil
	}
	x, err = run.run(be, x)
	if err != nil {
		return nil, nil, err
	}
	vs, vt := nn.Narrow(x, 0, 1), nn.Narrow(x, 1, 1)
	src, tgt = be.Affine(vs, 1, 0), be.Affine(vt, 1, 0)
	nn.Free(vs, vt, x)
	if err := be.Err(); err != nil {
		nn.Free(src, tgt)
		return nil, nil, err
	}
	return src, tgt, nil
}

func editShapeOf(t *nn.Tensor) any {
	if t == nil {
		return "nil"
	}
	return t.Shape()
}

// directInversionCorrect adds z*_{t−1} − z^src_{t−1} to the source branch
// (row 0) of x [2, C, h, w] (PnP Inversion, Algorithm 1); it takes
// ownership of x.
func directInversionCorrect(be nn.Backend, x, z *nn.Tensor) *nn.Tensor {
	xs, xt := nn.Narrow(x, 0, 1), nn.Narrow(x, 1, 1)
	off := be.Binary(nn.Sub, z, xs)
	ns := be.Binary(nn.Add, xs, off)
	out := be.Concat(0, ns, xt)
	nn.Free(xs, xt, off, ns, x)
	return out
}

// pairRun is the shared denoising loop of a two-branch batch x [2, C, h, w]
// with DDIM and optional classifier-free guidance (ctx holds 4 rows then:
// [uncond_0, uncond_1, cond_0, cond_1]).
type pairRun struct {
	unet     *nn.UNet2DConditionModel
	sched    SchedulerConfig
	steps    int
	guidance float32
	ctx      *nn.Tensor
	hook     nn.AttentionHook
	before   func(k int)
	check    func() error
	after    func(k, t int, x *nn.Tensor) (*nn.Tensor, error)
}

func (r pairRun) run(be nn.Backend, x *nn.Tensor) (*nn.Tensor, error) {
	d, err := newEditDDIM(r.sched, r.steps)
	if err != nil {
		nn.Free(x)
		return nil, err
	}
	if r.hook != nil {
		prev := r.unet.AttentionHook
		r.unet.AttentionHook = r.hook
		defer func() { r.unet.AttentionHook = prev }()
	}
	cfg := r.ctx.Dim(0) == 4
	for k, t := range d.timesteps {
		if r.before != nil {
			r.before(k)
		}
		in := x
		if cfg {
			in = be.Concat(0, x, x)
		}
		eps, err := r.unet.Forward(be, in, []float32{float32(t)}, r.ctx)
		if in != x {
			nn.Free(in)
		}
		if err == nil && r.check != nil {
			err = r.check()
		}
		if err != nil {
			nn.Free(x, eps)
			return nil, err
		}
		if cfg {
			eu, ec := nn.Narrow(eps, 0, 2), nn.Narrow(eps, 2, 2)
			g := be.Axpby(1-r.guidance, eu, r.guidance, ec)
			nn.Free(eu, ec, eps)
			eps = g
		}
		nx := d.step(be, eps, t, x)
		nn.Free(eps, x)
		x = nx
		if r.after != nil {
			if x, err = r.after(k, t, x); err != nil {
				nn.Free(x)
				return nil, err
			}
		}
		if err := be.Err(); err != nil {
			nn.Free(x)
			return nil, err
		}
	}
	return x, nil
}
