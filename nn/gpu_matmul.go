package nn

import (
	"fmt"
	"time"

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

// matmulKernel is the chosen kernel variant with its specialisation.
type matmulKernel struct {
	variant string // "reg" or "tiled"
	consts  map[string]string
}

// Every kernel variant covers a 64×64 output tile per workgroup.
const matmulTile = 64

// matmulVariant returns the kernel variant for g: "reg" (barrier-free,
// register-tiled: fastest on CPU adapters) or "tiled" (workgroup-memory
// tiles: for real GPUs). The default follows the adapter type; Variants
// ["matmul"] (set by tests or AutotuneMatMul) overrides it.
func (g *GPU) matmulVariant(transA, transB bool, bf16 bool, bias int) (matmulKernel, error) {
	def := "tiled"
	if g.Dev.Info().CPU {
		def = "reg"
	}
	v := g.variant("matmul", def)
	if v != "reg" && v != "tiled" {
		return matmulKernel{}, fmt.Errorf("unknown kernel variant %q (want reg or tiled)", v)
	}
	c := map[string]string{
		"TA":   fmt.Sprint(transA),
		"TB":   fmt.Sprint(transB),
		"BF16": fmt.Sprint(bf16),
		"BIAS": fmt.Sprintf("%du", bias),
	}
	if v == "reg" {
		c["KS"], c["EB"] = "4u", "4u"
		if bf16 {
			c["KS"], c["EB"] = "8u", "8u"
		}
	}
	return matmulKernel{variant: v, consts: c}, nil
}

// shader returns the WGSL kernel for one dispatch: the reg variant uses
// vec4 loads (matmul_reg) when the contiguous axes and element bases of A
// and B are multiples of 4 (8 for f16 B) and K is a multiple of its k step
// (4, 8 for f16 B), and scalar loads (matmul_reg_scalar) otherwise.
func (kv matmulKernel) shader(d mmDims, transA, transB, bf16 bool, oa, ob uint32) string {
	if kv.variant == "tiled" {
		return "matmul_tiled"
	}
	ca, cb := d.K, d.N // contiguous axes
	if transA {
		ca = d.M
	}
	if transB {
		cb = d.K
	}
	eb := 4
	if bf16 {
		eb = 8
	}
	if ca%4 == 0 && oa%4 == 0 && cb%eb == 0 && int(ob)%eb == 0 && d.K%eb == 0 {
		return "matmul_reg"
	}
	return "matmul_reg_scalar"
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
		if !aWhole && transA && !g.fits(itemA) {
			Free(out)
			return g.errf(op, "one batch item of a %v exceeds maxStorageBufferBindingSize and its rows cannot be split (transA)", a)
		}
		mc = maxE / d.N
		if !aWhole && !transA {
			mc = min(mc, maxE/d.K)
		}
		if mc == 0 {
			Free(out)
			return g.errf(op, "a row of out %v exceeds maxStorageBufferBindingSize", d.out)
		}
		if mc > matmulTile {
			mc -= mc % matmulTile
		}
	}
	zc = min(zc, lim)
	mc = min(mc, lim*matmulTile)
	if mc < d.M {
		zc = 1
	}

	ba, baseA := g.bind(a)
	bb, baseB := g.bind(b)
	bo, baseO := g.bind(out)
	// Without a bias the kernels never read binding 3: bind 4 bytes of a.
	bbias, baseBias := gpu.Binding{Buf: a.st.buf, Size: 4}, uint32(0)
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
				// whole batch items, or rows [m0, m0+nm) of one item;
				// a transposed item is bound whole (its rows are strided)
				start, span := offA, nz*itemA
				if nm < d.M && !transA {
					span = nm * d.K
				}
				if transA {
					start = z0 * itemA
				}
				ba, oa = g.bindElems(a, start, span)
				oa += uint32(offA - start)
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
			nx, ny := (d.N+matmulTile-1)/matmulTile, (nm+matmulTile-1)/matmulTile
			if nx > lim {
				Free(out)
				return g.errf(op, "N=%d needs %d workgroups, over the limit %d", d.N, nx, lim)
			}
			name := kv.shader(d, transA, transB, b.dtype == F16, oa, ob)
			if !g.run(op, name, kv.consts, []bool{true, true, true, false}, p, []gpu.Binding{ba, bb, bbias, bo}, nx, ny, nz) {
				Free(out)
				return nil
			}
		}
	}
	return out
}

// AutotuneMatMul times both matmul kernel variants on a 256×256×256
// product (after one warm-up run that compiles the kernel), sets
// Variants["matmul"] to the faster one and returns each variant's time in
// milliseconds. Call it once at start-up, before other work is recorded
// (it waits for the device). On error the variant choice is left as it was
// and the map holds the variants that ran.
func (g *GPU) AutotuneMatMul() map[string]float64 {
	const n = 256
	times := map[string]float64{}
	if g.Err() != nil {
		return times
	}
	g.mu.Lock()
	prev, had := g.Variants["matmul"]
	g.mu.Unlock()
	restore := func() {
		g.mu.Lock()
		if had {
			g.Variants["matmul"] = prev
		} else {
			delete(g.Variants, "matmul")
		}
		g.mu.Unlock()
	}
	a := g.Upload([]int{n, n}, benchData(1, n*n))
	b := g.Upload([]int{n, n}, benchData(2, n*n))
	defer Free(a, b)
	best, bestMs := "", 0.0
	for _, v := range []string{"reg", "tiled"} {
		g.mu.Lock()
		g.Variants["matmul"] = v
		g.mu.Unlock()
		r := RunBench(g, "", BenchCase{Op: "matmul", Setup: func(be Backend) (func() *Tensor, func()) {
			return func() *Tensor { return g.MatMul(a, b, false, false) }, nil
		}}, 20*time.Millisecond, 3)
		if r.Error != "" {
			g.ClearErr()
			continue
		}
		times[v] = r.Ms
		if best == "" || r.Ms < bestMs {
			best, bestMs = v, r.Ms
		}
	}
	restore()
	if best != "" {
		g.mu.Lock()
		g.Variants["matmul"] = best
		g.mu.Unlock()
	}
	return times
}
