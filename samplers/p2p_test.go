package samplers

import (
	"math"
	"math/rand"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
)

// Editing tests run the unet2dcond_tiny fixture (context dim 32) on 8×8
// latents with random prompt embeddings and a few DDIM steps.

func editUNet(t *testing.T, be nn.Backend) *nn.UNet2DConditionModel {
	t.Helper()
	u, err := nn.LoadUNet2DConditionModelDir(be, filepath.Join(golden.Dir(t), "unet2dcond_tiny"), nn.F32)
	require.NoError(t, err)
	t.Cleanup(u.Free)
	return u
}

// editScheduler is SD 1.x's DDIM config.
func editScheduler(t *testing.T) SchedulerConfig {
	t.Helper()
	f := false
	return SchedulerConfig{BetaSchedule: "scaled_linear", BetaStart: 0.00085, BetaEnd: 0.012, SetAlphaToOne: &f, ClipSample: &f, StepsOffset: 1}
}

func editRand(be nn.Backend, seed int64, shape ...int) *nn.Tensor {
	r := rand.New(rand.NewSource(seed))
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return be.Upload(shape, v)
}

func editMaxDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// editSampleRef is a plain one-branch CFG DDIM loop (the pipeline's, with
// the DDIM update written out), the reference for a free target branch.
func editSampleRef(t *testing.T, be nn.Backend, u *nn.UNet2DConditionModel, cfg SchedulerConfig, steps int, g float32, x, cond, uncond *nn.Tensor) []float32 {
	t.Helper()
	d, err := newEditDDIM(cfg, steps)
	require.NoError(t, err)
	cfg.Defaults()
	ac, err := cfg.AlphasCumprod()
	require.NoError(t, err)
	ctx := be.Concat(0, uncond, cond)
	defer nn.Free(ctx)
	x = be.Affine(x, 1, 0)
	for _, ts := range d.timesteps {
		in := be.Concat(0, x, x)
		eps, err := u.Forward(be, in, []float32{float32(ts)}, ctx)
		require.NoError(t, err)
		eu, ec := nn.Narrow(eps, 0, 1), nn.Narrow(eps, 1, 1)
		gd := be.Axpby(1-g, eu, g, ec)
		at, ap := float64(ac[ts]), float64(ac[0])
		if ts-1000/steps >= 0 {
			ap = float64(ac[ts-1000/steps])
		}
		x0 := be.Axpby(float32(1/math.Sqrt(at)), x, float32(-math.Sqrt(1-at)/math.Sqrt(at)), gd)
		nx := be.Axpby(float32(math.Sqrt(ap)), x0, float32(math.Sqrt(1-ap)), gd)
		nn.Free(x0)
		nn.Free(in, eps, eu, ec, gd, x)
		x = nx
	}
	v := read(t, be, x)
	nn.Free(x)
	return v
}

