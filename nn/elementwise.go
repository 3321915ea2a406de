package nn

import (
	"fmt"
	"math"
)

// Elementwise references: each value is computed in float64 with the math
// package and rounded to float32 once, so they are the oracle for the WGSL
// approximations (erf, tanh) in shaders/unary.wgsl.

// unaryf returns op's function, or nil for an unknown op.
func unaryf(op UnaryOp) func(x float64) float64 {
	switch op {
	case SiLU:
		return silu64
	case GELU:
		return gelu64
	case GELUTanh:
		return func(x float64) float64 {
			return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
		}
	case QuickGELU:
		return func(x float64) float64 { return x / (1 + math.Exp(-1.702*x)) }
	case ReLU:
		return func(x float64) float64 { return max(x, 0) }
	case Tanh:
		return math.Tanh
	case Sigmoid:
		return func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	case Exp:
		return math.Exp
	case Neg:
		return func(x float64) float64 { return -x }
	case Abs:
		return math.Abs
	case Sqrt:
		return math.Sqrt
	case Square:
		return func(x float64) float64 { return x * x }
	}
	return nil
}

// gelu64 is the exact GELU x·Φ(x) = x/2·erfc(−x/√2).
func gelu64(x float64) float64 { return 0.5 * x * math.Erfc(-x/math.Sqrt2) }

// checkF32 records whether every tensor is F32 (activations; F16 is only a
// weight storage format).
func checkF32(ts ...*Tensor) error {
	for _, t := range ts {
		if t.dtype != F32 {
			return fmt.Errorf("needs f32 tensors, got %v", t)
		}
	}
	return nil
}

// mapCPU returns a new tensor with out[i] = f(i) computed in parallel.
func (c *CPU) mapCPU(shape []int, f func(i int) float32) *Tensor {
	out := c.newTensor(shape, F32)
	od := out.cpuData()
	c.parallel(len(od), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			od[i] = f(i)
		}
	})
	return out
}

// Unary implements Backend (reference).
func (c *CPU) Unary(op UnaryOp, x *Tensor) *Tensor {
	if !c.ok("unary", x) {
		return nil
	}
	f := unaryf(op)
	if f == nil {
		return c.errf("unary", "unknown op %d", op)
	}
	if err := checkF32(x); err != nil {
		return c.errf(op.String(), "%v", err)
	}
	xd := x.cpuData()
	return c.mapCPU(x.shape, func(i int) float32 { return float32(f(float64(xd[i]))) })
}

// gegluShape returns the output shape of GEGLU for x [..., 2N].
func gegluShape(x *Tensor) ([]int, error) {
	if err := checkF32(x); err != nil {
		return nil, err
	}
	d := x.Dim(-1)
	if d%2 != 0 {
		return nil, fmt.Errorf("x %v: last axis %d is odd, want [..., 2N]", x, d)
	}
	s := cloneShape(x.shape)
	s[len(s)-1] = d / 2
	return s, nil
}

// GEGLU implements Backend (reference).
func (c *CPU) GEGLU(x *Tensor) *Tensor {
	if !c.ok("geglu", x) {
		return nil
	}
	shape, err := gegluShape(x)
	if err != nil {
		return c.errf("geglu", "%v", err)
	}
	xd, h := x.cpuData(), shape[len(shape)-1]
	return c.mapCPU(shape, func(i int) float32 {
		r, j := i/h, i%h
		return float32(float64(xd[r*2*h+j]) * gelu64(float64(xd[r*2*h+h+j])))
	})
}

// Axpby implements Backend (reference).
func (c *CPU) Axpby(a float32, x *Tensor, b float32, y *Tensor) *Tensor {
	if !c.ok("axpby", x, y) {
		return nil
	}
	if err := axpbyCheck(x, y); err != nil {
		return c.errf("axpby", "%v", err)
	}
	xd, yd := x.cpuData(), y.cpuData()
	return c.mapCPU(x.shape, func(i int) float32 { return a*xd[i] + b*yd[i] })
}

func axpbyCheck(x, y *Tensor) error {
	if err := checkF32(x, y); err != nil {
		return err
	}
	if !sameShape(x.shape, y.shape) {
		return fmt.Errorf("%v and %v differ in shape", x, y)
	}
	return nil
}

// Affine implements Backend (reference).
func (c *CPU) Affine(x *Tensor, mul, add float32) *Tensor {
	if !c.ok("affine", x) {
		return nil
	}
	if err := checkF32(x); err != nil {
		return c.errf("affine", "%v", err)
	}
	xd := x.cpuData()
	return c.mapCPU(x.shape, func(i int) float32 { return xd[i]*mul + add })
}

// Clamp implements Backend (reference): min(max(x, lo), hi), so lo > hi
// gives hi everywhere (as torch.clamp does).
func (c *CPU) Clamp(x *Tensor, lo, hi float32) *Tensor {
	if !c.ok("clamp", x) {
		return nil
	}
	if err := checkF32(x); err != nil {
		return c.errf("clamp", "%v", err)
	}
	xd := x.cpuData()
	return c.mapCPU(x.shape, func(i int) float32 { return min(max(xd[i], lo), hi) })
}

