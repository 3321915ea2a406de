package samplers

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
)

// roundTripSteps is the number of DDIM timesteps of the round-trip tests
// (kept small: every test runs the UNet on CPU adapters too).
const roundTripSteps = 10

// exactTol is the round-trip error an exact method must stay under (max
// abs, float32).
const exactTol = 1e-4

// exactSDConfig is Stable Diffusion 1.x's scheduler config.
func exactSDConfig() SchedulerConfig {
	f := false
	return SchedulerConfig{
		NumTrainTimesteps: 1000, BetaStart: 0.00085, BetaEnd: 0.012, BetaSchedule: "scaled_linear",
		ClipSample: &f, SetAlphaToOne: &f, StepsOffset: 1, PredictionType: "epsilon", TimestepSpacing: "leading",
	}
}

func exactRandn(rng *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64()) * scale
	}
	return v
}

// roundTripModel is an eps-model and an image latent to invert. edictTol
// is EDICT's round-trip bound: with CFG 7.5 on the untrained tiny UNet its
// coupled updates amplify float32 rounding to about 1e-4 (5e-5 … 1.6e-4
// over prompt seeds at 10 steps; 3e-5 on lavapipe), so it is checked at
// 3e-4 there; every other case at 1e-4.
type roundTripModel struct {
	name     string
	eps      EpsFunc
	edit     EpsFunc // another prompt (nil for the unconditional model)
	x0       *nn.Tensor
	edictTol float64
}

func roundTripModels(t *testing.T, be nn.Backend) []roundTripModel {
	rng := rand.New(rand.NewPCG(7, 11))
	un := loadExactUNet2D(t, be)
	// An image in [-1, 1) for the pixel-space UNet, unit-variance latents
	// (like SD's scaled VAE latents) for the conditional one.
	img := make([]float32, 3*16*16)
	for i := range img {
		img[i] = float32(rng.Float64()*2 - 1)
	}
	x0a := be.Upload([]int{1, 3, 16, 16}, img)
	cu, err := nn.LoadUNet2DConditionModelDir(be, filepath.Join(golden.Dir(t), "unet2dcond_tiny"), nn.F32)
	require.NoError(t, err)
	t.Cleanup(cu.Free)
	d := cu.Config.CrossAttentionDim.List[0]
	cond := be.Upload([]int{1, 7, d}, exactRandn(rng, 7*d, 1))
	uncond := be.Upload([]int{1, 7, d}, exactRandn(rng, 7*d, 1))
	other := be.Upload([]int{1, 7, d}, exactRandn(rng, 7*d, 1))
	x0b := be.Upload([]int{1, cu.Config.InChannels, 8, 8}, exactRandn(rng, cu.Config.InChannels*64, 1))
	t.Cleanup(func() { nn.Free(x0a, x0b, cond, uncond, other) })
	const g = 7.5
	return []roundTripModel{
		{name: "unet2d", eps: UNetEps(un), x0: x0a, edictTol: exactTol},
		{name: "unet2dcond_cfg7.5", eps: CondUNetEps(cu, cond, uncond, g), edit: CondUNetEps(cu, other, uncond, g), x0: x0b, edictTol: 3e-4},
	}
}

// ddimInversionRoundTrip inverts x0 with plain DDIM inversion (diffusers'
// DDIMInverseScheduler: ε evaluated at the current latent with the next,
// higher timestep) and samples back with DDIM; it is not exact.
func ddimInversionRoundTrip(be nn.Backend, eps EpsFunc, s *exactSchedule, x0 *nn.Tensor) (*nn.Tensor, error) {
	lv := s.levels(len(s.timesteps)) // descending, bottom last
	x := be.Affine(x0, 1, 0)
	for j := len(lv) - 1; j > 0; j-- {
		e, err := callExactEps(be, "ddim-inverse", eps, x, lv[j-1])
		if err != nil {
			nn.Free(x)
			return nil, err
		}
		cx, ce := s.ddimCoef(lv[j], lv[j-1])
		nx := be.Axpby(float32(cx), x, float32(ce), e)
		nn.Free(x, e)
		x = nx
	}
	for k := 0; k+1 < len(lv); k++ {
		e, err := callExactEps(be, "ddim", eps, x, lv[k])
		if err != nil {
			nn.Free(x)
			return nil, err
		}
		cx, ce := s.ddimCoef(lv[k], lv[k+1])
		nx := be.Axpby(float32(cx), x, float32(ce), e)
		nn.Free(x, e)
		x = nx
	}
	return x, be.Err()
}

// roundTripErr logs and returns max|got − x0|.
func roundTripErr(t *testing.T, be nn.Backend, m roundTripModel, method string, got *nn.Tensor) float64 {
	t.Helper()
	e := exactMaxDiff(read(t, be, m.x0), read(t, be, got))
	t.Logf("%s %s %s: max |reconstruction − x0| = %.3g", be.Name(), m.name, method, e)
	return e
}

