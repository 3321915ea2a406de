package pack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"retrace/nn"
	"retrace/nn/safetensors"
)

// Policy chooses each tensor's storage format.
type Policy struct {
	// Mode is f32, f16, q8, q4 or mixed.
	Mode string
	// Group is the q4 group size (32, 64, 128; 0 means 64). q8 uses one
	// scale per output channel.
	Group int
	// BudgetBytes, when > 0, makes Convert choose q4/q8/f16 per weight by
	// sensitivity so the shard bytes fit (Plan); the other tensors are
	// stored as in the mixed mode.
	BudgetBytes int64
	// Sensitivity is the budget mode's method: SensAuto (default),
	// SensMeasure or SensProxy.
	Sensitivity string
	// Plan, when set, overrides the choice per component and tensor name.
	Plan map[string]map[string]Choice
}

// Modes lists the accepted Policy.Mode values.
var Modes = []string{"f32", "f16", "q8", "q4", "mixed"}

// keepF16 reports tensors the mixed policy keeps at f16: the first and last
// convolutions of each model (the UNet's and the VAE's conv_in/conv_out and
// the VAE's quant convs, which touch the latents and pixels directly).
func keepF16(name string) bool {
	for _, s := range []string{"conv_in.weight", "conv_out.weight", "quant_conv.weight"} {
		if name == s || strings.HasSuffix(name, "."+s) || strings.HasSuffix(name, "_"+s) {
			return true
		}
	}
	return false
}

// quantizable reports weights read only by Linear and Conv2d (the ops with
// quantized kernels): rank-2 or rank-4 ".weight" tensors other than
// embedding tables.
func quantizable(name string, shape []int) bool {
	return (len(shape) == 2 || len(shape) == 4) && strings.HasSuffix(name, ".weight") && !strings.Contains(name, "embeddings.") && name != "embedding.weight"
}

// isEmbeddingTable reports a token-embedding table ([vocab, dim] weight of
// an "embeddings." module other than the position table, which stays f16).
func isEmbeddingTable(name string, shape []int) bool {
	return len(shape) == 2 && strings.Contains(name, "token_embedding.weight")
}

// Choose returns the format ("f32", "f16", "q8", "q4") and group of a
// tensor. Norms, biases and position embeddings are f16 in every mode but
// f32; token-embedding tables are q8 in the q8, q4 and mixed modes.
func (p Policy) Choose(name string, shape []int) (string, int) {
	g := p.Group
	if g == 0 {
		g = 64
	}
	switch {
	case p.Mode == "f32":
		return "f32", 0
	case p.Mode != "f16" && isEmbeddingTable(name, shape):
		// Token embeddings are gathered row by row: q8 with one scale per
		// row (the CLIP table is 49408×768, 76 MB at f16, 38 MB at q8).
		return "q8", shape[1]
	case p.Mode == "f16" || !quantizable(name, shape):
		return "f16", 0
	case p.Mode == "q8": // one scale per output channel
		n := 1
		for _, d := range shape[1:] {
			n *= d
		}
		return "q8", n
	case p.Mode == "q4":
		return "q4", g
	case keepF16(name): // mixed
		return "f16", 0
	}
	return "q4", g
}

// Progress is called after each tensor is written.
type Progress func(component, name string, done, total int, bytes int64)

// WriteComponent converts every tensor of src into w as component,
// quantizing by pol.
func WriteComponent(w *Writer, component string, src nn.TensorSource, pol Policy, progress Progress) error {
	if !validMode(pol.Mode) {
		return fmt.Errorf("pack: unknown quantization %q (want one of %v)", pol.Mode, Modes)
	}
	names := src.Names()
	sort.Strings(names)
	for i, name := range names {
		shape, _ := src.Shape(name)
		if len(shape) == 0 {
			shape = []int{1}
		}
		format, group := pol.Choose(name, shape)
		if c, ok := pol.Plan[component][name]; ok {
			format, group = c.Format, c.Group
		}
		var err error
		switch format {
		case "f16":
			bits, ok, e := src.Float16Bits(name)
			if e == nil && !ok {
				var v []float32
				v, e = src.Float32(name)
				bits = make([]uint16, len(v))
				for j, x := range v {
					bits[j] = nn.Float16(x)
				}
			}
			if err = e; err == nil {
				err = w.AddF16(component, name, shape, bits)
			}
		default:
			var v []float32
			if v, err = src.Float32(name); err != nil {
				break
			}
			if format == "f32" {
				err = w.AddF32(component, name, shape, v)
				break
			}
			dt := nn.Q8
			if format == "q4" {
				dt = nn.Q4
			}
			var q *nn.QuantTensor
			if q, err = nn.Quantize(dt, shape, v, group); err == nil {
				err = w.AddQuant(component, name, q)
			}
		}
		if err != nil {
			return fmt.Errorf("pack: %s/%s: %w", component, name, err)
		}
		if progress != nil {
			progress(component, name, i+1, len(names), w.Bytes())
		}
	}
	return nil
}

