package nn

import (
	"fmt"

	"retrace/nn/gpu"
)

// scaleShift binds an optional gamma/beta tensor for the norm kernels, which
// declare it as u32 words: mode 0 absent (fallback is bound in its place),
// 1 f32 (bitcast), 2 f16 (packed pairs).
func (g *GPU) scaleShift(t *Tensor, fallback gpu.Binding) (gpu.Binding, uint32, string) {
	switch {
	case t == nil:
		return fallback, 0, "0u"
	case t.dtype == F16:
		b, base := g.bind(t)
		return b, base, "2u"
	}
	b, base := g.bind(t)
	return b, base, "1u"
}

// groupNormChunk returns the elements per stats workgroup for groups of m
// elements: at least 4096 (16 per invocation), and at most 256 chunks per
// group so the merge pass stays one short loop per invocation.
func groupNormChunk(m int) int {
	ch := max(4096, (m+255)/256)
	return (ch + 255) / 256 * 256
}

// GroupNorm implements Backend in three passes: shaders/groupnorm_stats.wgsl
// (a workgroup per chunk of a group reduces shifted sums in registers and
// merges (count, mean, M2) across invocations), shaders/groupnorm_merge.wgsl
// (a workgroup per group merges the chunks' partials), and
// shaders/groupnorm_apply.wgsl (a workgroup per 1024 values of one channel
// row, fused gamma/beta/SiLU). Groups are contiguous in NCHW, so tensors larger than one
// storage binding are split into runs of whole groups.
func (g *GPU) GroupNorm(x, gamma, beta *Tensor, groups int, eps float32, silu bool) *Tensor {
	if !g.ok("groupnorm", x) || !g.ok("groupnorm", nonNil(gamma, beta)...) {
		return nil
	}
	n, ch, hw, err := groupNormShape(x, gamma, beta, groups, eps)
	if err != nil {
		return g.errf("groupnorm", "%v", err)
	}
	m := ch / groups * hw
	ng := n * groups
	per := g.maxElems() / m // groups per dispatch
	if per == 0 {
		return g.errf("groupnorm", "one group of x %v (%d values) exceeds maxStorageBufferBindingSize", x, m)
	}
	chunk := groupNormChunk(m)
	k := (m + chunk - 1) / chunk
	part := g.newTensor("groupnorm", []int{ng * k * 3}, F32)
	stats := g.newTensor("groupnorm", []int{ng * 2}, F32)
	out := g.newTensor("groupnorm", x.shape, F32)
	defer Free(part, stats)
	if part == nil || stats == nil || out == nil {
		Free(out)
		return nil
	}
	fail := func() *Tensor { Free(out); return nil }

	// part and stats are fresh tensors: their element base is 0.
	bp, _ := g.bind(part)
	for g0 := 0; g0 < ng; g0 += per {
		cg := min(per, ng-g0)
		bx, ox := g.bindElems(x, g0*m, cg*m)
		nx, ny := g.grid(cg * k)
		p := new(gpu.Params).U(uint32(m), uint32(k), uint32(chunk), uint32(nx), ox, uint32(g0), uint32(cg))
		if !g.run("groupnorm", "groupnorm_stats", nil, []bool{true, false}, p, []gpu.Binding{bx, bp}, nx, ny, 1) {
			return fail()
		}
	}
	bs, _ := g.bind(stats)
	nx, ny := g.grid(ng)
	p := new(gpu.Params).U(uint32(k), uint32(nx), uint32(ng)).F(eps)
	if !g.run("groupnorm", "groupnorm_merge", nil, []bool{true, false}, p, []gpu.Binding{bp, bs}, nx, ny, 1) {
		return fail()
	}
	bgm, ogm, gmode := g.scaleShift(gamma, bs)
	bbt, obt, bmode := g.scaleShift(beta, bs)
	consts := map[string]string{"GAMMA": gmode, "BETA": bmode, "SILU": fmt.Sprint(silu)}
	cpg := ch / groups
	lim := int(g.Dev.Limits().MaxComputeWorkgroupsPerDimension)
	perRows := max(min(per, lim/cpg), 1) // groups per dispatch: channel rows on grid y
	for g0 := 0; g0 < ng; g0 += perRows {
		cn := min(perRows, ng-g0) * m
		bx, ox := g.bindElems(x, g0*m, cn)
		bo, oo := g.bindElems(out, g0*m, cn)
		p := new(gpu.Params).U(uint32(hw), uint32(ch), uint32(cpg), uint32(g0*cpg), ox, oo, ogm, obt)
		if !g.run("groupnorm", "groupnorm_apply", consts, []bool{true, true, true, true, false}, p,
			[]gpu.Binding{bx, bs, bgm, bbt, bo}, (hw+1023)/1024, cn/hw, 1) {
			return fail()
		}
	}
	return out
}

