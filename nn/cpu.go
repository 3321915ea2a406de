package nn

import (
	"fmt"
	"runtime"
	"sync"
)

// CPU is the pure-Go reference backend: straightforward float32 loops,
// parallelised over goroutines, accumulating like the GPU kernels do. It is
// the oracle for every kernel test and a usable fallback without WebGPU.
type CPU struct {
	mu      sync.Mutex
	err     error
	Threads int // goroutines per op; 0 = GOMAXPROCS
}

// NewCPU returns the reference backend.
func NewCPU() *CPU { return &CPU{} }

// Name implements Backend.
func (c *CPU) Name() string { return "cpu" }

// Err implements Backend.
func (c *CPU) Err() error { c.mu.Lock(); defer c.mu.Unlock(); return c.err }

// ClearErr implements Backend.
func (c *CPU) ClearErr() { c.mu.Lock(); c.err = nil; c.mu.Unlock() }

func (c *CPU) setErr(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

func (c *CPU) errf(op string, format string, a ...any) *Tensor {
	c.setErr(fmt.Errorf("nn: %s: %s", op, fmt.Sprintf(format, a...)))
	return nil
}

// ok reports whether all inputs are non-nil tensors of this backend; it
// records an error for a foreign tensor. A nil input means an earlier op
// failed (its error is already recorded).
func (c *CPU) ok(op string, ts ...*Tensor) bool {
	for _, t := range ts {
		if t == nil {
			if c.Err() == nil {
				c.setErr(fmt.Errorf("nn: %s: nil tensor", op))
			}
			return false
		}
		if t.be != Backend(c) {
			c.setErr(fmt.Errorf("nn: %s: tensor %v belongs to backend %s", op, t, t.be.Name()))
			return false
		}
		if t.st == nil {
			c.setErr(fmt.Errorf("nn: %s: tensor %v was freed", op, t))
			return false
		}
	}
	return true
}

func (c *CPU) newTensor(shape []int, dtype DType) *Tensor {
	st := &storage{cpu: make([]float32, numel(shape))}
	st.refs.Store(1)
	return &Tensor{shape: cloneShape(shape), dtype: dtype, st: st, be: c}
}

// data returns the tensor's elements (a slice of its storage).
func (t *Tensor) cpuData() []float32 { return t.st.cpu[t.off : t.off+t.Numel()] }

// Upload implements Backend.
func (c *CPU) Upload(shape []int, data []float32) *Tensor {
	if err := checkShape(shape); err != nil {
		return c.errf("upload", "%v", err)
	}
	if numel(shape) != len(data) {
		return c.errf("upload", "shape %v needs %d values, got %d", shape, numel(shape), len(data))
	}
	t := c.newTensor(shape, F32)
	copy(t.st.cpu, data)
	return t
}

// UploadF16 implements Backend.
func (c *CPU) UploadF16(shape []int, bits []uint16) *Tensor {
	if err := checkShape(shape); err != nil {
		return c.errf("upload_f16", "%v", err)
	}
	if numel(shape) != len(bits) {
		return c.errf("upload_f16", "shape %v needs %d values, got %d", shape, numel(shape), len(bits))
	}
	t := c.newTensor(shape, F16)
	for i, h := range bits {
		t.st.cpu[i] = Float16To32(h)
	}
	return t
}

// Zeros implements Backend.
func (c *CPU) Zeros(shape []int) *Tensor {
	if err := checkShape(shape); err != nil {
		return c.errf("zeros", "%v", err)
	}
	return c.newTensor(shape, F32)
}

// Read implements Backend.
func (c *CPU) Read(t *Tensor) ([]float32, error) {
	if !c.ok("read", t) {
		if err := c.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("nn: read: nil tensor")
	}
	return append([]float32(nil), t.cpuData()...), nil
}

// Sync implements Backend.
func (c *CPU) Sync() error { return c.Err() }

func (c *CPU) threads() int {
	if c.Threads > 0 {
		return c.Threads
	}
	return runtime.GOMAXPROCS(0)
}

// parallel runs f over [0, n) split into contiguous chunks, one per
// goroutine.
func (c *CPU) parallel(n int, f func(lo, hi int)) {
	t := c.threads()
	if t <= 1 || n < 2 {
		f(0, n)
		return
	}
	if t > n {
		t = n
	}
	var wg sync.WaitGroup
	for i := 0; i < t; i++ {
		lo, hi := i*n/t, (i+1)*n/t
		if lo == hi {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); f(lo, hi) }()
	}
	wg.Wait()
}
