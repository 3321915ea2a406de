package nn

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// TensorSource provides named tensors (a safetensors file, a pack, a map).
type TensorSource interface {
	// Names lists every tensor name.
	Names() []string
	// Shape returns a tensor's shape, or false if it does not exist.
	Shape(name string) ([]int, bool)
	// Float32 returns a tensor's values converted to float32.
	Float32(name string) ([]float32, error)
	// Float16Bits returns a tensor stored as F16 without conversion, or
	// false if it is stored otherwise.
	Float16Bits(name string) ([]uint16, bool, error)
}

// MapSource is an in-memory TensorSource.
type MapSource map[string]MapTensor

// MapTensor is one tensor of a MapSource.
type MapTensor struct {
	Shape []int
	Data  []float32
}

// Names implements TensorSource.
func (m MapSource) Names() []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Shape implements TensorSource.
func (m MapSource) Shape(name string) ([]int, bool) {
	t, ok := m[name]
	return t.Shape, ok
}

// Float32 implements TensorSource.
func (m MapSource) Float32(name string) ([]float32, error) {
	t, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %q", name)
	}
	return t.Data, nil
}

// Float16Bits implements TensorSource.
func (m MapSource) Float16Bits(name string) ([]uint16, bool, error) { return nil, false, nil }

// Weights loads a model's parameters from a source onto a backend by
// diffusers name, checking each shape, and reports keys the model did not
// use. Errors are sticky and name the key.
type Weights struct {
	be  Backend
	src TensorSource
	// Storage is the dtype of matrix and convolution weights on the
	// backend (F32 or F16); norms, biases and embeddings stay F32.
	Storage DType
	// Ignore lists names (exact, or prefixes ending in '.') that may be
	// present without being used, e.g. CLIP's position_ids buffer.
	Ignore []string
	// Aliases maps a name the model asks for to alternatives tried in
	// order (legacy checkpoint names).
	Aliases func(name string) []string

	// Synth, when set and src is nil, makes up every parameter the model
	// asks for (benchmarks at real model sizes without a checkpoint).
	Synth func(name string, shape []int) []float32

	taken  map[string]bool
	loaded []*Tensor
	err    error
}

// NewWeights reads parameters from src onto be.
func NewWeights(be Backend, src TensorSource) *Weights {
	return &Weights{be: be, src: src, taken: map[string]bool{}}
}

// Err returns the first loading error.
func (w *Weights) Err() error { return w.err }

func (w *Weights) fail(format string, a ...any) {
	if w.err == nil {
		w.err = fmt.Errorf(format, a...)
	}
}

// resolve finds the stored name for name (trying aliases).
func (w *Weights) resolve(name string) (string, []int, bool) {
	if w.src == nil {
		return name, nil, w.Synth != nil
	}
	if s, ok := w.src.Shape(name); ok {
		return name, s, true
	}
	if w.Aliases != nil {
		for _, a := range w.Aliases(name) {
			if s, ok := w.src.Shape(a); ok {
				return a, s, true
			}
		}
	}
	return "", nil, false
}

// Has reports whether name (or an alias) exists.
func (w *Weights) Has(name string) bool {
	_, _, ok := w.resolve(name)
	return ok
}

// Tensor loads name, which must have the given shape. Matrices and
// convolution kernels (rank ≥ 2) are stored as w.Storage.
func (w *Weights) Tensor(name string, shape ...int) *Tensor {
	if w.err != nil {
		return nil
	}
	stored, s, ok := w.resolve(name)
	if !ok {
		w.fail("weights: missing key %q (shape %v)", name, shape)
		return nil
	}
	if w.src == nil {
		return w.synth(stored, shape)
	}
	if !sameShape(s, shape) {
		w.fail("weights: key %q has shape %v, the model expects %v", stored, s, shape)
		return nil
	}
	w.taken[stored] = true
	if t, done := w.quantized(stored); done { // packs: quant.go
		return t
	}
	var t *Tensor
	if w.Storage == F16 && len(shape) >= 2 {
		bits, isF16, err := w.src.Float16Bits(stored)
		if err != nil {
			w.fail("weights: reading %q: %v", stored, err)
			return nil
		}
		if !isF16 {
			v, err := w.src.Float32(stored)
			if err != nil {
				w.fail("weights: reading %q: %v", stored, err)
				return nil
			}
			bits = make([]uint16, len(v))
			for i, x := range v {
				bits[i] = Float16(x)
			}
		}
		t = w.be.UploadF16(shape, bits)
	} else {
		v, err := w.src.Float32(stored)
		if err != nil {
			w.fail("weights: reading %q: %v", stored, err)
			return nil
		}
		t = w.be.Upload(shape, v)
	}
	if t == nil {
		w.fail("weights: uploading %q: %v", stored, w.be.Err())
		return nil
	}
	w.loaded = append(w.loaded, t)
	return t
}