// TestDirectInversionIdentityEdit: target prompt = source prompt, every
// control off. The source branch must land on the source latent (Direct
// Inversion pins it to the inverted trajectory at every step), the target
// branch must be exactly a free CFG DDIM run from z*_T (no leakage between
// the batch rows), and a controller with all controls off must change
// nothing.
func TestDirectInversionIdentityEdit(t *testing.T) {
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		u := editUNet(t, be)
		d := editScheduler(t)
		const steps = 5
		x0 := editRand(be, 1, 1, 4, 8, 8)
		cond := editRand(be, 2, 1, 7, 32)
		uncond := editRand(be, 3, 1, 7, 32)
		defer nn.Free(x0, cond, uncond)
		tr, err := InvertTrajectory(be, x0, InvertOptions{UNet: u, Scheduler: d, Steps: steps, Prompt: cond})
		require.NoError(t, err)
		defer tr.Free()
		require.Equal(t, steps, tr.Steps())
		want := read(t, be, x0)
		requireClose(t, want, read(t, be, tr.Latent(steps)), 0, 0, "z*_0 is the source latent")

		var last [2][]float32
		for i, ctrl := range []bool{false, true} {
			o := EditOptions{UNet: u, Scheduler: d, Steps: steps, Guidance: 7.5, Source: cond, Target: cond, Uncond: uncond, Trajectory: tr}
			if ctrl {
				p, err := NewP2P(be, P2POptions{ContextLen: 7})
				require.NoError(t, err)
				defer p.Free()
				o.Controller = p
			}
			src, tgt, err := Edit(be, o)
			require.NoError(t, err)
			s, g := read(t, be, src), read(t, be, tgt)
			nn.Free(src, tgt)
			// The source branch reconstructs the source latent to float
			// rounding: its last correction lands on z*_0 = x0.
			errSrc := editMaxDiff(want, s)
			require.LessOrEqual(t, errSrc, 1e-6, "source branch vs source latent")
			if i == 0 {
				ref := editSampleRef(t, be, u, d, steps, 7.5, tr.Latent(0), cond, uncond)
				errRef := editMaxDiff(ref, g)
				require.LessOrEqual(t, errRef, 1e-4, "target branch vs a free DDIM run from z*_T")
				t.Logf("%s: |src−x0|max=%.3g |tgt−freeDDIM|max=%.3g |tgt−x0|max=%.3g (plain DDIM inversion error, not corrected)", be.Name(), errSrc, errRef, editMaxDiff(want, g))
				last = [2][]float32{s, g}
			} else {
				requireClose(t, last[0], s, 0, 0, "all-off controller: source")
				requireClose(t, last[1], g, 0, 0, "all-off controller: target")
			}
		}
	})
}

// TestP2PWordSwapCrossAttention: with a word swap the target's
// cross-attention maps of the swapped token equal the source's (read back
// through the controller's test hook), the UNet's target row really uses
// them (its attention output equals M_src·V_tgt), and a per-token replace
// fraction of 0 keeps the target's own maps for that token only.
func TestP2PWordSwapCrossAttention(t *testing.T) {
	srcTok := []int{49406, 320, 2368, 530, 49407}
	tgtTok := []int{49406, 320, 1929, 530, 49407}
	const swapped = 2
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		u := editUNet(t, be)
		d := editScheduler(t)
		x := editRand(be, 4, 1, 4, 8, 8)
		cs, ct, un := editRand(be, 5, 1, 7, 32), editRand(be, 6, 1, 7, 32), editRand(be, 7, 1, 7, 32)
		defer nn.Free(x, cs, ct, un)
		for _, keepSwapped := range []bool{false, true} {
			o := P2POptions{Mode: P2PReplace, ContextLen: 7, SourceTokens: srcTok, TargetTokens: tgtTok, CrossReplace: 1}
			if keepSwapped {
				o.TokenCrossReplace = map[int]float64{swapped: 0}
			}
			p, err := NewP2P(be, o)
			require.NoError(t, err)
			calls, outChecks := 0, 0
			ownDiff := 0.0
			p.inspect = func(name string, own, base, edited *nn.Tensor) {
				calls++
				ov, bv, ev := read(t, be, own), read(t, be, base), read(t, be, edited)
				lk := own.Dim(3)
				for i := range ev {
					j := i % lk
					want := bv[i]
					if keepSwapped && j == swapped {
						want = ov[i]
					}
					require.Equal(t, want, ev[i], "%s: token %d of map element %d", name, j, i)
					if j == swapped {
						ownDiff = math.Max(ownDiff, math.Abs(float64(ov[i]-bv[i])))
					}
				}
			}
			// Test-only wrapper: the target row of the attention output
			// must be AttentionApply(source maps, target values) when every
			// token is replaced.
			inner := p.Hook()
			hook := nn.AttentionHook(func(be nn.Backend, name string, q, k, v *nn.Tensor, heads int, scale float32) *nn.Tensor {
				out := inner(be, name, q, k, v, heads, scale)
				if out != nil && !keepSwapped && strings.HasSuffix(name, "attn2") {
					qs, ks, vt := nn.Narrow(q, 2, 1), nn.Narrow(k, 2, 1), nn.Narrow(v, 3, 1)
					ps := nn.AttentionProbs(be, qs, ks, heads, scale)
					want := nn.AttentionApply(be, ps, vt)
					got := nn.Narrow(out, 3, 1)
					requireClose(t, read(t, be, want), read(t, be, got), 1e-5, 1e-4, name+": target output = M_src·V_tgt")
					nn.Free(qs, ks, vt, ps, want, got)
					outChecks++
				}
				return out
			})
			run := pairRun{unet: u, sched: d, steps: 2, guidance: 7.5, ctx: be.Concat(0, un, un, cs, ct), hook: hook, before: func(k int) { p.SetStep(be, k) }, check: p.Err}
			p.Begin(2, 8, 8)
			out, err := run.run(be, be.Concat(0, x, x))
			require.NoError(t, err)
			nn.Free(out, run.ctx)
			p.Free()
			require.Positive(t, calls)
			require.Greater(t, ownDiff, 1e-3, "the swapped token's own maps differ from the source's")
			if !keepSwapped {
				require.Equal(t, calls, outChecks)
			}
			t.Logf("%s keepSwapped=%v: %d edited cross-attention calls, max |M_tgt−M_src| on the swapped token %.3g", be.Name(), keepSwapped, calls, ownDiff)
		}
	})
}

