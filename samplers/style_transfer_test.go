package samplers

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn"
)

// TestStyleSSPReduceLowFrequency compares z − λ·blur(z) with a Go loop
// (border-normalised box and Gaussian windows, odd shapes), and checks that
// a constant field c becomes (1−λ)·c and λ = 0 is the identity.
func TestStyleSSPReduceLowFrequency(t *testing.T) {
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		for _, c := range []struct {
			shape  []int
			lambda float32
			lp     LowPass
		}{
			{[]int{1, 4, 8, 8}, 1, LowPass{Radius: 1}},
			{[]int{2, 3, 5, 7}, 0.5, LowPass{Radius: 2}},
			{[]int{1, 4, 7, 3}, 0.7, LowPass{Radius: 2, Sigma: 1.2}},
			{[]int{1, 1, 1, 1}, 0.3, LowPass{Radius: 3}},
		} {
			n, ch, h, w := c.shape[0], c.shape[1], c.shape[2], c.shape[3]
			z := editRand(be, 21, c.shape...)
			zv := read(t, be, z)
			got, err := ReduceLowFrequency(be, z, c.lambda, c.lp)
			require.NoError(t, err)
			want := make([]float32, len(zv))
			r := c.lp.Radius
			for b := 0; b < n*ch; b++ {
				for y := 0; y < h; y++ {
					for x := 0; x < w; x++ {
						var s, m float64
						for dy := -r; dy <= r; dy++ {
							for dx := -r; dx <= r; dx++ {
								yy, xx := y+dy, x+dx
								if yy < 0 || yy >= h || xx < 0 || xx >= w {
									continue
								}
								wt := 1.0
								if c.lp.Sigma > 0 {
									wt = math.Exp(-float64(dy*dy+dx*dx) / (2 * c.lp.Sigma * c.lp.Sigma))
								}
								s += wt * float64(zv[(b*h+yy)*w+xx])
								m += wt
							}
						}
						i := (b*h+y)*w + x
						want[i] = float32(float64(zv[i]) - float64(c.lambda)*s/m)
					}
				}
			}
			requireClose(t, want, read(t, be, got), 1e-5, 1e-5, "low-frequency reduction")
			nn.Free(z, got)
		}
		k := be.Upload([]int{1, 2, 3, 3}, []float32{2, 2, 2, 2, 2, 2, 2, 2, 2, -1, -1, -1, -1, -1, -1, -1, -1, -1})
		got, err := ReduceLowFrequency(be, k, 0.25, LowPass{Radius: 1})
		require.NoError(t, err)
		requireClose(t, []float32{1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, -0.75, -0.75, -0.75, -0.75, -0.75, -0.75, -0.75, -0.75, -0.75}, read(t, be, got), 1e-6, 1e-6, "constant field")
		id, err := ReduceLowFrequency(be, k, 0, LowPass{Radius: 1})
		require.NoError(t, err)
		requireClose(t, read(t, be, k), read(t, be, id), 0, 0, "λ = 0")
		nn.Free(k, got, id)
	})
}

// TestStyleTransfer: with no injection and no start-point changes the
// stylised latent is a plain DDIM run (guidance 1) from the content's
// inverted start point; injecting the style's keys/values changes it, more
// with more steps injected; negative guidance with the prompt itself as
// the negative condition changes nothing, with another condition it moves
// the start point.
func TestStyleTransfer(t *testing.T) {
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		u := editUNet(t, be)
		cfg := editScheduler(t)
		const steps = 3
		content, style := editRand(be, 22, 1, 4, 8, 8), editRand(be, 23, 1, 4, 8, 8)
		prompt, neg := editRand(be, 24, 1, 7, 32), editRand(be, 25, 1, 7, 32)
		defer nn.Free(content, style, prompt, neg)
		o := StyleTransferOptions{UNet: u, Scheduler: cfg, Steps: steps, Prompt: prompt, Content: content, Style: style}
		runST := func(o StyleTransferOptions) []float32 {
			x, err := StyleTransfer(be, o)
			require.NoError(t, err)
			v := read(t, be, x)
			nn.Free(x)
			return v
		}
		plain := runST(o)
		tr, err := InvertTrajectory(be, content, InvertOptions{UNet: u, Scheduler: cfg, Steps: steps, Prompt: prompt})
		require.NoError(t, err)
		ref := editSampleRef(t, be, u, cfg, steps, 1, tr.Latent(0), prompt, prompt)
		requireClose(t, ref, plain, 1e-4, 1e-4, "no injection = DDIM from the content start point")

		o.InjectFraction = 1.0 / 3
		one := runST(o)
		o.InjectFraction = 1
		all := runST(o)
		d1, d3 := editMaxDiff(plain, one), editMaxDiff(plain, all)
		require.Greater(t, d1, 1e-3, "injection changes the output")
		require.Greater(t, d3, 1e-3)

		// StyleSSP start point.
		_, same, err := StyleSSPStart(be, content, InvertOptions{UNet: u, Scheduler: cfg, Steps: steps, Prompt: prompt, Negative: prompt, Guidance: 3}, 0, LowPass{})
		require.NoError(t, err)
		requireClose(t, read(t, be, tr.Latent(0)), read(t, be, same), 1e-4, 1e-4, "negative = prompt: no change")
		tn, moved, err := StyleSSPStart(be, content, InvertOptions{UNet: u, Scheduler: cfg, Steps: steps, Prompt: prompt, Negative: neg, Guidance: 3}, 0.5, LowPass{Radius: 1})
		require.NoError(t, err)
		dn := editMaxDiff(read(t, be, tr.Latent(0)), read(t, be, tn.Latent(0)))
		require.Greater(t, dn, 1e-3, "negative guidance moves the start point")
		low, err := ReduceLowFrequency(be, tn.Latent(0), 0.5, LowPass{Radius: 1})
		require.NoError(t, err)
		requireClose(t, read(t, be, low), read(t, be, moved), 0, 0, "start = reduced inverted latent")
		nn.Free(same, moved, low)
		tn.Free()
		tr.Free()
		t.Logf("%s: |Δ| from plain: inject 1/3 of steps %.3g, all steps %.3g; negative guidance moves z_T by %.3g", be.Name(), d1, d3, dn)
	})
}

