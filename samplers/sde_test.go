package samplers

import (
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
)

// sdConfig is the fixture's DDIM run config (the SD-1.x schedule).
func sdConfig(t *testing.T) (string, SchedulerConfig) {
	dir, _, runs := schedulerRuns(t)
	for _, r := range runs {
		if r.Class == "DDIMScheduler" {
			c, err := ParseSchedulerConfig(r.Config)
			require.NoError(t, err)
			c.ClassName = r.Class
			return dir, c
		}
	}
	t.Fatal("no DDIMScheduler run in the schedulers fixture")
	return "", SchedulerConfig{}
}

func unetEps(t *testing.T, be nn.Backend, dir string) EpsModel {
	u, err := nn.LoadUNet2DModelDir(be, filepath.Join(dir, "../unet2d_tiny"), nn.F32)
	require.NoError(t, err)
	t.Cleanup(u.Free)
	return func(x *nn.Tensor, ts float32) (*nn.Tensor, error) { return u.Forward(be, x, []float32{ts}) }
}

// gaussEps is the exact ε for data ~ N(0, c²I): √(1−ᾱ)·x/(ᾱc² + 1 − ᾱ).
func gaussEps(be nn.Backend, ac []float32, c float64) EpsModel {
	return func(x *nn.Tensor, ts float32) (*nn.Tensor, error) {
		a := float64(ac[int(ts)])
		return be.Affine(x, float32(math.Sqrt(1-a)/(a*c*c+1-a)), 0), be.Err()
	}
}

func finite(t *testing.T, v []float32) {
	for i, x := range v {
		require.False(t, math.IsNaN(float64(x)) || math.IsInf(float64(x), 0), "element %d = %v", i, x)
	}
}

func ddimSample(t *testing.T, be nn.Backend, cfg SchedulerConfig, steps int, model EpsModel, x *nn.Tensor) *nn.Tensor {
	d, err := NewDDIM(cfg)
	require.NoError(t, err)
	require.NoError(t, d.SetTimesteps(steps))
	x = retain(x)
	for k, ts := range d.Timesteps() {
		eps, err := model(x, ts)
		require.NoError(t, err)
		nx, err := d.Step(be, eps, k, x, nil)
		require.NoError(t, err)
		nn.Free(eps, x)
		x = nx
	}
	return x
}

func relDiff(a, b []float32) float64 {
	var d, n float64
	for i := range a {
		d += (float64(a[i]) - float64(b[i])) * (float64(a[i]) - float64(b[i]))
		n += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(d / n)
}

// TestVPPredictorCorrectorUNet: fixed noise gives the same sample twice,
// the sample is finite, and the GPU agrees with the CPU loosely.
func TestVPPredictorCorrectorUNet(t *testing.T) {
	dir, cfg := sdConfig(t)
	var ref []float32
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		model := unetEps(t, be, dir)
		p, err := NewVPPredictorCorrector(cfg, 3)
		require.NoError(t, err)
		x := NewNoise(11).Tensor(be, 1, 3, 16, 16)
		defer nn.Free(x)
		a, err := p.Sample(be, model, x, NewNoise(12))
		require.NoError(t, err)
		b, err := p.Sample(be, model, x, NewNoise(12))
		require.NoError(t, err)
		av, bv := read(t, be, a), read(t, be, b)
		require.Equal(t, av, bv, "deterministic with fixed noise")
		finite(t, av)
		c, err := p.Sample(be, model, x, NewNoise(13))
		require.NoError(t, err)
		require.NotEqual(t, av, read(t, be, c), "other noise, other sample")
		if ref == nil {
			ref = av
		} else {
			requireClose(t, ref, av, 1e-3*max(1, maxAbs(ref)), 1e-3, "gpu vs cpu")
		}
		nn.Free(a, b, c)
	})
}

// TestVPPredictorCorrectorGaussian: for data N(0, c²) with the exact
// score, the samples have standard deviation ≈ c.
func TestVPPredictorCorrectorGaussian(t *testing.T) {
	_, cfg := sdConfig(t)
	be := nn.NewCPU()
	p, err := NewVPPredictorCorrector(cfg, 50)
	require.NoError(t, err)
	const c = 0.5
	x := NewNoise(1).Tensor(be, 1, 4, 64, 64)
	out, err := p.Sample(be, gaussEps(be, p.AlphasCumprod, c), x, NewNoise(2))
	require.NoError(t, err)
	v := read(t, be, out)
	var s2 float64
	for _, y := range v {
		s2 += float64(y) * float64(y)
	}
	std := math.Sqrt(s2 / float64(len(v)))
	t.Logf("sample std %.4f (data std %v)", std, c)
	require.InDelta(t, c, std, 0.05*c)
	nn.Free(x, out)
}

