package pack

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"retrace/nn"
)

// Sensitivity methods (Policy.Sensitivity).
const (
	// SensMeasure quantizes one tensor at a time and runs the model on
	// the CPU reference: the relative L2 change of the model's output on
	// seeded calibration inputs.
	SensMeasure = "measure"
	// SensProxy is data-free: the relative L2 error of the weight itself,
	// ‖Q(W) − W‖ / ‖W‖.
	SensProxy = "proxy"
	// SensAuto measures components of at most MeasureMaxParams parameters
	// and uses the proxy for larger ones.
	SensAuto = "auto"
)

// MeasureMaxParams is the largest component SensAuto measures (one model
// reload and forward per tensor and format on the Go reference; the tiny
// fixtures take about a second, SD-1.5 would take days).
const MeasureMaxParams = 20_000_000

// Choice is a tensor's storage format and group.
type Choice struct {
	Format string `json:"format"`
	Group  int    `json:"group,omitempty"`
}

// Sensitivity is what quantizing one tensor alone costs and saves.
type Sensitivity struct {
	Component string
	Name      string
	Shape     []int
	Group     int // the q4 group
	// Err is the relative L2 change of the component's output (measured)
	// or of the weight (proxy) when only this tensor is stored q8 / q4.
	Err map[string]float64
	// Bytes is the stored size (padded to 64 bytes) per format.
	Bytes    map[string]int64
	Measured bool
}

// paddedBytes is a tensor's stored size rounded up to the 64-byte
// alignment of the shard stream.
func paddedBytes(name string, shape []int, c Choice) int64 {
	n, _, err := ExpectedBytes(Tensor{Name: name, Shape: shape, Format: c.Format, Group: c.Group})
	if err != nil {
		return math.MaxInt32
	}
	return (n + 63) / 64 * 64
}

// budgetCandidate reports the tensors the budget mode chooses bits for:
// every weight the quantized kernels read. Other tensors keep the fixed
// policy of the mixed mode (norms and biases f16, token embeddings q8).
func budgetCandidate(name string, shape []int) bool {
	return quantizable(name, shape) && !isEmbeddingTable(name, shape)
}

// choices returns the q4, q8 and f16 storage of a candidate.
func choices(shape []int, group int) map[string]Choice {
	n := 1
	for _, d := range shape[1:] {
		n *= d
	}
	return map[string]Choice{"q4": {"q4", group}, "q8": {"q8", n}, "f16": {"f16", 0}}
}

// quantDequant returns v stored as c and read back.
func quantDequant(shape []int, v []float32, c Choice) ([]float32, error) {
	dt := nn.Q8
	if c.Format == "q4" {
		dt = nn.Q4
	}
	q, err := nn.Quantize(dt, shape, v, c.Group)
	if err != nil {
		return nil, err
	}
	return q.Dequantize(), nil
}