func validMode(m string) bool {
	for _, x := range Modes {
		if x == m {
			return true
		}
	}
	return false
}

// componentName maps a config's class to the pack's component name.
func componentName(cfg []byte) string {
	var c struct {
		Class     string `json:"_class_name"`
		ModelType string `json:"model_type"`
	}
	json.Unmarshal(cfg, &c)
	switch {
	case c.Class == "UNet2DConditionModel":
		return "unet"
	case c.Class == "AutoencoderKL":
		return "vae"
	case c.ModelType == "clip_text_model":
		return "text_encoder"
	case c.Class == "UNet2DModel":
		return "unet"
	}
	return "model"
}

var weightFiles = []string{"diffusion_pytorch_model.safetensors", "model.safetensors", "weights.safetensors",
	"diffusion_pytorch_model.fp16.safetensors", "model.fp16.safetensors"}

// openComponent opens a component folder (config.json + safetensors).
func openComponent(dir string) (json.RawMessage, nn.TensorSource, func(), error) {
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, nil, nil, err
	}
	for _, n := range weightFiles {
		if !exists(filepath.Join(dir, n)) {
			continue
		}
		f, err := safetensors.Open(filepath.Join(dir, n))
		if err != nil {
			return nil, nil, nil, err
		}
		return cfg, nn.SafetensorsSource{Files: []*safetensors.File{f}}, func() { f.Close() }, nil
	}
	return nil, nil, nil, fmt.Errorf("%s: no safetensors weights (looked for %v)", dir, weightFiles)
}

// source is one component of a conversion input.
type source struct {
	component string
	cfg       json.RawMessage
	open      func() (nn.TensorSource, func(), error)
}

// inputs lists the components of in (see Convert) and the extra files of a
// pipeline folder (tokenizer/…, scheduler config).
func inputs(in string) (srcs []source, files map[string][]byte, scheduler json.RawMessage, err error) {
	st, err := os.Stat(in)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pack: %w", err)
	}
	dirSource := func(component, dir string) (source, error) {
		cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
		if err != nil {
			return source{}, fmt.Errorf("pack: %s: %w", component, err)
		}
		if component == "" {
			component = componentName(cfg)
		}
		return source{component, cfg, func() (nn.TensorSource, func(), error) {
			_, src, closer, err := openComponent(dir)
			if err != nil {
				err = fmt.Errorf("pack: %s: %w", component, err)
			}
			return src, closer, err
		}}, nil
	}
	switch {
	case !st.IsDir():
		cfg, _ := os.ReadFile(filepath.Join(filepath.Dir(in), "config.json"))
		srcs = append(srcs, source{"model", cfg, func() (nn.TensorSource, func(), error) {
			f, err := safetensors.Open(in)
			if err != nil {
				return nil, nil, err
			}
			return nn.SafetensorsSource{Files: []*safetensors.File{f}}, func() { f.Close() }, nil
		}})
	case exists(filepath.Join(in, "model_index.json")):
		for _, c := range []string{"text_encoder", "unet", "vae"} {
			if c == "vae" && !exists(filepath.Join(in, c)) {
				continue // pixel-space pipelines have no VAE
			}
			s, err := dirSource(c, filepath.Join(in, c))
			if err != nil {
				return nil, nil, nil, err
			}
			srcs = append(srcs, s)
		}
		// retrace's own optional component: the Safe-SD-style watermark's
		// injector and detector (tools/train/safesd.py), beside the
		// diffusers ones (diffusers ignores folders model_index.json does
		// not list).
		if exists(filepath.Join(in, "safesd")) {
			s, err := dirSource("safesd", filepath.Join(in, "safesd"))
			if err != nil {
				return nil, nil, nil, err
			}
			srcs = append(srcs, s)
		}
		if scheduler, err = os.ReadFile(filepath.Join(in, "scheduler", "scheduler_config.json")); err != nil {
			return nil, nil, nil, fmt.Errorf("pack: scheduler: %w", err)
		}
		ents, err := os.ReadDir(filepath.Join(in, "tokenizer"))
		if err != nil && exists(filepath.Join(in, "tokenizer")) {
			return nil, nil, nil, fmt.Errorf("pack: tokenizer: %w", err)
		}
		// (no tokenizer: a class-prompt text encoder needs none)
		files = map[string][]byte{}
		for _, e := range ents {
			if e.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(in, "tokenizer", e.Name()))
			if err != nil {
				return nil, nil, nil, err
			}
			files["tokenizer/"+e.Name()] = b
		}
	default:
		s, err := dirSource("", in)
		if err != nil {
			return nil, nil, nil, err
		}
		srcs = append(srcs, s)
	}
	return srcs, files, scheduler, nil
}

