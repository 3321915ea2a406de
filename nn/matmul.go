package nn

import (
	"fmt"
	"sync/atomic"
)

// mmDims is a validated batched matrix product: for each of batch items,
// out (M×N) = A (M×K) · B (K×N) [+ bias]. The strides say where A(i,k) and
// B(k,j) live inside one batch item, so transposes need no copies:
// A(i,k) = a[i·ars + k·acs], B(k,j) = b[k·brs + j·bcs].
type mmDims struct {
	batch, M, K, N int
	ars, acs       int
	brs, bcs       int
	bBatched       bool // b has the batch axes (else it is shared)
	out            []int
}

// matmulDims checks MatMul's operands: a [..., M, K] (or [..., K, M] when
// transA), b [..., K, N] (or [..., N, K] when transB) with equal leading
// axes, or b of rank 2 shared by every batch item of a.
func matmulDims(a, b *Tensor, transA, transB bool) (mmDims, error) {
	if a.Rank() < 2 || b.Rank() < 2 {
		return mmDims{}, fmt.Errorf("needs operands of rank ≥ 2, got a %v and b %v", a.shape, b.shape)
	}
	if a.dtype != F32 {
		return mmDims{}, fmt.Errorf("a %v must be f32", a)
	}
	d := mmDims{M: a.Dim(-2), K: a.Dim(-1), ars: a.Dim(-1), acs: 1}
	if transA {
		d.M, d.K, d.ars, d.acs = a.Dim(-1), a.Dim(-2), 1, a.Dim(-1)
	}
	kb, n := b.Dim(-2), b.Dim(-1)
	d.brs, d.bcs = n, 1
	if transB {
		kb, n = b.Dim(-1), b.Dim(-2)
		d.brs, d.bcs = 1, kb
	}
	d.N = n
	if kb != d.K {
		return mmDims{}, fmt.Errorf("a %v (transA %v) has K=%d but b %v (transB %v) has K=%d", a.shape, transA, d.K, b.shape, transB, kb)
	}
	lead := a.shape[:a.Rank()-2]
	switch {
	case b.Rank() == 2:
	case sameShape(lead, b.shape[:b.Rank()-2]):
		d.bBatched = true
	default:
		return mmDims{}, fmt.Errorf("batch axes of a %v and b %v differ (b may also have none)", a.shape, b.shape)
	}
	d.batch = numel(lead)
	d.out = append(cloneShape(lead), d.M, d.N)
	return d, nil
}

// linearDims checks Linear's operands: x [..., in], w [out, in], bias [out]
// or nil. The product is x (rows×in) · wᵀ, i.e. B(k,j) = w[j·in + k].
func linearDims(x, w, bias *Tensor) (mmDims, error) {
	if x.dtype != F32 {
		return mmDims{}, fmt.Errorf("x %v must be f32", x)
	}
	if w.Rank() != 2 {
		return mmDims{}, fmt.Errorf("weight %v must be [out, in]", w)
	}
	in, out := w.Dim(1), w.Dim(0)
	if x.Dim(-1) != in {
		return mmDims{}, fmt.Errorf("weight %v expects %d input features, x %v has %d", w.shape, in, x.shape, x.Dim(-1))
	}
	if bias != nil && (bias.Rank() != 1 || bias.Dim(0) != out) {
		return mmDims{}, fmt.Errorf("bias %v does not match weight %v (want [%d])", bias.shape, w.shape, out)
	}
	d := mmDims{batch: 1, M: x.Numel() / in, K: in, N: out, ars: in, acs: 1, brs: 1, bcs: in}
	d.out = append(cloneShape(x.shape[:x.Rank()-1]), out)
	return d, nil
}

// MatMul implements Backend (reference): a cache-blocked product, see gemm.
func (c *CPU) MatMul(a, b *Tensor, transA, transB bool) *Tensor {
	if !c.ok("matmul", a, b) {
		return nil
	}
	d, err := matmulDims(a, b, transA, transB)
	if err != nil {
		return c.errf("matmul", "%v", err)
	}
	out := c.newTensor(d.out, F32)
	c.gemm(d, a.cpuData(), b.cpuData(), nil, out.cpuData())
	return out
}

// Linear implements Backend (reference). F16 weights hold the exact float32
// values of their halves on this backend.
func (c *CPU) Linear(x, w, bias *Tensor) *Tensor {
	if !c.ok("linear", x, w) || (bias != nil && !c.ok("linear", bias)) {
		return nil
	}
	d, err := linearDims(x, w, bias)
	if err != nil {
		return c.errf("linear", "%v", err)
	}
	out := c.newTensor(d.out, F32)
	var bd []float32
	if bias != nil {
		bd = bias.cpuData()
	}
	c.gemm(d, x.cpuData(), w.cpuData(), bd, out.cpuData())
	return out
}