// permuteShape validates perm for x and returns the output shape.
func permuteShape(x *Tensor, perm []int) ([]int, error) {
	if err := checkF32(x); err != nil {
		return nil, err
	}
	if len(perm) != x.Rank() {
		return nil, fmt.Errorf("perm %v has %d axes, x %v has %d", perm, len(perm), x, x.Rank())
	}
	if len(perm) > maxRank {
		return nil, fmt.Errorf("x %v: rank %d exceeds %d", x, len(perm), maxRank)
	}
	seen := make([]bool, len(perm))
	out := make([]int, len(perm))
	for i, p := range perm {
		if p < 0 || p >= len(perm) || seen[p] {
			return nil, fmt.Errorf("perm %v is not a permutation of the %d axes of x %v", perm, len(perm), x)
		}
		seen[p] = true
		out[i] = x.shape[p]
	}
	return out, nil
}

// contiguousStrides returns row-major element strides of shape.
func contiguousStrides(shape []int) []int {
	s := make([]int, len(shape))
	st := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = st
		st *= shape[i]
	}
	return s
}

// Permute implements Backend (reference).
func (c *CPU) Permute(x *Tensor, perm ...int) *Tensor {
	if !c.ok("permute", x) {
		return nil
	}
	shape, err := permuteShape(x, perm)
	if err != nil {
		return c.errf("permute", "%v", err)
	}
	xs := contiguousStrides(x.shape)
	xd := x.cpuData()
	return c.mapCPU(shape, func(i int) float32 {
		src := 0
		for d := len(shape) - 1; d >= 0; d-- {
			src += i % shape[d] * xs[perm[d]]
			i /= shape[d]
		}
		return xd[src]
	})
}

// timestepCheck validates TimestepEmbedding's arguments.
func timestepCheck(t *Tensor, dim int, maxPeriod float32) error {
	if err := checkF32(t); err != nil {
		return err
	}
	if t.Rank() != 1 {
		return fmt.Errorf("timesteps %v must be [B]", t)
	}
	if dim <= 0 {
		return fmt.Errorf("dim %d must be positive", dim)
	}
	if !(maxPeriod > 0) {
		return fmt.Errorf("max period %v must be positive", maxPeriod)
	}
	return nil
}

// TimestepEmbedding implements Backend (reference), following diffusers'
// get_timestep_embedding step by step in float32:
//
//	exponent = −ln(max_period)·arange(half) / (half − downscale_freq_shift)
//	emb      = scale · (t[:, None] · exp(exponent)[None, :])
//	emb      = cat(sin(emb), cos(emb))   (cat(cos, sin) when flip_sin_to_cos)
//
// and a zero column is appended when dim is odd.
func (c *CPU) TimestepEmbedding(t *Tensor, dim int, flipSinToCos bool, downscaleFreqShift float32, scale float32, maxPeriod float32) *Tensor {
	if !c.ok("timestep_embedding", t) {
		return nil
	}
	if err := timestepCheck(t, dim, maxPeriod); err != nil {
		return c.errf("timestep_embedding", "%v", err)
	}
	half := dim / 2
	freq := make([]float32, half)
	lnP := float32(math.Log(float64(maxPeriod)))
	for j := range freq {
		e := -lnP * float32(j) / (float32(half) - downscaleFreqShift)
		freq[j] = float32(math.Exp(float64(e)))
	}
	td := t.cpuData()
	return c.mapCPU([]int{t.shape[0], dim}, func(i int) float32 {
		b, j := i/dim, i%dim
		if j >= 2*half {
			return 0
		}
		first := j < half // sin half unless flipped
		emb := float64(scale * (td[b] * freq[j%half]))
		if first != flipSinToCos {
			return float32(math.Sin(emb))
		}
		return float32(math.Cos(emb))
	})
}

// Reduce implements Backend (reference, float64 accumulation).
func (c *CPU) Reduce(op ReduceOp, x *Tensor) *Tensor {
	if !c.ok("reduce", x) {
		return nil
	}
	if op > MaxAbs {
		return c.errf("reduce", "unknown op %d", op)
	}
	if err := checkF32(x); err != nil {
		return c.errf(op.String(), "%v", err)
	}
	var r float64
	for _, v := range x.cpuData() {
		if op == MaxAbs {
			r = max(r, math.Abs(float64(v)))
		} else {
			r += float64(v)
		}
	}
	if op == Mean {
		r /= float64(x.Numel())
	}
	return c.Upload([]int{1}, []float32{float32(r)})
}

// SquaredError implements Backend (reference, float64 accumulation).
func (c *CPU) SquaredError(a, b *Tensor) *Tensor {
	if !c.ok("squared_error", a, b) {
		return nil
	}
	if err := axpbyCheck(a, b); err != nil {
		return c.errf("squared_error", "%v", err)
	}
	var r float64
	bd := b.cpuData()
	for i, v := range a.cpuData() {
		d := float64(v) - float64(bd[i])
		r += d * d
	}
	return c.Upload([]int{1}, []float32{float32(r)})
}
