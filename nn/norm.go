package nn

import (
	"fmt"
	"math"
)

// Normalisation references. Statistics are accumulated in float64 with two
// passes (mean, then Σ(x−mean)²), so they are the accurate oracle the GPU
// kernels' float32 partial statistics are compared against. Variances are
// biased (divided by the count), as in PyTorch.

// checkScaleShift validates optional per-feature gamma/beta tensors of n
// elements (shape [n]).
func checkScaleShift(gamma, beta *Tensor, n int) error {
	for _, p := range []struct {
		name string
		t    *Tensor
	}{{"gamma", gamma}, {"beta", beta}} {
		if p.t != nil && (p.t.Rank() != 1 || p.t.shape[0] != n) {
			return fmt.Errorf("%s %v must have shape [%d]", p.name, p.t, n)
		}
	}
	return nil
}

// nonNil returns the non-nil tensors of ts.
func nonNil(ts ...*Tensor) []*Tensor {
	var out []*Tensor
	for _, t := range ts {
		if t != nil {
			out = append(out, t)
		}
	}
	return out
}

// groupNormShape validates GroupNorm's inputs and returns the batch,
// channels and spatial size (product of the axes after C).
func groupNormShape(x, gamma, beta *Tensor, groups int, eps float32) (n, ch, hw int, err error) {
	if x.dtype != F32 {
		return 0, 0, 0, fmt.Errorf("x %v must be f32", x)
	}
	if x.Rank() < 2 {
		return 0, 0, 0, fmt.Errorf("x %v must be [N, C, ...]", x)
	}
	n, ch = x.shape[0], x.shape[1]
	hw = x.Numel() / (n * ch)
	if groups <= 0 || ch%groups != 0 {
		return 0, 0, 0, fmt.Errorf("%d groups do not divide the %d channels of x %v", groups, ch, x)
	}
	if !(eps >= 0) {
		return 0, 0, 0, fmt.Errorf("eps %v must be ≥ 0", eps)
	}
	return n, ch, hw, checkScaleShift(gamma, beta, ch)
}

// meanVar returns the mean and biased variance of v (two passes, float64).
func meanVar(v []float32) (mean, variance float64) {
	for _, x := range v {
		mean += float64(x)
	}
	mean /= float64(len(v))
	for _, x := range v {
		d := float64(x) - mean
		variance += d * d
	}
	return mean, variance / float64(len(v))
}

func silu64(x float64) float64 { return x / (1 + math.Exp(-x)) }

// GroupNorm implements Backend (reference): for each sample and group of
// C/groups channels, y = (x−mean)/√(var+eps)·gamma[c] + beta[c], then
// optionally SiLU.
func (c *CPU) GroupNorm(x, gamma, beta *Tensor, groups int, eps float32, silu bool) *Tensor {
	if !c.ok("groupnorm", x) || !c.ok("groupnorm", nonNil(gamma, beta)...) {
		return nil
	}
	n, ch, hw, err := groupNormShape(x, gamma, beta, groups, eps)
	if err != nil {
		return c.errf("groupnorm", "%v", err)
	}
	out := c.newTensor(x.shape, F32)
	xd, od := x.cpuData(), out.cpuData()
	cpg := ch / groups
	m := cpg * hw // elements per group, contiguous
	c.parallel(n*groups, func(lo, hi int) {
		for gi := lo; gi < hi; gi++ {
			mean, v := meanVar(xd[gi*m : (gi+1)*m])
			rstd := 1 / math.Sqrt(v+float64(eps))
			for j := 0; j < m; j++ {
				ci := (gi%groups)*cpg + j/hw
				y := (float64(xd[gi*m+j]) - mean) * rstd
				if gamma != nil {
					y *= float64(gamma.cpuData()[ci])
				}
				if beta != nil {
					y += float64(beta.cpuData()[ci])
				}
				if silu {
					y = silu64(y)
				}
				od[gi*m+j] = float32(y)
			}
		}
	})
	return out
}

// LayerNorm implements Backend (reference): each row of the last axis is
// normalised to zero mean and unit variance, then scaled and shifted.
func (c *CPU) LayerNorm(x, gamma, beta *Tensor, eps float32) *Tensor {
	if !c.ok("layernorm", x) || !c.ok("layernorm", nonNil(gamma, beta)...) {
		return nil
	}
	d, err := layerNormShape(x, gamma, beta, eps)
	if err != nil {
		return c.errf("layernorm", "%v", err)
	}
	out := c.newTensor(x.shape, F32)
	xd, od := x.cpuData(), out.cpuData()
	c.parallel(x.Numel()/d, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := xd[r*d : (r+1)*d]
			mean, v := meanVar(row)
			rstd := 1 / math.Sqrt(v+float64(eps))
			for j, xv := range row {
				y := (float64(xv) - mean) * rstd
				if gamma != nil {
					y *= float64(gamma.cpuData()[j])
				}
				if beta != nil {
					y += float64(beta.cpuData()[j])
				}
				od[r*d+j] = float32(y)
			}
		}
	})
	return out
}

func layerNormShape(x, gamma, beta *Tensor, eps float32) (int, error) {
	if x.dtype != F32 {
		return 0, fmt.Errorf("x %v must be f32", x)
	}
	if !(eps >= 0) {
		return 0, fmt.Errorf("eps %v must be ≥ 0", eps)
	}
	d := x.Dim(-1)
	return d, checkScaleShift(gamma, beta, d)
}

// Softmax implements Backend (reference): exp(x−max)/Σexp(x−max) per row of
// the last axis, in float64.
func (c *CPU) Softmax(x *Tensor) *Tensor {
	if !c.ok("softmax", x) {
		return nil
	}
	if x.dtype != F32 {
		return c.errf("softmax", "x %v must be f32", x)
	}
	d := x.Dim(-1)
	out := c.newTensor(x.shape, F32)
	xd, od := x.cpuData(), out.cpuData()
	c.parallel(x.Numel()/d, func(lo, hi int) {
		e := make([]float64, d)
		for r := lo; r < hi; r++ {
			row := xd[r*d : (r+1)*d]
			m := math.Inf(-1)
			for _, v := range row {
				m = max(m, float64(v))
			}
			s := 0.0
			for j, v := range row {
				e[j] = math.Exp(float64(v) - m)
				s += e[j]
			}
			for j := range row {
				od[r*d+j] = float32(e[j] / s)
			}
		}
	})
	return out
}