// TestPFODEHeunUNet: deterministic, finite, and with more steps it comes
// closer to DDIM (both converge to the probability-flow ODE's solution).
func TestPFODEHeunUNet(t *testing.T) {
	dir, cfg := sdConfig(t)
	be := nn.NewCPU()
	model := unetEps(t, be, dir)
	x := NewNoise(21).Tensor(be, 1, 3, 16, 16)
	defer nn.Free(x)
	var diffs []float64
	for _, n := range []int{3, 10} {
		h, err := NewPFODEHeun(cfg, n)
		require.NoError(t, err)
		a, err := h.Sample(be, model, x)
		require.NoError(t, err)
		av := read(t, be, a)
		finite(t, av)
		if n == 3 {
			b, err := h.Sample(be, model, x)
			require.NoError(t, err)
			require.Equal(t, av, read(t, be, b), "deterministic")
			nn.Free(b)
		}
		d := ddimSample(t, be, cfg, n, model, x)
		diffs = append(diffs, relDiff(av, read(t, be, d)))
		nn.Free(a, d)
	}
	t.Logf("‖heun − ddim‖/‖ddim‖: 3 steps %.4f, 10 steps %.4f", diffs[0], diffs[1])
	require.Less(t, diffs[1], diffs[0])
	require.Less(t, diffs[1], 0.1)
}

// TestPFODEHeunGaussian: against the exact ODE solution for Gaussian data
// (x̃ scales by √(c²+σ²)), Heun is second order and beats DDIM (Euler).
func TestPFODEHeunGaussian(t *testing.T) {
	_, cfg := sdConfig(t)
	be := nn.NewCPU()
	const c = 0.5
	x := NewNoise(3).Tensor(be, 1, 1, 8, 8)
	xv := read(t, be, x)
	var errs []float64
	for _, n := range []int{10, 20} {
		h, err := NewPFODEHeun(cfg, n)
		require.NoError(t, err)
		model := gaussEps(be, h.AlphasCumprod, c)
		a0 := float64(h.AlphasCumprod[h.IntTimesteps[0]])
		s0, sf := (1-a0)/a0, (1-h.Final)/h.Final
		k := math.Sqrt(h.Final) / math.Sqrt(a0) * math.Sqrt(c*c+sf) / math.Sqrt(c*c+s0)
		want := make([]float32, len(xv))
		for i, v := range xv {
			want[i] = float32(float64(v) * k)
		}
		got, err := h.Sample(be, model, x)
		require.NoError(t, err)
		d := ddimSample(t, be, cfg, n, model, x)
		eh, ed := relDiff(read(t, be, got), want), relDiff(read(t, be, d), want)
		t.Logf("%d steps: heun %.2e ddim %.2e", n, eh, ed)
		require.Less(t, eh, ed)
		errs = append(errs, eh)
		nn.Free(got, d)
	}
	require.Less(t, errs[1], errs[0]/3, "second order")
	nn.Free(x)
}

func TestScoreSDEBadInput(t *testing.T) {
	_, cfg := sdConfig(t)
	be := nn.NewCPU()
	_, err := NewVPPredictorCorrector(cfg, 0)
	require.ErrorContains(t, err, "0 inference steps")
	_, err = NewPFODEHeun(cfg, 5000)
	require.ErrorContains(t, err, "5000 inference steps")
	v := cfg
	v.PredictionType = "v_prediction"
	_, err = NewPFODEHeun(v, 5)
	require.ErrorContains(t, err, "prediction_type")

	p, err := NewVPPredictorCorrector(cfg, 2)
	require.NoError(t, err)
	h, err := NewPFODEHeun(cfg, 2)
	require.NoError(t, err)
	x := be.Zeros([]int{1, 3, 8, 8})
	model := gaussEps(be, p.AlphasCumprod, 1)
	_, err = p.Sample(be, model, nil, NewNoise(1))
	require.ErrorContains(t, err, "sample")
	_, err = h.Sample(be, nil, x)
	require.ErrorContains(t, err, "nil model")
	_, err = p.Sample(be, model, x, nil)
	require.ErrorContains(t, err, "noise generator")
	p.SNR = -1
	_, err = p.Sample(be, model, x, NewNoise(1))
	require.ErrorContains(t, err, "snr")
	p.SNR = 0.16
	boom := errors.New("boom")
	_, err = p.Sample(be, func(*nn.Tensor, float32) (*nn.Tensor, error) { return nil, boom }, x, NewNoise(1))
	require.ErrorIs(t, err, boom)
	wrong := func(*nn.Tensor, float32) (*nn.Tensor, error) { return be.Zeros([]int{1, 4, 8, 8}), nil }
	_, err = h.Sample(be, wrong, x)
	require.ErrorContains(t, err, "want shape")
	nn.Free(x)
}
