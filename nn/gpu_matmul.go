package nn

import (
	"fmt"

	"retrace/nn/gpu"
)

// MatMul implements Backend: shaders/matmul_reg.wgsl or matmul_tiled.wgsl
// (see gemm). Transposes are strides inside the kernel, never copies.
func (g *GPU) MatMul(a, b *Tensor, transA, transB bool) *Tensor {
	if !g.ok("matmul", a, b) {
		return nil
	}
	d, err := matmulDims(a, b, transA, transB)
	if err != nil {
		return g.errf("matmul", "%v", err)
	}
	return g.gemm("matmul", d, transA, transB, a, b, nil)
}

// Linear implements Backend: the matmul kernels with B = wᵀ read in place
// (F16 weights are unpacked inside the kernel) and the bias added on store.
func (g *GPU) Linear(x, w, bias *Tensor) *Tensor {
	if quantOf(w) != nil { // Q8/Q4 weights: gpu_quant.go
		return g.linearQuant(x, w, bias)
	}
	if !g.ok("linear", x, w) || (bias != nil && !g.ok("linear", bias)) {
		return nil
	}
	d, err := linearDims(x, w, bias)
	if err != nil {
		return g.errf("linear", "%v", err)
	}
	return g.gemm("linear", d, false, true, x, w, bias)
}

// matmulKernel describes one kernel variant: its shader, specialisation
// and the output block one workgroup covers.
type matmulKernel struct {
	name         string
	consts       map[string]string
	rows, cols   int // outputs per workgroup
	maxRowGroups int
}

// matmulVariant returns the kernel for the chosen variant: "reg"
// (barrier-free, fastest on CPU adapters) or "tiled" (workgroup-memory
// tiles, for real GPUs). The default follows the adapter type.
func (g *GPU) matmulVariant(transA, transB bool, bf16 bool, bias int) (matmulKernel, error) {
	def := "tiled"
	if g.Dev.Info().CPU {
		def = "reg"
	}
	c := map[string]string{
		"TA":   fmt.Sprint(transA),
		"TB":   fmt.Sprint(transB),
		"BF16": fmt.Sprint(bf16),
		"BIAS": fmt.Sprintf("%du", bias),
	}
	lim := int(g.Dev.Limits().MaxComputeWorkgroupsPerDimension)
	switch v := g.variant("matmul", def); v {
	case "reg":
		const tm, wg = 4, 16
		c["TM"], c["WG"] = fmt.Sprintf("%du", tm), fmt.Sprintf("%du", wg)
		return matmulKernel{name: "matmul_reg", consts: c, rows: tm, cols: 4 * wg, maxRowGroups: lim}, nil
	case "tiled":
		return matmulKernel{name: "matmul_tiled", consts: c, rows: 64, cols: 64, maxRowGroups: lim}, nil
	default:
		return matmulKernel{}, fmt.Errorf("unknown kernel variant %q (want reg or tiled)", v)
	}
}