// rowVariant returns the kernel for a per-row op: "wg" (one workgroup per
// row, workgroup-memory reductions: real GPUs) or "row" (one invocation per
// row, barrier-free: the default on CPU adapters, where barriers dominate).
// It returns the shader name and the workgroups to dispatch for nr rows.
func (g *GPU) rowVariant(op string, nr int) (string, int) {
	def := "wg"
	if g.Dev.Info().CPU {
		def = "row"
	}
	if g.variant(op, def) == "row" {
		return op + "_row", (nr + 63) / 64
	}
	return op, nr
}

// rowWorkgroup returns the workgroup size for a per-row reduction kernel:
// 64 invocations for rows up to 1024 values, 256 beyond.
func rowWorkgroup(d int) string {
	if d <= 1024 {
		return "64u"
	}
	return "256u"
}

// rowChunks calls f for runs of whole rows of d elements that fit one
// storage binding; it reports false when a single row does not fit.
func (g *GPU) rowChunks(rows, d int, f func(r0, nr int) bool) (fits, ok bool) {
	per := g.maxElems() / d
	if per == 0 {
		return false, false
	}
	for r0 := 0; r0 < rows; r0 += per {
		if !f(r0, min(per, rows-r0)) {
			return true, false
		}
	}
	return true, true
}

// LayerNorm implements Backend: shaders/layernorm.wgsl, one workgroup per
// row with workgroup-memory reductions (mean, then Σ(x−mean)²), or
// shaders/layernorm_row.wgsl on CPU adapters (see rowVariant); chunked over
// whole rows.
func (g *GPU) LayerNorm(x, gamma, beta *Tensor, eps float32) *Tensor {
	if !g.ok("layernorm", x) || !g.ok("layernorm", nonNil(gamma, beta)...) {
		return nil
	}
	d, err := layerNormShape(x, gamma, beta, eps)
	if err != nil {
		return g.errf("layernorm", "%v", err)
	}
	out := g.newTensor("layernorm", x.shape, F32)
	if out == nil {
		return nil
	}
	// An absent gamma/beta is never read; one element of x stands in.
	bx0, _ := g.bindElems(x, 0, 1)
	bgm, ogm, gmode := g.scaleShift(gamma, bx0)
	bbt, obt, bmode := g.scaleShift(beta, bx0)
	consts := map[string]string{"WG": rowWorkgroup(d), "GAMMA": gmode, "BETA": bmode}
	fits, ok := g.rowChunks(x.Numel()/d, d, func(r0, nr int) bool {
		bx, ox := g.bindElems(x, r0*d, nr*d)
		bo, oo := g.bindElems(out, r0*d, nr*d)
		name, wgs := g.rowVariant("layernorm", nr)
		nx, ny := g.grid(wgs)
		p := new(gpu.Params).U(uint32(nr), uint32(d), uint32(nx), ox, oo, ogm, obt).F(eps)
		return g.run("layernorm", name, consts, []bool{true, true, true, false}, p, []gpu.Binding{bx, bgm, bbt, bo}, nx, ny, 1)
	})
	if !fits {
		Free(out)
		return g.errf("layernorm", "a row of x %v exceeds maxStorageBufferBindingSize", x)
	}
	if !ok {
		Free(out)
		return nil
	}
	return out
}

// Softmax implements Backend: shaders/softmax.wgsl, one workgroup per row
// (max, then Σexp(x−max), both workgroup-memory reductions), or
// shaders/softmax_row.wgsl on CPU adapters (see rowVariant); chunked over
// whole rows.
func (g *GPU) Softmax(x *Tensor) *Tensor {
	if !g.ok("softmax", x) {
		return nil
	}
	if x.dtype != F32 {
		return g.errf("softmax", "x %v must be f32", x)
	}
	d := x.Dim(-1)
	out := g.newTensor("softmax", x.shape, F32)
	if out == nil {
		return nil
	}
	consts := map[string]string{"WG": rowWorkgroup(d)}
	fits, ok := g.rowChunks(x.Numel()/d, d, func(r0, nr int) bool {
		bx, ox := g.bindElems(x, r0*d, nr*d)
		bo, oo := g.bindElems(out, r0*d, nr*d)
		name, wgs := g.rowVariant("softmax", nr)
		nx, ny := g.grid(wgs)
		p := new(gpu.Params).U(uint32(nr), uint32(d), uint32(nx), ox, oo)
		return g.run("softmax", name, consts, []bool{true, false}, p, []gpu.Binding{bx, bo}, nx, ny, 1)
	})
	if !fits {
		Free(out)
		return g.errf("softmax", "a row of x %v exceeds maxStorageBufferBindingSize", x)
	}
	if !ok {
		Free(out)
		return nil
	}
	return out
}