func TestStyleTransferErrors(t *testing.T) {
	be := nn.NewCPU()
	z := editRand(be, 26, 1, 4, 8, 8)
	z3 := editRand(be, 27, 1, 4, 4, 4)
	defer nn.Free(z, z3)
	_, err := ReduceLowFrequency(be, z, 1, LowPass{Radius: -1})
	require.ErrorContains(t, err, "radius -1")
	_, err = ReduceLowFrequency(be, nn.Reshape(z, 4, 64), 1, LowPass{})
	require.ErrorContains(t, err, "want [N, C, H, W]")
	_, err = ReduceLowFrequency(be, z, float32(math.Inf(1)), LowPass{})
	require.ErrorContains(t, err, "factor +Inf")
	u := editUNet(t, be)
	o := StyleTransferOptions{UNet: u, Scheduler: editScheduler(t), Steps: 2, Prompt: editRand(be, 28, 1, 7, 32), Content: z, Style: z, InjectFraction: 1.5}
	_, err = StyleTransfer(be, o)
	require.ErrorContains(t, err, "InjectFraction 1.5 outside [0, 1]")
	o.InjectFraction, o.Style = 0.5, z3
	_, err = StyleTransfer(be, o)
	require.ErrorContains(t, err, "must be equal")
	o.Style, o.Steps = z, 0
	_, err = StyleTransfer(be, o)
	require.ErrorContains(t, err, "0 steps")
	nn.Free(o.Prompt)
}

// TestStyleTransferHook: in decoder self-attention, while active, the
// content row attends with its own queries over the style row's keys and
// values (τ scales the logits); other layers, later steps and the style
// row are untouched; a batch other than 2 is an error.
func TestStyleTransferHook(t *testing.T) {
	bothBackends(t, func(t *testing.T, be nn.Backend) {
		q, k, v := editRand(be, 30, 2, 9, 16), editRand(be, 31, 2, 9, 16), editRand(be, 32, 2, 9, 16)
		defer nn.Free(q, k, v)
		h := &styleHook{layers: "up_blocks.", tau: 1.5, steps: 4, frac: 0.5}
		const scale = 0.35
		out := h.hook(be, "up_blocks.1.attentions.0.transformer_blocks.0.attn1", q, k, v, 2, scale)
		require.NotNil(t, out)
		qs, ks, vs, qc := nn.Narrow(q, 0, 1), nn.Narrow(k, 0, 1), nn.Narrow(v, 0, 1), nn.Narrow(q, 1, 1)
		own := nn.AttentionExplicit(be, qs, ks, vs, 2, scale)
		inj := nn.AttentionExplicit(be, qc, ks, vs, 2, scale*1.5)
		want := append(read(t, be, own), read(t, be, inj)...)
		requireClose(t, want, read(t, be, out), 1e-5, 1e-4, "content row = softmax(τ·q_c·k_sᵀ·scale)·v_s")
		nn.Free(qs, ks, vs, qc, own, inj, out)
		for _, name := range []string{"down_blocks.0.attentions.0.transformer_blocks.0.attn1", "up_blocks.1.attentions.0.transformer_blocks.0.attn2"} {
			require.Nil(t, h.hook(be, name, q, k, v, 2, scale), name)
		}
		h.step = 2 // ⌊0.5·4⌋ = 2 steps injected: 0 and 1
		require.Nil(t, h.hook(be, "up_blocks.1.attentions.0.transformer_blocks.0.attn1", q, k, v, 2, scale))
		h.step = 0
		q0 := nn.Narrow(q, 0, 1)
		q3 := be.Concat(0, q, q0)
		require.Nil(t, h.hook(be, "up_blocks.1.attentions.0.transformer_blocks.0.attn1", q3, q3, q3, 2, scale))
		require.ErrorContains(t, h.err, "batch 3, want 2")
		nn.Free(q0, q3)
	})
}