// TestExactRoundTrip inverts and reconstructs with EDICT, BDIA (γ = 1) and
// edit-friendly DDPM on the unconditional tiny UNet and on the conditional
// one with CFG 7.5: the reconstruction must be within 1e-4 (max abs, see
// roundTripModel for EDICT with CFG) of x0 in float32. DDIM inversion's
// round-trip error is logged for comparison.
func TestExactRoundTrip(t *testing.T) {
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		cfg := exactSDConfig()
		for _, m := range roundTripModels(t, be) {
			t.Run(m.name, func(t *testing.T) {
				t.Run("edict", func(t *testing.T) {
					d, err := NewEDICT(cfg, roundTripSteps)
					require.NoError(t, err)
					x, y, err := d.Invert(be, m.eps, m.x0, 1)
					require.NoError(t, err)
					rx, ry, err := d.Reconstruct(be, m.eps, x, y, 1)
					require.NoError(t, err)
					require.LessOrEqual(t, roundTripErr(t, be, m, "edict", rx), m.edictTol)
					nn.Free(x, y, rx, ry)
				})
				t.Run("bdia", func(t *testing.T) {
					b, err := NewBDIA(cfg, roundTripSteps, 1)
					require.NoError(t, err)
					top, below, err := b.Invert(be, m.eps, m.x0, 1)
					require.NoError(t, err)
					r, err := b.Reconstruct(be, m.eps, top, below, 1)
					require.NoError(t, err)
					require.LessOrEqual(t, roundTripErr(t, be, m, "bdia γ=1", r), exactTol)
					nn.Free(top, below, r)
				})
				t.Run("ef_ddpm", func(t *testing.T) {
					// Exact with the computed last noise map (ExactZs); the
					// reference's zeroed z₀ leaves σ₁·|z₀|.
					f, err := NewEFDDPM(cfg, roundTripSteps)
					require.NoError(t, err)
					noise := EFDDPMNoise(be, m.x0.Shape(), roundTripSteps, NewNoise(35))
					inv, err := f.Invert(be, m.eps, m.x0, noise)
					nn.Free(noise...)
					require.NoError(t, err)
					defer inv.Free()
					zs := inv.ExactZs()
					defer nn.Free(zs...)
					r, err := f.Reverse(be, m.eps, inv.Xts[roundTripSteps], zs)
					require.NoError(t, err)
					require.LessOrEqual(t, roundTripErr(t, be, m, "ef-ddpm", r), exactTol)
					require.Equal(t, read(t, be, inv.Xts[0]), read(t, be, r), "the sampler must reproduce the inversion's x_0 bit for bit")
					nn.Free(r)
				})
				t.Run("ddim_inversion", func(t *testing.T) {
					s, err := newExactSchedule("ddim", cfg, roundTripSteps)
					require.NoError(t, err)
					r, err := ddimInversionRoundTrip(be, m.eps, s, m.x0)
					require.NoError(t, err)
					roundTripErr(t, be, m, "ddim inversion (not exact)", r)
					nn.Free(r)
				})
			})
		}
	})
}

// TestExactEdit reconstructs the inversions of the conditional model with
// another prompt: every method must move the result away from x0 (the
// edit path uses the new eps), and EF-DDPM edits may skip steps at the top.
func TestExactEdit(t *testing.T) {
	const steps = 4
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		cfg := exactSDConfig()
		m := roundTripModels(t, be)[1]
		want := read(t, be, m.x0)
		edited := func(method string, got *nn.Tensor) {
			t.Helper()
			e := exactMaxDiff(want, read(t, be, got))
			t.Logf("%s %s edit: max |edit − x0| = %.3g", be.Name(), method, e)
			require.Greater(t, e, 1e-2, "%s: an edit with another prompt must change the result", method)
		}
		d, err := NewEDICT(cfg, steps)
		require.NoError(t, err)
		x, y, err := d.Invert(be, m.eps, m.x0, 0.5)
		require.NoError(t, err)
		rx, ry, err := d.Reconstruct(be, m.edit, x, y, 0.5)
		require.NoError(t, err)
		edited("edict", rx)
		nn.Free(x, y, rx, ry)

		b, err := NewBDIA(cfg, steps, 1)
		require.NoError(t, err)
		top, below, err := b.Invert(be, m.eps, m.x0, 0.75)
		require.NoError(t, err)
		r, err := b.Reconstruct(be, m.edit, top, below, 0.75)
		require.NoError(t, err)
		edited("bdia", r)
		nn.Free(top, below, r)

		f, err := NewEFDDPM(cfg, steps)
		require.NoError(t, err)
		noise := EFDDPMNoise(be, m.x0.Shape(), steps, NewNoise(35))
		inv, err := f.Invert(be, m.eps, m.x0, noise)
		nn.Free(noise...)
		require.NoError(t, err)
		const skip = 1
		r, err = f.Reverse(be, m.edit, inv.Xts[steps-skip], inv.Zs[:steps-skip])
		require.NoError(t, err)
		edited("ef-ddpm", r)
		nn.Free(r)
		inv.Free()
	})
}
