package pack

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
)

// The storage benchmark's synthetic source loads a model as a converted
// pack would: q4 weights stay quantized and the output is close to the
// same synthetic weights at f32 (checked on the tiny UNet config).
func TestBenchSynthSource(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(golden.Dir(t), "unet2dcond_tiny", "config.json"))
	require.NoError(t, err)
	var cfg nn.UNet2DConditionConfig
	require.NoError(t, json.Unmarshal(b, &cfg))
	be := nn.NewCPU()
	shapes := map[string][]int{}
	w := nn.NewSynthWeights(be, 1)
	synth := w.Synth
	w.Synth = func(name string, shape []int) []float32 {
		shapes[name] = append([]int(nil), shape...)
		return synth(name, shape)
	}
	ref, err := nn.LoadUNet2DConditionModel(cfg, w)
	require.NoError(t, err)
	defer ref.Free()
	src := synthSource{shapes: shapes, synth: synth, pol: Policy{Mode: "mixed", Group: 32}}
	_, ok, err := src.Quantized("down_blocks.0.resnets.0.conv1.weight")
	require.NoError(t, err)
	require.True(t, ok)
	qw := nn.NewWeights(be, src)
	qw.Storage = nn.F16
	m, err := nn.LoadUNet2DConditionModel(cfg, qw)
	require.NoError(t, err)
	defer m.Free()
	x := be.Upload([]int{1, 4, 8, 8}, benchInput(256))
	ctx := be.Upload([]int{1, 7, 32}, benchInput(7*32))
	run := func(u *nn.UNet2DConditionModel) []float32 {
		y, err := u.Forward(be, x, []float32{500}, ctx)
		require.NoError(t, err)
		v, err := be.Read(y)
		require.NoError(t, err)
		return v
	}
	e := relL2(run(ref), run(m))
	t.Logf("synthetic tiny UNet, mixed g32 vs f32: rel L2 %.4f", e)
	require.Greater(t, e, 1e-4)
	require.Less(t, e, 0.3)
}
