package pack

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
	"retrace/nn/golden"
)

// TestPackNumbers prints the tables of docs/PACK.md (slow; run with
// RETRACE_PACK_NUMBERS=1).
func TestPackNumbers(t *testing.T) {
	if os.Getenv("RETRACE_PACK_NUMBERS") == "" {
		t.Skip("set RETRACE_PACK_NUMBERS=1")
	}
	pols := []Policy{{Mode: "f16"}, {Mode: "q8"}, {Mode: "q4", Group: 32}, {Mode: "q4", Group: 64}, {Mode: "q4", Group: 128}, {Mode: "mixed", Group: 32}, {Mode: "mixed", Group: 64}}
	be := nn.NewCPU()
	for _, pol := range pols {
		row := fmt.Sprintf("| %s g%d |", pol.Mode, pol.Group)
		p, m := convertFixture(t, "unet2dcond_tiny", pol, 0)
		row += fmt.Sprintf(" %.4f (%d B) |", unetErr(t, be, p), m.Summarize().Total)

		p, m = convertFixture(t, "vae_tiny", pol, 0)
		_, io := golden.Open(t, "vae_tiny")
		vae, err := p.VAE(be)
		require.NoError(t, err)
		zs, z := golden.F32(t, io, "in.latent")
		dec, err := vae.Decode(be, be.Upload(zs, z))
		require.NoError(t, err)
		_, want := golden.F32(t, io, "out.decoded")
		got, _ := be.Read(dec)
		row += fmt.Sprintf(" %.4f (%d B) |", relL2(want, got), m.Summarize().Total)

		p, m = convertFixture(t, "clip_text_tiny", pol, 0)
		_, io = golden.Open(t, "clip_text_tiny")
		clip, err := p.TextEncoder(be)
		require.NoError(t, err)
		s, v := golden.Ints(t, io, "in.input_ids")
		ids := make([][]int, s[0])
		for i := range ids {
			for j := 0; j < s[1]; j++ {
				ids[i] = append(ids[i], int(v[i*s[1]+j]))
			}
		}
		out, err := clip.Forward(be, ids, false)
		require.NoError(t, err)
		_, want = golden.F32(t, io, "out.last_hidden_state")
		got, _ = be.Read(out.LastHiddenState)
		row += fmt.Sprintf(" %.4f (%d B) |", relL2(want, got), m.Summarize().Total)
		t.Log(row)
	}
}

// TestPackSD15Sizes prints pack sizes for the real SD-1.5 shapes (names and
// shapes from the loaders with synthetic weights; sizes from ExpectedBytes,
// exactly what Writer stores). Needs ~4 GB of memory: RETRACE_PACK_NUMBERS=1.
func TestPackSD15Sizes(t *testing.T) {
	if os.Getenv("RETRACE_PACK_NUMBERS") == "" {
		t.Skip("set RETRACE_PACK_NUMBERS=1")
	}
	type ent struct {
		name  string
		shape []int
	}
	record := func(load func(w *nn.Weights) func()) []ent {
		var es []ent
		be := nn.NewCPU()
		w := nn.NewSynthWeights(be, 1)
		synth := w.Synth
		w.Synth = func(name string, shape []int) []float32 {
			es = append(es, ent{name, append([]int(nil), shape...)})
			return synth(name, shape)
		}
		free := load(w)
		require.NoError(t, w.Err())
		free()
		return es
	}
	comps := map[string][]ent{
		"unet": record(func(w *nn.Weights) func() {
			m, err := nn.LoadUNet2DConditionModel(nn.SD15UNetConfig(), w)
			require.NoError(t, err)
			return m.Free
		}),
		"vae": record(func(w *nn.Weights) func() {
			m, err := nn.LoadAutoencoderKL(nn.SD15VAEConfig(), w)
			require.NoError(t, err)
			return m.Free
		}),
		"text_encoder": record(func(w *nn.Weights) func() {
			m, err := nn.LoadCLIPTextModel(nn.CLIPTextConfig{VocabSize: 49408, HiddenSize: 768, IntermediateSize: 3072,
				NumHiddenLayers: 12, NumAttentionHeads: 12, MaxPositionEmbeddings: 77, HiddenAct: "quick_gelu",
				LayerNormEps: 1e-5, BosTokenID: 49406, EosTokenID: 49407, PadTokenID: 1}, w)
			require.NoError(t, err)
			return m.Free
		}),
	}
	for _, pol := range []Policy{{Mode: "f32"}, {Mode: "f16"}, {Mode: "q8"}, {Mode: "q4", Group: 32}, {Mode: "q4", Group: 64}, {Mode: "q4", Group: 128}, {Mode: "mixed", Group: 64}, {Mode: "mixed", Group: 128}} {
		row := fmt.Sprintf("| %s g%d |", pol.Mode, pol.Group)
		var total int64
		for _, c := range []string{"unet", "vae", "text_encoder"} {
			var b, params int64
			for _, e := range comps[c] {
				f, g := pol.Choose(e.name, e.shape)
				n, _, err := ExpectedBytes(Tensor{Name: e.name, Shape: e.shape, Format: f, Group: g})
				require.NoError(t, err)
				b += (n + 63) / 64 * 64
				k := int64(1)
				for _, d := range e.shape {
					k *= int64(d)
				}
				params += k
			}
			total += b
			row += fmt.Sprintf(" %.1f |", float64(b)/1e6)
			if pol.Mode == "f32" {
				t.Logf("%s: %d tensors, %d parameters", c, len(comps[c]), params)
			}
		}
		t.Log(row + fmt.Sprintf(" %.1f |", float64(total)/1e6))
	}
	_ = filepath.Join
}