func relL2(want, got []float32) float64 {
	var num, den float64
	for i := range want {
		d := float64(got[i]) - float64(want[i])
		num += d * d
		den += float64(want[i]) * float64(want[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// calibModel runs a component on fixed calibration inputs: load builds the
// model on the CPU reference from src, run returns its outputs (one slice
// per output whose change is measured; a tensor's sensitivity is the
// largest relative change over them).
type calibModel struct {
	run func(src nn.TensorSource) ([][]float32, error)
	// affects tells which outputs a tensor can change (nil: all).
	affects func(name string) []bool
}

func seeded(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// newCalibModel returns the calibration runner for a component config, or
// false for a class it cannot run.
//
// Calibration inputs (seeded, the same for every run): UNet — 2 samples
// N(0,1) of [in_channels, S, S] (S = sample_size, at most 16) at timesteps
// 250 and 750, encoder states N(0,1) of [8, cross_attention_dim]; VAE —
// decode of one N(0,1) latent [latent_channels, 8, 8] and encode of one
// N(0,1) image [in_channels, 8f, 8f] (a tensor of the encoder is judged by
// the moments, one of the decoder by the image); CLIP — one row of 77
// seeded token ids (BOS … EOS), output last_hidden_state.
func newCalibModel(cfg json.RawMessage) (*calibModel, bool) {
	var c struct {
		Class     string `json:"_class_name"`
		ModelType string `json:"model_type"`
	}
	json.Unmarshal(cfg, &c)
	be := nn.NewCPU()
	read := func(t *nn.Tensor, err error) ([]float32, error) {
		if err != nil {
			return nil, err
		}
		defer nn.Free(t)
		return be.Read(t)
	}
	switch {
	case c.Class == "UNet2DConditionModel":
		var uc nn.UNet2DConditionConfig
		if json.Unmarshal(cfg, &uc) != nil {
			return nil, false
		}
		f := 1 << max(len(uc.BlockOutChannels)-1, 0)
		s := min(max(uc.SampleSize, f), max(16, f))
		s = (s + f - 1) / f * f
		cross := 768
		if uc.CrossAttentionDim.Set && len(uc.CrossAttentionDim.List) > 0 {
			cross = uc.CrossAttentionDim.List[0]
		}
		x := seeded(1, 2*uc.InChannels*s*s)
		ctx := seeded(2, 2*8*cross)
		return &calibModel{run: func(src nn.TensorSource) ([][]float32, error) {
			m, err := nn.LoadUNet2DConditionModel(uc, nn.NewWeights(be, src))
			if err != nil {
				return nil, err
			}
			defer m.Free()
			xs, cs := be.Upload([]int{2, uc.InChannels, s, s}, x), be.Upload([]int{2, 8, cross}, ctx)
			defer nn.Free(xs, cs)
			y, err := read(m.Forward(be, xs, []float32{250, 750}, cs))
			return [][]float32{y}, err
		}}, true
	case c.Class == "UNet2DModel":
		var uc nn.UNet2DConfig
		if json.Unmarshal(cfg, &uc) != nil || uc.ClassEmbedType != nil || uc.NumClassEmbeds != nil {
			return nil, false
		}
		f := 1 << max(len(uc.BlockOutChannels)-1, 0)
		s := max(16, f)
		x := seeded(1, 2*uc.InChannels*s*s)
		return &calibModel{run: func(src nn.TensorSource) ([][]float32, error) {
			m, err := nn.LoadUNet2DModel(uc, nn.NewWeights(be, src))
			if err != nil {
				return nil, err
			}
			defer m.Free()
			xs := be.Upload([]int{2, uc.InChannels, s, s}, x)
			defer nn.Free(xs)
			y, err := read(m.Forward(be, xs, []float32{250, 750}))
			return [][]float32{y}, err
		}}, true
	case c.Class == "AutoencoderKL":
		var vc nn.AutoencoderKLConfig
		if json.Unmarshal(cfg, &vc) != nil {
			return nil, false
		}
		lc, ic := vc.LatentChannels, vc.InChannels
		if lc == 0 {
			lc = 4
		}
		if ic == 0 {
			ic = 3
		}
		f := 1 << max(len(vc.BlockOutChannels)-1, 0)
		z, img := seeded(3, lc*64), seeded(4, ic*64*f*f)
		return &calibModel{
			run: func(src nn.TensorSource) ([][]float32, error) {
				m, err := nn.LoadAutoencoderKL(vc, nn.NewWeights(be, src))
				if err != nil {
					return nil, err
				}
				defer m.Free()
				zs, xs := be.Upload([]int{1, lc, 8, 8}, z), be.Upload([]int{1, ic, 8 * f, 8 * f}, img)
				defer nn.Free(zs, xs)
				dec, err := read(m.Decode(be, zs))
				if err != nil {
					return nil, err
				}
				mom, err := read(m.EncodeMoments(be, xs))
				return [][]float32{dec, mom}, err
			},
			affects: func(name string) []bool {
				enc := strings.HasPrefix(name, "encoder.") || strings.HasPrefix(name, "quant_conv.")
				return []bool{!enc, enc}
			},
		}, true
	case c.ModelType == "clip_text_model":
		var tc nn.CLIPTextConfig
		if json.Unmarshal(cfg, &tc) != nil || tc.VocabSize < 3 {
			return nil, false
		}
		l := min(77, max(tc.MaxPositionEmbeddings, 2))
		r := rand.New(rand.NewPCG(5, 7))
		ids := make([]int, l)
		for i := range ids {
			ids[i] = r.IntN(tc.VocabSize)
		}
		ids[0], ids[l-1] = min(tc.BosTokenID, tc.VocabSize-1), min(tc.EosTokenID, tc.VocabSize-1)
		return &calibModel{run: func(src nn.TensorSource) ([][]float32, error) {
			m, err := nn.LoadCLIPTextModel(tc, nn.NewWeights(be, src))
			if err != nil {
				return nil, err
			}
			defer m.Free()
			out, err := m.Forward(be, [][]int{ids}, false)
			if err != nil {
				return nil, err
			}
			y, err := be.Read(out.LastHiddenState)
			nn.Free(out.LastHiddenState, out.Pooled)
			return [][]float32{y}, err
		}}, true
	}
	return nil, false
}

// overlay is a TensorSource with one tensor replaced.
type overlay struct {
	nn.MapSource
	name string
	v    []float32
}

func (o overlay) Float32(name string) ([]float32, error) {
	if name == o.name {
		return o.v, nil
	}
	return o.MapSource.Float32(name)
}

// MeasureSensitivity returns the sensitivity of every budget candidate of a
// component (config cfg, tensors src) at q4 with group and at q8 (one scale
// per output channel). method is SensMeasure, SensProxy or SensAuto; a
// component whose class cannot be run falls back to the proxy.
func MeasureSensitivity(component string, cfg json.RawMessage, src nn.TensorSource, group int, method string) ([]Sensitivity, error) {
	names := src.Names()
	sort.Strings(names)
	var params int64
	var cands []string
	for _, n := range names {
		shape, _ := src.Shape(n)
		k := int64(1)
		for _, d := range shape {
			k *= int64(d)
		}
		params += k
		if budgetCandidate(n, shape) {
			cands = append(cands, n)
		}
	}
	var cm *calibModel
	measure := method == SensMeasure || (method == SensAuto && params <= MeasureMaxParams)
	if method != SensMeasure && method != SensProxy && method != SensAuto {
		return nil, fmt.Errorf("pack: unknown sensitivity method %q (want %s, %s or %s)", method, SensAuto, SensMeasure, SensProxy)
	}
	var base nn.MapSource
	var ref [][]float32
	if measure {
		var ok bool
		if cm, ok = newCalibModel(cfg); ok {
			base = nn.MapSource{}
			for _, n := range names {
				shape, _ := src.Shape(n)
				v, err := src.Float32(n)
				if err != nil {
					return nil, fmt.Errorf("pack: %s/%s: %w", component, n, err)
				}
				base[n] = nn.MapTensor{Shape: shape, Data: v}
			}
			var err error
			if ref, err = cm.run(base); err != nil {
				cm = nil // a model the reference cannot run: proxy
			}
		}
	}
	out := make([]Sensitivity, 0, len(cands))
	for _, n := range cands {
		shape, _ := src.Shape(n)
		var v []float32
		if cm != nil {
			v = base[n].Data
		} else {
			var err error
			if v, err = src.Float32(n); err != nil {
				return nil, fmt.Errorf("pack: %s/%s: %w", component, n, err)
			}
		}
		s := Sensitivity{Component: component, Name: n, Shape: shape, Group: group, Err: map[string]float64{}, Bytes: map[string]int64{}, Measured: cm != nil}
		for f, c := range choices(shape, group) {
			s.Bytes[f] = paddedBytes(n, shape, c)
			if f == "f16" {
				continue
			}
			dq, err := quantDequant(shape, v, c)
			if err != nil {
				return nil, fmt.Errorf("pack: %s/%s: %w", component, n, err)
			}
			if cm == nil {
				s.Err[f] = relL2(v, dq)
				continue
			}
			got, err := cm.run(overlay{base, n, dq})
			if err != nil {
				return nil, fmt.Errorf("pack: %s/%s: calibration run: %w", component, n, err)
			}
			var aff []bool
			if cm.affects != nil {
				aff = cm.affects(n)
			}
			for i := range ref {
				if aff == nil || aff[i] {
					s.Err[f] = math.Max(s.Err[f], relL2(ref[i], got[i]))
				}
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// PlanStats describes a budget plan.
type PlanStats struct {
	Bytes   int64          // all tensors and files
	Fixed   int64          // bytes not chosen by the plan
	Count   map[string]int // candidates per format
	SumErr2 float64        // Σ err² of the chosen formats (the objective)
}

// PlanBudget chooses q4, q8 or f16 for every candidate so that fixed plus
// the candidates' bytes is at most budget, minimising Σ err² (squared
// relative output changes are taken as additive, as in HAWQ-V2): every
// candidate starts at q4, then the upgrade (q4→q8, q4→f16, q8→f16) with
// the largest drop of err² per extra byte that still fits is taken, until
// none fits. The plan maps component → tensor name → choice.
func PlanBudget(sens []Sensitivity, fixed, budget int64) (map[string]map[string]Choice, PlanStats, error) {
	order := []string{"q4", "q8", "f16"}
	errOf := func(s Sensitivity, f string) float64 { e := s.Err[f]; return e * e }
	level := make([]int, len(sens))
	used := fixed
	for _, s := range sens {
		used += s.Bytes["q4"]
	}
	if used > budget {
		return nil, PlanStats{}, fmt.Errorf("pack: budget %.3f MiB is below the smallest pack (%.3f MiB with every weight q4)",
			float64(budget)/(1<<20), float64(used)/(1<<20))
	}
	for {
		best, bestTo, bestRatio := -1, 0, -1.0
		for i, s := range sens {
			cur := order[level[i]]
			for to := level[i] + 1; to < len(order); to++ {
				extra := s.Bytes[order[to]] - s.Bytes[cur]
				if used+extra > budget {
					continue
				}
				gain := errOf(s, cur) - errOf(s, order[to])
				ratio := gain / float64(max(extra, 1))
				if gain > 0 && ratio > bestRatio {
					best, bestTo, bestRatio = i, to, ratio
				}
			}
		}
		if best < 0 {
			break
		}
		used += sens[best].Bytes[order[bestTo]] - sens[best].Bytes[order[level[best]]]
		level[best] = bestTo
	}
	plan := map[string]map[string]Choice{}
	st := PlanStats{Bytes: used, Fixed: fixed, Count: map[string]int{}}
	for i, s := range sens {
		f := order[level[i]]
		if plan[s.Component] == nil {
			plan[s.Component] = map[string]Choice{}
		}
		plan[s.Component][s.Name] = choices(s.Shape, s.Group)[f]
		st.Count[f]++
		st.SumErr2 += errOf(s, f)
	}
	return plan, st, nil
}
