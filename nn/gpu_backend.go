package nn

import (
	"fmt"
	"sync"

	"retrace/nn/gpu"
	"retrace/shaders"
)

// GPU runs ops as WGSL kernels on a WebGPU device. Work is batched: ops only
// record dispatches; Read/Sync submit and wait.
type GPU struct {
	Dev *gpu.Device

	mu      sync.Mutex
	err     error
	kernels map[string]*gpu.Kernel
	used    map[string]string // variant last chosen per op

	// Variant choices per op ("tiled" kernels with workgroup memory for real
	// GPUs, barrier-free register-blocked ones for CPU adapters). Set from
	// the adapter type by NewGPU; tests and the autotuner may override.
	Variants map[string]string

	// BindLimit, when non-zero, lowers the largest storage binding (bytes)
	// ops may use below the device's, so tests can exercise the split paths
	// that real SD-sized tensors take on 128 MiB devices.
	BindLimit uint64
}

// NewGPU wraps a device.
func NewGPU(dev *gpu.Device) *GPU {
	g := &GPU{Dev: dev, Variants: map[string]string{}, kernels: map[string]*gpu.Kernel{}}
	return g
}

// OpenGPU opens the default device and wraps it.
func OpenGPU(opt gpu.Options) (*GPU, error) {
	d, err := gpu.Open(opt)
	if err != nil {
		return nil, err
	}
	return NewGPU(d), nil
}

// Name implements Backend.
func (g *GPU) Name() string { return "gpu" }

// Err implements Backend.
func (g *GPU) Err() error { g.mu.Lock(); defer g.mu.Unlock(); return g.err }

// ClearErr implements Backend.
func (g *GPU) ClearErr() { g.mu.Lock(); g.err = nil; g.mu.Unlock() }

func (g *GPU) setErr(err error) {
	g.mu.Lock()
	if g.err == nil {
		g.err = err
	}
	g.mu.Unlock()
}

func (g *GPU) errf(op string, format string, a ...any) *Tensor {
	g.setErr(fmt.Errorf("nn: %s: %s", op, fmt.Sprintf(format, a...)))
	return nil
}

// variant returns the kernel variant chosen for op, or def.
func (g *GPU) variant(op, def string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	v, ok := g.Variants[op]
	if !ok {
		v = def
	}
	if g.used == nil {
		g.used = map[string]string{}
	}
	g.used[op] = v
	return v
}

func (g *GPU) ok(op string, ts ...*Tensor) bool {
	for _, t := range ts {
		if t == nil {
			if g.Err() == nil {
				g.setErr(fmt.Errorf("nn: %s: nil tensor", op))
			}
			return false
		}
		if t.be != Backend(g) {
			g.setErr(fmt.Errorf("nn: %s: tensor %v belongs to backend %s", op, t, t.be.Name()))
			return false
		}
		if t.st == nil {
			g.setErr(fmt.Errorf("nn: %s: tensor %v was freed", op, t))
			return false
		}
	}
	return true
}

// newTensor allocates an uninitialised tensor.
func (g *GPU) newTensor(op string, shape []int, dtype DType) *Tensor {
	if err := checkShape(shape); err != nil {
		return g.errf(op, "%v", err)
	}
	n := uint64(numel(shape)) * 4
	if dtype == F16 {
		n = uint64(numel(shape)+1) / 2 * 4
	}
	b, err := g.Dev.Alloc(n)
	if err != nil {
		g.setErr(fmt.Errorf("nn: %s: output %v: %w", op, shape, err))
		return nil
	}
	st := &storage{buf: b}
	st.refs.Store(1)
	return &Tensor{shape: cloneShape(shape), dtype: dtype, st: st, be: g}
}

// Upload implements Backend.
func (g *GPU) Upload(shape []int, data []float32) *Tensor {
	if err := checkShape(shape); err != nil {
		return g.errf("upload", "%v", err)
	}
	if numel(shape) != len(data) {
		return g.errf("upload", "shape %v needs %d values, got %d", shape, numel(shape), len(data))
	}
	t := g.newTensor("upload", shape, F32)
	if t == nil {
		return nil
	}
	if err := g.Dev.WriteFloat32(t.st.buf, 0, data); err != nil {
		Free(t)
		g.setErr(fmt.Errorf("nn: upload %v: %w", shape, err))
		return nil
	}
	return t
}

// UploadF16 implements Backend: halves are packed two per u32, low half first.
func (g *GPU) UploadF16(shape []int, bits []uint16) *Tensor {
	if err := checkShape(shape); err != nil {
		return g.errf("upload_f16", "%v", err)
	}
	if numel(shape) != len(bits) {
		return g.errf("upload_f16", "shape %v needs %d values, got %d", shape, numel(shape), len(bits))
	}
	t := g.newTensor("upload_f16", shape, F16)
	if t == nil {
		return nil
	}
	raw := make([]byte, (len(bits)+1)/2*4)
	for i, h := range bits {
		raw[2*i] = byte(h)
		raw[2*i+1] = byte(h >> 8)
	}
	if err := g.Dev.Write(t.st.buf, 0, raw); err != nil {
		Free(t)
		g.setErr(fmt.Errorf("nn: upload_f16 %v: %w", shape, err))
		return nil
	}
	return t
}

