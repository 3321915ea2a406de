package nn

import (
	"fmt"
	"math"
)

// attnShape is the geometry of one Attention call: q [B, Lq, H·D], k and v
// [B, Lk, H·D].
type attnShape struct {
	B, Lq, Lk, H, D int
}

// checkAttention validates Attention's inputs (dtype and shapes) and returns
// their geometry.
func checkAttention(q, k, v *Tensor, heads int) (attnShape, error) {
	var s attnShape
	for _, t := range []struct {
		name string
		t    *Tensor
	}{{"q", q}, {"k", k}, {"v", v}} {
		if t.t.dtype != F32 {
			return s, fmt.Errorf("%s %v must be f32", t.name, t.t)
		}
		if t.t.Rank() != 3 {
			return s, fmt.Errorf("%s %v must be [B, L, heads·head_dim]", t.name, t.t.shape)
		}
	}
	if !sameShape(k.shape, v.shape) {
		return s, fmt.Errorf("k %v and v %v must have the same shape", k.shape, v.shape)
	}
	if k.shape[0] != q.shape[0] {
		return s, fmt.Errorf("q %v and k %v have different batch sizes", q.shape, k.shape)
	}
	if k.shape[2] != q.shape[2] {
		return s, fmt.Errorf("q %v and k %v have different widths (heads·head_dim)", q.shape, k.shape)
	}
	if heads <= 0 || q.shape[2]%heads != 0 {
		return s, fmt.Errorf("q %v: width %d is not divisible by %d heads", q.shape, q.shape[2], heads)
	}
	return attnShape{B: q.shape[0], Lq: q.shape[1], Lk: k.shape[1], H: heads, D: q.shape[2] / heads}, nil
}

// Attention implements Backend (reference): for each batch, head and query
// row, the scores s_j = (q·k_j)·scale over the allowed keys (j ≤ i when
// causal), p = softmax(s) with the maximum subtracted, out = Σ p_j·v_j —
// the float32 steps of PyTorch's softmax(q·kᵀ·scale)·v.
func (c *CPU) Attention(q, k, v *Tensor, heads int, scale float32, causal bool) *Tensor {
	if !c.ok("attention", q, k, v) {
		return nil
	}
	s, err := checkAttention(q, k, v, heads)
	if err != nil {
		return c.errf("attention", "%v", err)
	}
	out := c.newTensor(q.shape, F32)
	qd, kd, vd, od := q.cpuData(), k.cpuData(), v.cpuData(), out.cpuData()
	hd := s.H * s.D
	c.parallel(s.B*s.H*s.Lq, func(lo, hi int) {
		p := make([]float32, s.Lk)
		for r := lo; r < hi; r++ {
			i := r % s.Lq
			h := r / s.Lq % s.H
			b := r / (s.Lq * s.H)
			qrow := qd[(b*s.Lq+i)*hd+h*s.D:][:s.D]
			n := s.Lk // allowed keys 0..n-1
			if causal {
				n = min(s.Lk, i+1)
			}
			m := float32(math.Inf(-1))
			for j := 0; j < n; j++ {
				krow := kd[(b*s.Lk+j)*hd+h*s.D:][:s.D]
				var dot float32
				for d, x := range qrow {
					dot += x * krow[d]
				}
				p[j] = dot * scale
				m = max(m, p[j])
			}
			var sum float32
			for j := 0; j < n; j++ {
				p[j] = float32(math.Exp(float64(p[j] - m)))
				sum += p[j]
			}
			orow := od[(b*s.Lq+i)*hd+h*s.D:][:s.D]
			clear(orow)
			for j := 0; j < n; j++ {
				w := p[j] / sum
				vrow := vd[(b*s.Lk+j)*hd+h*s.D:][:s.D]
				for d, x := range vrow {
					orow[d] += w * x
				}
			}
		}
	})
	return out
}
