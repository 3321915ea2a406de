package samplers

import (
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
)

func TestSchedulerSpacing(t *testing.T) {
	for _, c := range []struct {
		spacing string
		n, off  int
		want    []int
	}{
		{"leading", 4, 1, []int{751, 501, 251, 1}},
		{"leading", 3, 0, []int{666, 333, 0}},
		{"trailing", 3, 0, []int{999, 666, 332}},
		{"trailing", 4, 0, []int{999, 749, 499, 249}},
		{"linspace", 4, 0, []int{999, 666, 333, 0}},
		{"linspace", 3, 0, []int{999, 500, 0}}, // 499.5 rounds half to even
		{"linspace", 1, 0, []int{0}},
	} {
		got, err := spacedTimesteps(c.spacing, 1000, c.n, c.off)
		require.NoError(t, err)
		require.Equal(t, c.want, got, "%s %d", c.spacing, c.n)
	}
	_, err := spacedTimesteps("karras", 1000, 4, 0)
	require.ErrorContains(t, err, `timestep_spacing "karras"`)
}

func TestSchedulerConfigParse(t *testing.T) {
	c, err := ParseSchedulerConfig([]byte(`{"_class_name": "DPMSolverMultistepScheduler", "lambda_min_clipped": -Infinity,
		"sigma_max": NaN, "prediction_type": "v_prediction", "note": "-Infinity NaN \"x\""}`))
	require.NoError(t, err)
	require.Less(t, *c.LambdaMinClipped, -1e300)
	require.Nil(t, c.SigmaMax)
	require.Equal(t, "v_prediction", c.PredictionType)
	_, err = ParseSchedulerConfig([]byte(`{"num_train_timesteps": "x"}`))
	require.Error(t, err)

	// Class defaults differ (diffusers __init__ signatures).
	for class, want := range map[string]struct {
		spacing  string
		alphaOne bool
	}{
		"DDIMScheduler": {"leading", true}, "PNDMScheduler": {"leading", false},
		"EulerDiscreteScheduler": {"linspace", true}, "DPMSolverMultistepScheduler": {"linspace", true},
	} {
		c := SchedulerConfig{ClassName: class}
		c.Defaults()
		require.Equal(t, want.spacing, c.TimestepSpacing, class)
		require.Equal(t, want.alphaOne, *c.SetAlphaToOne, class)
	}
}

func TestSchedulerBetaSchedules(t *testing.T) {
	c := SchedulerConfig{BetaSchedule: "squaredcos_cap_v2"}
	c.Defaults()
	ac, err := c.AlphasCumprod()
	require.NoError(t, err)
	require.InDelta(t, 1, ac[0], 1e-4)
	require.Less(t, ac[999], float32(1e-6))
	c.BetaSchedule = "sigmoid"
	_, err = c.AlphasCumprod()
	require.ErrorContains(t, err, `beta_schedule "sigmoid"`)
	c = SchedulerConfig{TrainedBetas: []float64{0.1, 0.2}, NumTrainTimesteps: 2}
	ac, err = c.AlphasCumprod()
	require.NoError(t, err)
	require.InDeltaSlice(t, []float32{0.9, 0.72}, ac, 1e-7)
	c = SchedulerConfig{BetaSchedule: "scaled_linear", BetaStart: 0.00085, BetaEnd: 0.012, RescaleBetasZeroSNR: true}
	c.Defaults()
	ac, err = c.AlphasCumprod()
	require.NoError(t, err)
	require.Equal(t, float32(0), ac[999], "zero terminal SNR")
}

func TestSchedulerErrors(t *testing.T) {
	bad := []struct {
		cfg  SchedulerConfig
		want string
	}{
		{SchedulerConfig{ClassName: "LMSDiscreteScheduler"}, "not supported"},
		{SchedulerConfig{ClassName: "DDIMScheduler", PredictionType: "x"}, `prediction_type "x"`},
		{SchedulerConfig{ClassName: "DDIMScheduler", Thresholding: true}, "thresholding"},
		{SchedulerConfig{ClassName: "DDPMScheduler", VarianceType: ptr("learned_range")}, "variance_type"},
		{SchedulerConfig{ClassName: "PNDMScheduler"}, "skip_prk_steps"},
		{SchedulerConfig{ClassName: "EulerDiscreteScheduler", UseKarrasSigmas: true}, "use_karras_sigmas"},
		{SchedulerConfig{ClassName: "DPMSolverMultistepScheduler", SolverOrder: 3}, "solver_order 3"},
		{SchedulerConfig{ClassName: "DPMSolverMultistepScheduler", AlgorithmType: "sde-dpmsolver++"}, "algorithm_type"},
	}
	for _, b := range bad {
		_, err := NewScheduler(b.cfg)
		require.ErrorContains(t, err, b.want, b.cfg.ClassName)
	}
	be := nn.NewCPU()
	x := be.Zeros([]int{1, 2, 4, 4})
	y := be.Zeros([]int{1, 2, 4, 5})
	defer nn.Free(x, y)
	for _, class := range []string{"DDIMScheduler", "DDIMInverseScheduler", "DDPMScheduler", "EulerDiscreteScheduler",
		"EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler", "PNDMScheduler"} {
		s, err := NewScheduler(SchedulerConfig{ClassName: class, SkipPRKSteps: true})
		require.NoError(t, err)
		_, err = s.Step(be, x, 0, x, x)
		require.ErrorContains(t, err, "before SetTimesteps", class)
		require.ErrorContains(t, s.SetTimesteps(0), "0 inference steps", class)
		require.ErrorContains(t, s.SetTimesteps(1001), "1001 inference steps", class)
		require.NoError(t, s.SetTimesteps(5))
		_, err = s.Step(be, x, len(s.Timesteps()), x, x)
		require.ErrorContains(t, err, "out of range", class)
		_, err = s.Step(be, y, 0, x, x)
		require.ErrorContains(t, err, "differ in shape", class)
		if s.NeedsNoise(0) {
			_, err = s.Step(be, x, 0, x, nil)
			require.ErrorContains(t, err, "needs a noise tensor", class)
		}
	}
	// Multistep solvers need their steps in order.
	for _, class := range []string{"DPMSolverMultistepScheduler", "PNDMScheduler"} {
		s, err := NewScheduler(SchedulerConfig{ClassName: class, SkipPRKSteps: true})
		require.NoError(t, err)
		require.NoError(t, s.SetTimesteps(5))
		out, err := s.Step(be, x, 0, x, nil)
		require.NoError(t, err)
		nn.Free(out)
		_, err = s.Step(be, x, 2, x, nil)
		require.ErrorContains(t, err, "in order", class)
	}
}

func ptr[T any](v T) *T { return &v }

func TestGuidance(t *testing.T) {
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		u := be.Upload([]int{1, 3}, []float32{1, 2, 3})
		c := be.Upload([]int{1, 3}, []float32{2, 2, 5})
		g := Guidance(be, u, c, 7.5)
		require.Equal(t, []float32{1 + 7.5, 2, 3 + 15}, read(t, be, g))
		both := be.Concat(0, u, c)
		gb, err := GuidanceBatch(be, both, 7.5)
		require.NoError(t, err)
		require.Equal(t, read(t, be, g), read(t, be, gb))
		_, err = GuidanceBatch(be, u, 2)
		require.ErrorContains(t, err, "even batch")
		nn.Free(u, c, g, both, gb)
	})
}