// editPair runs Edit from noise x (no inversion) and returns the final
// source and target latents.
func editPair(t *testing.T, be nn.Backend, u *nn.UNet2DConditionModel, d SchedulerConfig, steps int, x, cs, ct, un *nn.Tensor, o *P2POptions) ([]float32, []float32) {
	t.Helper()
	eo := EditOptions{UNet: u, Scheduler: d, Steps: steps, Guidance: 7.5, Source: cs, Target: ct, Uncond: un, Latents: x}
	if o != nil {
		p, err := NewP2P(be, *o)
		require.NoError(t, err)
		defer p.Free()
		eo.Controller = p
	}
	src, tgt, err := Edit(be, eo)
	require.NoError(t, err)
	s, g := read(t, be, src), read(t, be, tgt)
	nn.Free(src, tgt)
	return s, g
}

// TestP2PReweight: reweighting a token by 1 (which still routes the target
// through the explicit maps) leaves both branches as without a controller;
// by 0 it changes the target and leaves the source.
func TestP2PReweight(t *testing.T) {
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		u := editUNet(t, be)
		d := editScheduler(t)
		x := editRand(be, 8, 1, 4, 8, 8)
		cs, ct, un := editRand(be, 9, 1, 7, 32), editRand(be, 10, 1, 7, 32), editRand(be, 11, 1, 7, 32)
		defer nn.Free(x, cs, ct, un)
		const steps = 3
		s0, g0 := editPair(t, be, u, d, steps, x, cs, ct, un, nil)
		s1, g1 := editPair(t, be, u, d, steps, x, cs, ct, un, &P2POptions{ContextLen: 7, Reweight: map[int]float32{2: 1, 3: 1}})
		requireClose(t, s0, s1, 1e-5, 1e-5, "reweight 1: source")
		requireClose(t, g0, g1, 1e-5, 1e-4, "reweight 1: target")
		s2, g2 := editPair(t, be, u, d, steps, x, cs, ct, un, &P2POptions{ContextLen: 7, Reweight: map[int]float32{2: 0}})
		requireClose(t, s0, s2, 1e-5, 1e-5, "reweight 0: source untouched")
		diff := editMaxDiff(g0, g2)
		require.Greater(t, diff, 1e-3, "reweight 0 changes the target")
		t.Logf("%s: reweight 1 |Δtgt|max=%.3g, reweight 0 |Δtgt|max=%.3g", be.Name(), editMaxDiff(g0, g1), diff)
	})
}