// Optional loads name if it exists, else returns nil without error.
func (w *Weights) Optional(name string, shape ...int) *Tensor {
	if !w.Has(name) {
		return nil
	}
	return w.Tensor(name, shape...)
}

// Finish reports an error for every stored key the model did not use (an
// unknown key means the checkpoint and the config disagree; silently
// ignoring weights produces wrong images).
func (w *Weights) Finish() error {
	if w.err != nil {
		return w.err
	}
	if w.src == nil {
		return nil
	}
	var unknown []string
	for _, n := range w.src.Names() {
		if w.taken[n] || w.ignored(n) {
			continue
		}
		unknown = append(unknown, n)
	}
	if len(unknown) > 0 {
		more := ""
		if len(unknown) > 8 {
			more = fmt.Sprintf(" and %d more", len(unknown)-8)
			unknown = unknown[:8]
		}
		return fmt.Errorf("weights: unknown keys %s%s (checkpoint and config disagree?)", strings.Join(unknown, ", "), more)
	}
	return nil
}

func (w *Weights) ignored(n string) bool {
	for _, p := range w.Ignore {
		if n == p || (strings.HasSuffix(p, ".") && strings.HasPrefix(n, p)) || (strings.HasPrefix(p, "*") && strings.HasSuffix(n, p[1:])) {
			return true
		}
	}
	return false
}

// Loaded returns every tensor loaded (to free a model).
func (w *Weights) Loaded() []*Tensor { return w.loaded }

// Scope prefixes names: Scope("down_blocks.0").Tensor("conv.weight") loads
// "down_blocks.0.conv.weight".
type Scope struct {
	W      *Weights
	Prefix string
}

// Root returns the unprefixed scope.
func (w *Weights) Root() Scope { return Scope{W: w} }

// Sub returns the scope of a child module.
func (s Scope) Sub(name string, idx ...int) Scope {
	n := name
	for _, i := range idx {
		n += fmt.Sprintf(".%d", i)
	}
	return Scope{W: s.W, Prefix: s.name(n)}
}

func (s Scope) name(n string) string {
	if s.Prefix == "" {
		return n
	}
	return s.Prefix + "." + n
}

// Tensor loads a required parameter.
func (s Scope) Tensor(name string, shape ...int) *Tensor { return s.W.Tensor(s.name(name), shape...) }

// Optional loads a parameter if present.
func (s Scope) Optional(name string, shape ...int) *Tensor {
	return s.W.Optional(s.name(name), shape...)
}

// Has reports whether a parameter exists.
func (s Scope) Has(name string) bool { return s.W.Has(s.name(name)) }

func (w *Weights) synth(name string, shape []int) *Tensor {
	v := w.Synth(name, shape)
	var t *Tensor
	if w.Storage == F16 && len(shape) >= 2 {
		bits := make([]uint16, len(v))
		for i, x := range v {
			bits[i] = Float16(x)
		}
		t = w.be.UploadF16(shape, bits)
	} else {
		t = w.be.Upload(shape, v)
	}
	if t == nil {
		w.fail("weights: uploading synthetic %q: %v", name, w.be.Err())
		return nil
	}
	w.taken[name] = true
	w.loaded = append(w.loaded, t)
	return t
}

// NewSynthWeights returns weights made up on demand: matrices and kernels
// uniform in ±1/√fan_in (PyTorch's default init scale), norm weights 1,
// biases small. Values depend only on seed and the parameter's name, so
// runs are reproducible.
func NewSynthWeights(be Backend, seed uint64) *Weights {
	w := &Weights{be: be, taken: map[string]bool{}}
	w.Synth = func(name string, shape []int) []float32 {
		h := seed
		for _, c := range name {
			h = (h ^ uint64(c)) * 0x100000001b3
		}
		n := numel(shape)
		v := make([]float32, n)
		scale := float32(0.02)
		switch {
		case len(shape) >= 2:
			fanIn := n / shape[0]
			scale = float32(1 / math.Sqrt(float64(fanIn)))
		case strings.HasSuffix(name, "norm.weight") || strings.Contains(name, "norm1.weight") || strings.Contains(name, "norm2.weight") || strings.Contains(name, "norm3.weight") || strings.Contains(name, "norm_out.weight") || strings.Contains(name, "layer_norm"):
			for i := range v {
				v[i] = 1
			}
			return v
		}
		for i := range v {
			h ^= h << 13
			h ^= h >> 7
			h ^= h << 17
			v[i] = (float32(h>>40)/float32(1<<24)*2 - 1) * scale
		}
		return v
	}
	return w
}
