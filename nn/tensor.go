// Package nn holds retrace's tensors, the ops of a Stable-Diffusion-class model
// on two backends — the WebGPU kernels (GPU) and a pure-Go reference (CPU)
// that is the oracle for every kernel test — and the models built on them.
//
// Ops record the first error on their backend (Backend.Err) and return nil;
// every op given a nil input returns nil, so a forward pass is written
// without error plumbing and checked once at the end, like bufio.Writer.
package nn

import (
	"fmt"
	"sync/atomic"

	"retrace/nn/gpu"
)

// DType is a tensor's storage type.
type DType uint8

const (
	// F32 is IEEE float32.
	F32 DType = iota
	// F16 is IEEE half precision. On the GPU two halves are packed into one
	// u32 (low half = even element) and converted in the kernels; the CPU
	// reference keeps the exact float32 values of the halves.
	F16
	// Q8 and Q4 are quantized weights (see QuantTensor in quant.go): the
	// GPU keeps the packed values and scales, the CPU reference keeps the
	// dequantized float32 values.
	Q8
	Q4
)

func (d DType) String() string {
	switch d {
	case F32:
		return "f32"
	case F16:
		return "f16"
	case Q8:
		return "q8"
	case Q4:
		return "q4"
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// storage is shared by a tensor and its views; refs counts them.
type storage struct {
	cpu  []float32   // CPU backend
	buf  *gpu.Buffer // GPU backend
	refs atomic.Int32
	q    *quantInfo // layout of Q8/Q4 storage (quant.go)
}

// Tensor is an n-dimensional row-major array on one backend. A tensor may be
// a view (Reshape, Narrow along the first axis) of another's storage starting
// at element Offset.
type Tensor struct {
	shape []int
	dtype DType
	off   int
	st    *storage
	be    Backend
}

// Shape returns the dimensions (do not modify).
func (t *Tensor) Shape() []int { return t.shape }

// Dim returns dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.shape)
	}
	return t.shape[i]
}

// Rank returns the number of dimensions.
func (t *Tensor) Rank() int { return len(t.shape) }

// Numel returns the number of elements.
func (t *Tensor) Numel() int { return numel(t.shape) }

// DType returns the storage type.
func (t *Tensor) DType() DType { return t.dtype }

// Offset returns the element offset of a view into its storage.
func (t *Tensor) Offset() int { return t.off }

// Backend returns the backend owning t.
func (t *Tensor) Backend() Backend { return t.be }

func (t *Tensor) String() string {
	if t == nil {
		return "<nil tensor>"
	}
	return fmt.Sprintf("%s%v", t.dtype, t.shape)
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func cloneShape(s []int) []int { return append([]int(nil), s...) }

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func checkShape(shape []int) error {
	if len(shape) == 0 {
		return fmt.Errorf("empty shape")
	}
	n := int64(1)
	for _, d := range shape {
		if d <= 0 {
			return fmt.Errorf("bad dimension %d in shape %v", d, shape)
		}
		n *= int64(d)
		if n > 1<<40 {
			return fmt.Errorf("shape %v is too large", shape)
		}
	}
	return nil
}

// Free releases t's reference to its storage; storage is returned to the
// backend when its last tensor is freed. Free(nil) is a no-op.
func Free(ts ...*Tensor) {
	for _, t := range ts {
		if t == nil || t.st == nil {
			continue
		}
		if t.st.refs.Add(-1) == 0 {
			if t.st.buf != nil {
				t.st.buf.Free()
			}
			t.st.cpu = nil
		}
		t.st = nil
	}
}

// Reshape returns a view of t with a new shape of the same element count.
// One dimension may be -1 (inferred).
func Reshape(t *Tensor, shape ...int) *Tensor {
	if t == nil {
		return nil
	}
	shape = cloneShape(shape)
	infer := -1
	n := 1
	for i, d := range shape {
		if d == -1 {
			if infer >= 0 {
				t.be.setErr(fmt.Errorf("reshape %v to %v: more than one -1", t.shape, shape))
				return nil
			}
			infer = i
			continue
		}
		n *= d
	}
	if infer >= 0 && n > 0 {
		shape[infer] = t.Numel() / n
		n *= shape[infer]
	}
	if n != t.Numel() {
		t.be.setErr(fmt.Errorf("reshape %v to %v: element count differs", t.shape, shape))
		return nil
	}
	t.st.refs.Add(1)
	return &Tensor{shape: shape, dtype: t.dtype, off: t.off, st: t.st, be: t.be}
}

// Narrow returns a view of rows [start, start+n) along the first axis
// (contiguous in memory), e.g. one half of a classifier-free-guidance batch.
func Narrow(t *Tensor, start, n int) *Tensor {
	if t == nil {
		return nil
	}
	if t.dtype != F32 {
		t.be.setErr(fmt.Errorf("narrow %v: only f32 tensors can be viewed", t))
		return nil
	}
	if start < 0 || n <= 0 || start+n > t.shape[0] {
		t.be.setErr(fmt.Errorf("narrow %v: rows [%d,%d) out of range", t.shape, start, start+n))
		return nil
	}
	shape := cloneShape(t.shape)
	shape[0] = n
	row := t.Numel() / t.shape[0]
	t.st.refs.Add(1)
	return &Tensor{shape: shape, dtype: t.dtype, off: t.off + start*row, st: t.st, be: t.be}
}