// TestP2PSelfInjectionEqualPrompts: with equal prompts and a shared start
// the two branches are identical, so self-attention injection for every
// step (and cross-attention replacement with an identity swap) is a no-op.
func TestP2PSelfInjectionEqualPrompts(t *testing.T) {
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		u := editUNet(t, be)
		d := editScheduler(t)
		x := editRand(be, 12, 1, 4, 8, 8)
		c, un := editRand(be, 13, 1, 7, 32), editRand(be, 14, 1, 7, 32)
		defer nn.Free(x, c, un)
		const steps = 3
		s0, g0 := editPair(t, be, u, d, steps, x, c, c, un, nil)
		requireClose(t, s0, g0, 0, 0, "equal prompts: branches equal")
		tok := []int{49406, 320, 2368, 49407}
		s1, g1 := editPair(t, be, u, d, steps, x, c, c, un, &P2POptions{ContextLen: 7, SelfReplace: 1, Mode: P2PReplace, SourceTokens: tok, TargetTokens: tok, CrossReplace: 1})
		requireClose(t, s0, s1, 1e-5, 1e-5, "self injection: source")
		requireClose(t, g0, g1, 1e-5, 1e-4, "self injection: target")
		t.Logf("%s: self+cross injection 100%% |Δtgt|max=%.3g", be.Name(), editMaxDiff(g0, g1))
	})
}

// TestP2PLocalBlend: with Direct Inversion and a word swap, the local blend
// mask equals P2P's recipe recomputed in Go from the accumulated source-word
// maps (normalise by the maximum, threshold, 3×3 max pool), the target
// equals the source outside the mask and differs inside. The threshold is
// taken from a first run's normalised map so that exactly 3 pixels pass
// before dilation whatever the fixture's weights.
func TestP2PLocalBlend(t *testing.T) {
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		u := editUNet(t, be)
		d := editScheduler(t)
		const steps = 3
		x0 := editRand(be, 15, 1, 4, 8, 8)
		cs, ct, un := editRand(be, 16, 1, 7, 32), editRand(be, 17, 1, 7, 32), editRand(be, 18, 1, 7, 32)
		defer nn.Free(x0, cs, ct, un)
		tr, err := InvertTrajectory(be, x0, InvertOptions{UNet: u, Scheduler: d, Steps: steps, Prompt: cs})
		require.NoError(t, err)
		defer tr.Free()
		tok := []int{49406, 320, 2368, 530, 49407}
		tok2 := []int{49406, 320, 1929, 530, 49407}
		run := func(th float64, dil int) (s, g, mask, acc []float32) {
			p, err := NewP2P(be, P2POptions{Mode: P2PReplace, ContextLen: 7, SourceTokens: tok, TargetTokens: tok2, CrossReplace: 0.5, SelfReplace: 0.5,
				Blend: &LocalBlend{SourceWords: []int{2}, Res: 8, Threshold: th, Dilate: dil}})
			require.NoError(t, err)
			defer p.Free()
			src, tgt, err := Edit(be, EditOptions{UNet: u, Scheduler: d, Steps: steps, Guidance: 7.5, Source: cs, Target: ct, Uncond: un, Trajectory: tr, Controller: p})
			require.NoError(t, err)
			defer nn.Free(src, tgt)
			require.Equal(t, []int{1, 1, 8, 8}, p.lastMask.Shape())
			return read(t, be, src), read(t, be, tgt), read(t, be, p.lastMask), read(t, be, p.blendAcc)
		}
		_, _, _, acc := run(0.5, 0)
		norm := make([]float64, 64)
		mx := 0.0
		for i := range norm {
			mx = math.Max(mx, float64(acc[i]))
		}
		sorted := make([]float64, 64)
		for i := range norm {
			norm[i] = float64(acc[i]) / mx
			sorted[i] = norm[i]
		}
		sort.Float64s(sorted)
		th := (sorted[60] + sorted[61]) / 2 // 3 pixels pass: at most 27 after dilation
		s, g, mask, acc2 := run(th, 1)
		requireClose(t, acc[:64], acc2[:64], 0, 0, "source-word maps do not depend on the blend")
		ones, inDiff := 0, 0.0
		for y := 0; y < 8; y++ {
			for x := 0; x < 8; x++ {
				want := float32(0)
				for dy := -1; dy <= 1; dy++ {
					for dx := -1; dx <= 1; dx++ {
						if yy, xx := y+dy, x+dx; yy >= 0 && yy < 8 && xx >= 0 && xx < 8 && float32(norm[yy*8+xx]) > float32(th) {
							want = 1
						}
					}
				}
				i := y*8 + x
				require.Equal(t, want, mask[i], "mask at (%d,%d)", y, x)
				if want == 1 {
					ones++
				}
				for c := 0; c < 4; c++ {
					j := c*64 + i
					if want == 0 {
						require.Equal(t, s[j], g[j], "outside the mask the target is the source")
					} else {
						inDiff = math.Max(inDiff, math.Abs(float64(s[j]-g[j])))
					}
				}
			}
		}
		require.Greater(t, inDiff, 1e-3)
		require.GreaterOrEqual(t, ones, 3)
		require.LessOrEqual(t, ones, 27)
		requireClose(t, read(t, be, x0), s, 1e-6, 0, "source branch reconstructs")
		t.Logf("%s: threshold %.4f, mask covers %d/64 after dilation, max |tgt−src| inside %.3g", be.Name(), th, ones, inDiff)
	})
}