// Blocking of the reference product. Each parallel work unit is one mc×nc
// tile of one batch item's output; it walks K in kc slices, packs the slice
// of A into mr-row strips and the slice of B into nr-column strips (both
// k-major, zero padded), and runs the mr×nr register micro-kernel over
// them. Packing makes every inner loop read contiguous memory whatever the
// transposes, and keeps a B strip (kc·nr floats) in L1 and the packed A and
// B tiles in L2.
// The micro-kernel's block (gemmMR × gemmNR) and gemmKernel live in
// gemm_kernel*.go: a scalar 2×4 kernel by default, an AVX2/FMA 4×16 kernel
// when built with GOEXPERIMENT=simd on amd64.
const (
	gemmMC = 64
	gemmNC = 256
	gemmKC = 256
)

// gemm computes out[z] = A[z]·B[z] (+ bias) for every batch item z.
func (c *CPU) gemm(d mmDims, a, b, bias, out []float32) {
	mt, nt := (d.M+gemmMC-1)/gemmMC, (d.N+gemmNC-1)/gemmNC
	units := d.batch * mt * nt
	// Workers take tiles from a shared counter, so one slowed-down
	// goroutine (a busy core) does not hold up the others.
	var next atomic.Int64
	c.parallel(min(c.threads(), units), func(lo, hi int) {
		ap := make([]float32, min(gemmMC+gemmMR, d.M+gemmMR)*min(gemmKC, d.K))
		bp := make([]float32, min(gemmNC+gemmNR, d.N+gemmNR)*min(gemmKC, d.K))
		for u := int(next.Add(1) - 1); u < units; u = int(next.Add(1) - 1) {
			z, t := u/(mt*nt), u%(mt*nt)
			i0, j0 := t/nt*gemmMC, t%nt*gemmNC
			az := a[z*d.M*d.K:]
			bz := b
			if d.bBatched {
				bz = b[z*d.K*d.N:]
			}
			gemmTile(d, az, bz, bias, out[z*d.M*d.N:(z+1)*d.M*d.N], i0, min(i0+gemmMC, d.M), j0, min(j0+gemmNC, d.N), ap, bp)
		}
	})
}

// gemmTile computes rows [i0,i1) × columns [j0,j1) of one batch item.
func gemmTile(d mmDims, a, b, bias, c []float32, i0, i1, j0, j1 int, ap, bp []float32) {
	for i := i0; i < i1; i++ {
		row := c[i*d.N+j0 : i*d.N+j1]
		if bias != nil {
			copy(row, bias[j0:j1])
		} else {
			clear(row)
		}
	}
	for k0 := 0; k0 < d.K; k0 += gemmKC {
		kn := min(gemmKC, d.K-k0)
		// Pack A rows [i0,i1) × k [k0,k0+kn) into strips of mr rows:
		// ap[s·kn·mr + k·mr + r] = A(i0+s·mr+r, k0+k).
		for s := 0; s*gemmMR < i1-i0; s++ {
			p := ap[s*kn*gemmMR : (s+1)*kn*gemmMR]
			for r := 0; r < gemmMR; r++ {
				i := i0 + s*gemmMR + r
				if i >= i1 {
					for k := 0; k < kn; k++ {
						p[k*gemmMR+r] = 0
					}
					continue
				}
				src := a[i*d.ars+k0*d.acs:]
				for k := 0; k < kn; k++ {
					p[k*gemmMR+r] = src[k*d.acs]
				}
			}
		}
		// Pack B k [k0,k0+kn) × columns [j0,j1) into strips of nr columns:
		// bp[s·kn·nr + k·nr + q] = B(k0+k, j0+s·nr+q).
		for s := 0; s*gemmNR < j1-j0; s++ {
			p := bp[s*kn*gemmNR : (s+1)*kn*gemmNR]
			for q := 0; q < gemmNR; q++ {
				j := j0 + s*gemmNR + q
				if j >= j1 {
					for k := 0; k < kn; k++ {
						p[k*gemmNR+q] = 0
					}
					continue
				}
				src := b[k0*d.brs+j*d.bcs:]
				for k := 0; k < kn; k++ {
					p[k*gemmNR+q] = src[k*d.brs]
				}
			}
		}
		for sj := 0; sj*gemmNR < j1-j0; sj++ {
			bs := bp[sj*kn*gemmNR : (sj+1)*kn*gemmNR]
			jj := j0 + sj*gemmNR
			nj := min(gemmNR, j1-jj)
			for si := 0; si*gemmMR < i1-i0; si++ {
				acc := gemmKernel(ap[si*kn*gemmMR:(si+1)*kn*gemmMR], bs)
				ii := i0 + si*gemmMR
				for r := 0; r < min(gemmMR, i1-ii); r++ {
					row := c[(ii+r)*d.N+jj : (ii+r)*d.N+jj+nj]
					for q := range row {
						row[q] += acc[r*gemmNR+q]
					}
				}
			}
		}
	}
}