// Convert writes a pack to out from in: a diffusers pipeline folder
// (model_index.json: unet, vae, text_encoder, tokenizer, scheduler), one
// model folder (config.json + safetensors) or one .safetensors file
// (component "model", config.json beside it if present). With
// pol.BudgetBytes set and no pol.Plan, it plans the bits first (Plan).
func Convert(in, out string, pol Policy, shardBytes int64, progress Progress) (*Manifest, error) {
	if pol.BudgetBytes > 0 {
		pol.Mode = "mixed" // what Plan counts for the tensors it does not choose
	}
	if !validMode(pol.Mode) {
		return nil, fmt.Errorf("pack: unknown quantization %q (want one of %v)", pol.Mode, Modes)
	}
	srcs, files, scheduler, err := inputs(in)
	if err != nil {
		return nil, err
	}
	if pol.BudgetBytes > 0 && pol.Plan == nil {
		if pol.Plan, _, _, err = Plan(in, pol); err != nil {
			return nil, err
		}
	}
	w, err := Create(out, shardBytes)
	if err != nil {
		return nil, err
	}
	for _, s := range srcs {
		src, closer, err := s.open()
		if err != nil {
			return nil, err
		}
		if len(s.cfg) > 0 {
			w.SetConfig(s.component, s.cfg)
		}
		err = WriteComponent(w, s.component, src, pol, progress)
		closer()
		if err != nil {
			return nil, err
		}
	}
	if scheduler != nil {
		w.SetConfig("scheduler", scheduler)
	}
	fnames := make([]string, 0, len(files))
	for n := range files {
		fnames = append(fnames, n)
	}
	sort.Strings(fnames)
	for _, n := range fnames {
		if err := w.AddFile(n, files[n]); err != nil {
			return nil, err
		}
	}
	return w.Close()
}

// Plan measures the sensitivity of every weight of in (pol.Sensitivity,
// default SensAuto; q4 at pol.Group) and chooses q4/q8/f16 per weight so the
// pack's shard bytes fit pol.BudgetBytes (PlanBudget). Other tensors are
// stored as in the mixed mode.
func Plan(in string, pol Policy) (map[string]map[string]Choice, []Sensitivity, PlanStats, error) {
	srcs, files, _, err := inputs(in)
	if err != nil {
		return nil, nil, PlanStats{}, err
	}
	g := pol.Group
	if g == 0 {
		g = 64
	}
	method := pol.Sensitivity
	if method == "" {
		method = SensAuto
	}
	fixedPol := Policy{Mode: "mixed", Group: g}
	var fixed int64
	for _, b := range files {
		fixed += (int64(len(b)) + 63) / 64 * 64
	}
	var sens []Sensitivity
	for _, s := range srcs {
		src, closer, err := s.open()
		if err != nil {
			return nil, nil, PlanStats{}, err
		}
		for _, n := range src.Names() {
			shape, _ := src.Shape(n)
			if len(shape) == 0 {
				shape = []int{1}
			}
			if !budgetCandidate(n, shape) {
				f, gr := fixedPol.Choose(n, shape)
				fixed += paddedBytes(n, shape, Choice{f, gr})
			}
		}
		ss, err := MeasureSensitivity(s.component, s.cfg, src, g, method)
		closer()
		if err != nil {
			return nil, nil, PlanStats{}, err
		}
		sens = append(sens, ss...)
	}
	plan, st, err := PlanBudget(sens, fixed, pol.BudgetBytes)
	return plan, sens, st, err
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// Summary counts a manifest's tensors and bytes per component and format.
type Summary struct {
	Components map[string]map[string]FormatCount `json:"components"`
	Files      int64                             `json:"file_bytes"`
	Total      int64                             `json:"total_bytes"`
	Shards     int                               `json:"shards"`
}

// FormatCount is the number and stored bytes of tensors of one format.
type FormatCount struct {
	Tensors int   `json:"tensors"`
	Bytes   int64 `json:"bytes"`
}

// Summarize returns the per-component, per-format byte counts.
func (m *Manifest) Summarize() Summary {
	s := Summary{Components: map[string]map[string]FormatCount{}, Shards: len(m.Shards)}
	for cn, c := range m.Components {
		fc := map[string]FormatCount{}
		for _, t := range c.Tensors {
			x := fc[t.Format]
			x.Tensors++
			x.Bytes += t.Bytes
			fc[t.Format] = x
		}
		s.Components[cn] = fc
	}
	for _, r := range m.Files {
		s.Files += r.Bytes
	}
	for _, sh := range m.Shards {
		s.Total += sh.Bytes
	}
	return s
}