func TestP2PRefineMapper(t *testing.T) {
	for _, c := range []struct {
		src, tgt []int
		lk       int
		want     []int
	}{
		{[]int{1, 2, 3, 4}, []int{1, 2, 9, 3, 4}, 8, []int{0, 1, -1, 2, 3, 4, 5, 6}},
		{[]int{1, 2, 9, 3, 4}, []int{1, 2, 3, 4}, 7, []int{0, 1, 3, 4, 5, 6, -1}},
		{[]int{1, 5, 4}, []int{1, 6, 7, 4}, 5, []int{0, -1, -1, 2, 3}},
		{[]int{1, 4}, []int{1, 4}, 2, []int{0, 1}},
	} {
		require.Equal(t, c.want, RefineMapper(c.src, c.tgt, c.lk), "%v → %v", c.src, c.tgt)
	}
}

// TestP2PErrors: bad options and a UNet batch that does not match the
// controller's layout are errors.
func TestP2PErrors(t *testing.T) {
	be := nn.NewCPU()
	tok := []int{49406, 320, 2368, 49407}
	for _, c := range []struct {
		o    P2POptions
		want string
	}{
		{P2POptions{}, "context length 0"},
		{P2POptions{ContextLen: 7, CrossReplace: 1.5}, "CrossReplace fraction 1.5 outside [0, 1]"},
		{P2POptions{ContextLen: 7, SelfReplace: -0.1}, "SelfReplace fraction -0.1 outside [0, 1]"},
		{P2POptions{ContextLen: 7, SelfReplace: math.NaN()}, "outside [0, 1]"},
		{P2POptions{ContextLen: 7, Reweight: map[int]float32{7: 2}}, "Reweight token index 7 out of range [0, 7)"},
		{P2POptions{ContextLen: 7, Reweight: map[int]float32{-1: 2}}, "token index -1 out of range"},
		{P2POptions{ContextLen: 7, Mode: P2PReplace, SourceTokens: tok, TargetTokens: tok[:3]}, "equal token counts (have 4 and 3"},
		{P2POptions{ContextLen: 7, Mode: P2PReplace, SourceTokens: tok, TargetTokens: tok, TokenCrossReplace: map[int]float64{9: 1}}, "TokenCrossReplace token index 9"},
		{P2POptions{ContextLen: 7, Mode: P2PReplace, SourceTokens: tok, TargetTokens: tok, TokenCrossReplace: map[int]float64{1: 2}}, "TokenCrossReplace[1] fraction 2"},
		{P2POptions{ContextLen: 3, Mode: P2PRefine, SourceTokens: tok, TargetTokens: tok}, "more than the context length 3"},
		{P2POptions{ContextLen: 7, Blend: &LocalBlend{Res: 8, Threshold: 0.3}}, "at least one source or target word"},
		{P2POptions{ContextLen: 7, Blend: &LocalBlend{SourceWords: []int{8}, Res: 8, Threshold: 0.3}}, "LocalBlend token index 8"},
		{P2POptions{ContextLen: 7, Blend: &LocalBlend{SourceWords: []int{2}, Res: 8, Threshold: 1}}, "threshold 1 outside [0, 1)"},
		{P2POptions{ContextLen: 7, Blend: &LocalBlend{SourceWords: []int{2}, Res: 8, Start: 2}}, "Start fraction 2"},
		{P2POptions{ContextLen: 7, Mode: 9}, "unknown mode"},
	} {
		_, err := NewP2P(be, c.o)
		require.ErrorContains(t, err, c.want)
	}

	u := editUNet(t, be)
	d := editScheduler(t)
	x := editRand(be, 19, 1, 4, 8, 8)
	c := editRand(be, 20, 1, 7, 32)
	defer nn.Free(x, c)
	// A batch of 3 is neither [src, tgt] nor the CFG layout.
	p, err := NewP2P(be, P2POptions{ContextLen: 7, Reweight: map[int]float32{1: 2}})
	require.NoError(t, err)
	defer p.Free()
	p.Begin(1, 8, 8)
	p.SetStep(be, 0)
	u.AttentionHook = p.Hook()
	x3 := be.Concat(0, x, x, x)
	c3 := be.Concat(0, c, c, c)
	out, err := u.Forward(be, x3, []float32{10}, c3)
	u.AttentionHook = nil
	nn.Free(out, x3, c3)
	require.NoError(t, err)
	require.ErrorContains(t, p.Err(), "batch 3, want 4")
	// A controller built for 77 tokens fails on 7-token prompts.
	p77, err := NewP2P(be, P2POptions{ContextLen: 77, Reweight: map[int]float32{1: 2}})
	require.NoError(t, err)
	defer p77.Free()
	_, _, err = Edit(be, EditOptions{UNet: u, Scheduler: d, Steps: 2, Guidance: 1, Source: c, Target: c, Latents: x, Controller: p77})
	require.ErrorContains(t, err, "context length 7, the controller was built for 77")
	// A local blend at a resolution no layer has.
	pb, err := NewP2P(be, P2POptions{ContextLen: 7, Blend: &LocalBlend{SourceWords: []int{2}, Res: 2, Threshold: 0.3}})
	require.NoError(t, err)
	defer pb.Free()
	_, _, err = Edit(be, EditOptions{UNet: u, Scheduler: d, Steps: 2, Guidance: 1, Source: c, Target: c, Latents: x, Controller: pb})
	require.ErrorContains(t, err, "no cross-attention layer has 2-row maps")
	// Trajectory length must match the steps; guidance needs uncond.
	tr := &LatentTrajectory{Latents: []*nn.Tensor{x, x}}
	_, _, err = Edit(be, EditOptions{UNet: u, Scheduler: d, Steps: 2, Guidance: 1, Source: c, Target: c, Trajectory: tr})
	require.ErrorContains(t, err, "covers 1 steps, the edit runs 2")
	_, _, err = Edit(be, EditOptions{UNet: u, Scheduler: d, Steps: 2, Guidance: 7.5, Source: c, Target: c, Latents: x})
	require.ErrorContains(t, err, "needs unconditional embeddings")
}