// Zeros implements Backend.
func (g *GPU) Zeros(shape []int) *Tensor {
	if err := checkShape(shape); err != nil {
		return g.errf("zeros", "%v", err)
	}
	return g.Upload(shape, make([]float32, numel(shape)))
}

// Read implements Backend.
func (g *GPU) Read(t *Tensor) ([]float32, error) {
	if !g.ok("read", t) {
		if err := g.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("nn: read: nil tensor")
	}
	if err := g.Err(); err != nil {
		return nil, err
	}
	if t.dtype == Q8 || t.dtype == Q4 {
		return nil, fmt.Errorf("nn: read %v: quantized weights cannot be read back; read the pack instead", t)
	}
	if t.dtype == F16 {
		raw, err := g.Dev.Read(t.st.buf, 0, uint64(t.Numel()+1)/2*4)
		if err != nil {
			return nil, fmt.Errorf("nn: read %v: %w", t, err)
		}
		out := make([]float32, t.Numel())
		for i := range out {
			out[i] = Float16To32(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
		}
		return out, nil
	}
	v, err := g.Dev.ReadFloat32(t.st.buf, t.off, t.Numel())
	if err != nil {
		return nil, fmt.Errorf("nn: read %v: %w", t, err)
	}
	return v, nil
}

// Sync implements Backend.
func (g *GPU) Sync() error {
	if err := g.Dev.Sync(); err != nil {
		g.setErr(err)
	}
	return g.Err()
}

// bind returns the binding of t's elements and the element index where they
// start inside it (WGSL kernels add it to every index). For F16 tensors the
// binding covers the packed words and the start is always 0.
func (g *GPU) bind(t *Tensor) (gpu.Binding, uint32) {
	if t.dtype == F16 {
		return gpu.Binding{Buf: t.st.buf, Size: uint64(t.Numel()+1) / 2 * 4}, 0
	}
	return g.Dev.BindRange(t.st.buf, uint64(t.off), uint64(t.Numel()))
}

// bindElems binds elements [start, start+n) of t (F32 only).
func (g *GPU) bindElems(t *Tensor, start, n int) (gpu.Binding, uint32) {
	return g.Dev.BindRange(t.st.buf, uint64(t.off+start), uint64(n))
}

// maxElems is the number of f32 elements one storage binding may hold
// (after offset alignment).
func (g *GPU) maxElems() int {
	m := g.Dev.MaxBindingElems()
	if g.BindLimit > 0 {
		m = min(m, g.BindLimit/4)
	}
	return int(m)
}

// fits reports whether n f32 elements fit one storage binding.
func (g *GPU) fits(n int) bool { return n <= g.maxElems() }

// run compiles (cached) and dispatches kernel name specialised by consts.
// ro lists, per storage binding, whether the shader declares it read-only.
func (g *GPU) run(op, name string, consts map[string]string, ro []bool, p *gpu.Params, bs []gpu.Binding, x, y, z int) bool {
	k := g.kernel(op, name, consts, ro)
	if k == nil {
		return false
	}
	var pb []byte
	if p != nil {
		pb = p.Bytes()
	}
	if err := g.Dev.Dispatch(k, pb, bs, uint32(x), uint32(y), uint32(z)); err != nil {
		g.setErr(fmt.Errorf("nn: %s: %w", op, err))
		return false
	}
	return true
}

// kernel returns the compiled kernel name specialised by consts.
func (g *GPU) kernel(op, name string, consts map[string]string, ro []bool) *gpu.Kernel {
	key := shaders.Key(name, consts)
	g.mu.Lock()
	k := g.kernels[key]
	g.mu.Unlock()
	if k != nil {
		return k
	}
	src, err := shaders.Source(name, consts)
	if err != nil {
		g.setErr(fmt.Errorf("nn: %s: %w", op, err))
		return nil
	}
	k, err = g.Dev.Kernel(key, src, ro)
	if err != nil {
		g.setErr(fmt.Errorf("nn: %s: %w", op, err))
		return nil
	}
	g.mu.Lock()
	g.kernels[key] = k
	g.mu.Unlock()
	return k
}

// grid splits n workgroups over x and y so neither exceeds the per-dimension
// limit; kernels recompute the flat id as wg.x + wg.y·nx.
func (g *GPU) grid(n int) (int, int) {
	lim := int(g.Dev.Limits().MaxComputeWorkgroupsPerDimension)
	if n <= lim {
		return n, 1
	}
	y := (n + lim - 1) / lim
	return (n + y - 1) / y, y
}

// Autotune picks kernel variants for this adapter by timing them on small
// problems (a fraction of a second in all). Without it, variants follow the
// adapter type: barrier-free kernels on CPU adapters, workgroup-tiled ones on
// GPUs.
func (g *GPU) Autotune() {
	for _, f := range autotuners {
		f(g)
	}
}

// autotuners are registered by op files that have several variants.
var autotuners []func(g *GPU)