// gemm records out[z] = A[z]·B[z] (+ bias) for d. Operands larger than one
// storage binding are split: over batch items when whole items fit, else
// over rows of M (rows of a, unless transposed, and of out are contiguous).
// B (one batch item of it) and the bias must each fit one binding.
func (g *GPU) gemm(op string, d mmDims, transA, transB bool, a, b, bias *Tensor) *Tensor {
	biasMode := 0
	if bias != nil {
		biasMode = 1
		if bias.dtype == F16 {
			biasMode = 2
		}
	}
	kv, err := g.matmulVariant(transA, transB, b.dtype == F16, biasMode)
	if err != nil {
		return g.errf(op, "%v", err)
	}
	itemA, itemB, itemO := d.M*d.K, d.K*d.N, d.M*d.N
	words := func(t *Tensor) int { // 4-byte words t's binding needs
		if t.dtype == F16 {
			return (t.Numel() + 1) / 2
		}
		return t.Numel()
	}
	bFits := g.fits(words(b))
	if !bFits && (!d.bBatched || b.dtype == F16 || !g.fits(itemB)) {
		return g.errf(op, "b %v exceeds maxStorageBufferBindingSize (%d bytes) and cannot be split", b, g.maxElems()*4)
	}
	if bias != nil && !g.fits(words(bias)) {
		return g.errf(op, "bias %v exceeds maxStorageBufferBindingSize", bias)
	}
	out := g.newTensor(op, d.out, F32)
	if out == nil {
		return nil
	}

	// Plan dispatches: nz batch items from z0, rows [m0, m0+nm) of each.
	maxE := g.maxElems()
	lim := int(g.Dev.Limits().MaxComputeWorkgroupsPerDimension)
	aWhole, oWhole := g.fits(a.Numel()), g.fits(out.Numel())
	zc, mc := d.batch, d.M
	if !aWhole || !oWhole || !bFits {
		zc = maxE / max(itemA, itemO)
		if !bFits {
			zc = min(zc, maxE/itemB)
		}
	}
	if zc == 0 { // one batch item is too large: split its rows
		zc = 1
		if !aWhole && transA {
			Free(out)
			return g.errf(op, "a %v exceeds maxStorageBufferBindingSize and its rows cannot be split (transA %v)", a, transA)
		}
		mc = maxE / d.N
		if !aWhole {
			mc = min(mc, maxE/d.K)
		}
		if mc == 0 {
			Free(out)
			return g.errf(op, "a row of out %v exceeds maxStorageBufferBindingSize", d.out)
		}
		if mc > kv.rows {
			mc -= mc % kv.rows
		}
	}
	zc = min(zc, lim)
	mc = min(mc, kv.maxRowGroups*kv.rows)
	if mc < d.M {
		zc = 1
	}

	ba, baseA := g.bind(a)
	bb, baseB := g.bind(b)
	bo, baseO := g.bind(out)
	bbias, baseBias := ba, uint32(0)
	if bias != nil {
		bbias, baseBias = g.bind(bias)
	}
	sb := 0
	if d.bBatched {
		sb = itemB
	}
	for z0 := 0; z0 < d.batch; z0 += zc {
		nz := min(zc, d.batch-z0)
		for m0 := 0; m0 < d.M; m0 += mc {
			nm := min(mc, d.M-m0)
			offA, offO := z0*itemA+m0*d.ars, z0*itemO+m0*d.N
			oa, ob, oo := baseA+uint32(offA), baseB+uint32(z0*sb), baseO+uint32(offO)
			if !aWhole {
				span := nz * itemA
				if nm < d.M {
					span = nm * d.K
				}
				ba, oa = g.bindElems(a, offA, span)
			}
			if !bFits {
				bb, ob = g.bindElems(b, z0*itemB, nz*itemB)
			}
			if !oWhole {
				span := nz * itemO
				if nm < d.M {
					span = nm * d.N
				}
				bo, oo = g.bindElems(out, offO, span)
			}
			p := new(gpu.Params).U(uint32(nm), uint32(d.N), uint32(d.K), 0)
			p.U(uint32(d.ars), uint32(d.acs), uint32(d.brs), uint32(d.bcs))
			p.U(uint32(itemA), uint32(sb), uint32(itemO), 0)
			p.U(oa, ob, oo, baseBias)
			nx, ny := (d.N+kv.cols-1)/kv.cols, (nm+kv.rows-1)/kv.rows
			if nx > lim {
				Free(out)
				return g.errf(op, "N=%d needs %d workgroups, over the limit %d", d.N, nx, lim)
			}
			if !g.run(op, kv.name, kv.consts, []bool{true, true, true, false}, p, []gpu.Binding{ba, bb, bbias, bo}, nx, ny, nz) {
				Free(out)
				return nil
			}
		}
	}
	return out
}
