package nn

import (
	"fmt"
	"math"

	"retrace/nn/gpu"
)

// elementwise runs kernel name (one invocation per output element, 256 per
// workgroup) over an output of shape, in chunks that fit one storage
// binding. Each input has the output's element count and is bound over the
// same chunk. The kernel's parameters are n, nx, the element base of each
// input, the output's base, then floats.
func (g *GPU) elementwise(op, name string, consts map[string]string, ins []*Tensor, shape []int, floats ...float32) *Tensor {
	out := g.newTensor(op, shape, F32)
	if out == nil {
		return nil
	}
	n := out.Numel()
	chunk := max(g.maxElems()/256*256, 256)
	ro := make([]bool, len(ins)+1)
	for i := range ins {
		ro[i] = true
	}
	for start := 0; start < n; start += chunk {
		cn := min(chunk, n-start)
		nx, ny := g.grid((cn + 255) / 256)
		p := new(gpu.Params).U(uint32(cn), uint32(nx))
		bs := make([]gpu.Binding, 0, len(ins)+1)
		for _, t := range ins {
			b, base := g.bindElems(t, start, cn)
			bs = append(bs, b)
			p.U(base)
		}
		b, base := g.bindElems(out, start, cn)
		bs = append(bs, b)
		p.U(base).F(floats...)
		if !g.run(op, name, consts, ro, p, bs, nx, ny, 1) {
			Free(out)
			return nil
		}
	}
	return out
}

// Unary implements Backend: shaders/unary.wgsl. GELU uses an erfc fit with
// < 1.2e-7 relative error (WGSL has no erf); tanh is evaluated without
// overflow for any |x|.
func (g *GPU) Unary(op UnaryOp, x *Tensor) *Tensor {
	if !g.ok("unary", x) {
		return nil
	}
	if unaryf(op) == nil {
		return g.errf("unary", "unknown op %d", op)
	}
	if err := checkF32(x); err != nil {
		return g.errf(op.String(), "%v", err)
	}
	consts := map[string]string{"OP": fmt.Sprintf("%du", op)}
	return g.elementwise(op.String(), "unary", consts, []*Tensor{x}, x.shape)
}

// GEGLU implements Backend: shaders/geglu.wgsl, chunked over whole rows.
func (g *GPU) GEGLU(x *Tensor) *Tensor {
	if !g.ok("geglu", x) {
		return nil
	}
	shape, err := gegluShape(x)
	if err != nil {
		return g.errf("geglu", "%v", err)
	}
	out := g.newTensor("geglu", shape, F32)
	if out == nil {
		return nil
	}
	h := shape[len(shape)-1]
	rows := out.Numel() / h
	per := g.maxElems() / (2 * h) // rows per dispatch: the input is 2h wide
	if per == 0 {
		Free(out)
		return g.errf("geglu", "a row of x %v exceeds maxStorageBufferBindingSize", x)
	}
	for r0 := 0; r0 < rows; r0 += per {
		nr := min(per, rows-r0)
		bx, ox := g.bindElems(x, r0*2*h, nr*2*h)
		bo, oo := g.bindElems(out, r0*h, nr*h)
		nx, ny := g.grid((nr*h + 255) / 256)
		p := new(gpu.Params).U(uint32(nr*h), uint32(nx), ox, oo, uint32(h))
		if !g.run("geglu", "geglu", nil, []bool{true, false}, p, []gpu.Binding{bx, bo}, nx, ny, 1) {
			Free(out)
			return nil
		}
	}
	return out
}

// Axpby implements Backend: shaders/axpby.wgsl.
func (g *GPU) Axpby(a float32, x *Tensor, b float32, y *Tensor) *Tensor {
	if !g.ok("axpby", x, y) {
		return nil
	}
	if err := axpbyCheck(x, y); err != nil {
		return g.errf("axpby", "%v", err)
	}
	return g.elementwise("axpby", "axpby", nil, []*Tensor{x, y}, x.shape, a, b)
}

// Affine implements Backend: shaders/affine.wgsl.
func (g *GPU) Affine(x *Tensor, mul, add float32) *Tensor {
	if !g.ok("affine", x) {
		return nil
	}
	if err := checkF32(x); err != nil {
		return g.errf("affine", "%v", err)
	}
	return g.elementwise("affine", "affine", nil, []*Tensor{x}, x.shape, mul, add)
}

// Clamp implements Backend: shaders/clamp.wgsl.
func (g *GPU) Clamp(x *Tensor, lo, hi float32) *Tensor {
	if !g.ok("clamp", x) {
		return nil
	}
	if err := checkF32(x); err != nil {
		return g.errf("clamp", "%v", err)
	}
	return g.elementwise("clamp", "clamp", nil, []*Tensor{x}, x.shape, lo, hi)
}

// simplifyPermute drops size-1 axes and merges input axes that stay
// adjacent and in order in the output, so the kernel decomposes fewer
// coordinates and the split path has the largest possible leading axes.
func simplifyPermute(shape []int, perm []int) ([]int, []int) {
	// keep non-unit axes, renumbered
	idx := make([]int, len(shape))
	var s []int
	for i, d := range shape {
		idx[i] = -1
		if d != 1 {
			idx[i] = len(s)
			s = append(s, d)
		}
	}
	var p []int
	for _, a := range perm {
		if idx[a] >= 0 {
			p = append(p, idx[a])
		}
	}
	if len(s) == 0 {
		return []int{1}, []int{0}
	}
	// merge runs a, a+1 that are consecutive in p
	var groups [][]int
	for _, a := range p {
		if l := len(groups); l > 0 && groups[l-1][len(groups[l-1])-1]+1 == a {
			groups[l-1] = append(groups[l-1], a)
			continue
		}
		groups = append(groups, []int{a})
	}
	// input order of the groups
	order := make([]int, len(groups))
	for i := range order {
		order[i] = i
	}
	for i := 1; i < len(order); i++ { // insertion sort by first input axis
		for j := i; j > 0 && groups[order[j]][0] < groups[order[j-1]][0]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	newShape := make([]int, len(groups))
	newAxis := make([]int, len(groups)) // group index → merged input axis
	for k, gi := range order {
		n := 1
		for _, a := range groups[gi] {
			n *= s[a]
		}
		newShape[k] = n
		newAxis[gi] = k
	}
	return newShape, newAxis
}

// Permute implements Backend: shaders/permute.wgsl, one invocation per
// output element of a box. When x or the output exceeds one storage binding
// (after merging axes that stay adjacent), the work is split into boxes
// whose spans in x and in the output each fit a binding: the leading axes
// of each layout are taken one index at a time down to the first axis whose
// row fits, which is taken in blocks of rows.
func (g *GPU) Permute(x *Tensor, perm ...int) *Tensor {
	if !g.ok("permute", x) {
		return nil
	}
	shape, err := permuteShape(x, perm)
	if err != nil {
		return g.errf("permute", "%v", err)
	}
	out := g.newTensor("permute", shape, F32)
	if out == nil {
		return nil
	}
	is, p := simplifyPermute(x.shape, perm) // merged input shape, output axis i reads input axis p[i]
	r := len(is)
	ist := contiguousStrides(is)
	os := make([]int, r)
	for i, a := range p {
		os[i] = is[a]
	}
	ost := contiguousStrides(os)

	// box extent per input axis
	lim := g.maxElems()
	step := append([]int(nil), is...)
	limit := func(strides []int, axis func(i int) int) {
		for i, st := range strides {
			if st <= lim {
				step[axis(i)] = min(step[axis(i)], lim/st)
				return
			}
			step[axis(i)] = 1
		}
	}
	if x.Numel() > lim {
		limit(ist, func(i int) int { return i })
	}
	if out.Numel() > lim {
		limit(ost, func(i int) int { return p[i] })
	}

	origin := make([]int, r)
	for {
		dims, istr := make([]int, r), make([]int, r)
		inStart, inSpan, outStart, outSpan := 0, 1, 0, 1
		for i, a := range p {
			dims[i] = min(step[a], is[a]-origin[a])
			istr[i] = ist[a]
			inStart += origin[a] * ist[a]
			inSpan += (dims[i] - 1) * ist[a]
			outStart += origin[a] * ost[i]
			outSpan += (dims[i] - 1) * ost[i]
		}
		bx, ib := g.bindElems(x, inStart, inSpan)
		bo, ob := g.bindElems(out, outStart, outSpan)
		n := numel(dims)
		nx, ny := g.grid((n + 255) / 256)
		pr := new(gpu.Params).U(uint32(n), uint32(r), uint32(nx), ib, ob, 0, 0, 0)
		pr.U(vec8(dims)...).U(vec8(ost)...).U(vec8(istr)...)
		if !g.run("permute", "permute", nil, []bool{true, false}, pr, []gpu.Binding{bx, bo}, nx, ny, 1) {
			Free(out)
			return nil
		}
		// next box origin (odometer over input axes, last fastest)
		a := r - 1
		for ; a >= 0; a-- {
			origin[a] += step[a]
			if origin[a] < is[a] {
				break
			}
			origin[a] = 0
		}
		if a < 0 {
			return out
		}
	}
}

// TimestepEmbedding implements Backend: shaders/timestep_embedding.wgsl.
func (g *GPU) TimestepEmbedding(t *Tensor, dim int, flipSinToCos bool, downscaleFreqShift float32, scale float32, maxPeriod float32) *Tensor {
	if !g.ok("timestep_embedding", t) {
		return nil
	}
	if err := timestepCheck(t, dim, maxPeriod); err != nil {
		return g.errf("timestep_embedding", "%v", err)
	}
	b := t.shape[0]
	if !g.fits(b * dim) {
		return g.errf("timestep_embedding", "output [%d %d] exceeds maxStorageBufferBindingSize", b, dim)
	}
	out := g.newTensor("timestep_embedding", []int{b, dim}, F32)
	if out == nil {
		return nil
	}
	half := dim / 2
	bt, ot := g.bind(t)
	bo, oo := g.bind(out)
	n := b * dim
	nx, ny := g.grid((n + 255) / 256)
	p := new(gpu.Params).U(uint32(n), uint32(nx), ot, oo, uint32(dim), uint32(half))
	p.F(float32(math.Log(float64(maxPeriod))), float32(half)-downscaleFreqShift, scale)
	consts := map[string]string{"FLIP": fmt.Sprint(flipSinToCos)}
	if !g.run("timestep_embedding", "timestep_embedding", consts, []bool{true, false}, p, []gpu.Binding{bt, bo}, nx, ny, 1) {
		Free(out)
		return nil
	}
	return out
}

// reduceItems is the number of elements one workgroup of shaders/reduce.wgsl
// and shaders/squared_error.wgsl folds into a partial (WG·ITEMS).
const reduceItems = 256 * 16

// reducePartials finishes a two-level reduction: the partials of the first
// level are reduced by shaders/reduce.wgsl (one workgroup per reduceItems
// values) until one value is left; the last level multiplies by scale.
func (g *GPU) reducePartials(op string, part *Tensor, maxAbs bool, scale float32) *Tensor {
	consts := map[string]string{"MAXABS": fmt.Sprint(maxAbs)}
	for part.Numel() > 1 {
		n := part.Numel()
		np := (n + reduceItems - 1) / reduceItems
		next := g.newTensor(op, []int{np}, F32)
		if next == nil {
			Free(part)
			return nil
		}
		s := float32(1)
		if np == 1 {
			s = scale
		}
		bp, op0 := g.bind(part)
		bn, on := g.bind(next)
		nx, ny := g.grid(np)
		p := new(gpu.Params).U(uint32(n), uint32(nx), op0, on).F(s)
		ok := g.run(op, "reduce", consts, []bool{true, false}, p, []gpu.Binding{bp, bn}, nx, ny, 1)
		Free(part)
		if !ok {
			Free(next)
			return nil
		}
		part = next
	}
	return part
}

// Reduce implements Backend: shaders/reduce.wgsl, two-level (per-workgroup
// partials, then the partials reduced again), chunked over the binding limit.
func (g *GPU) Reduce(op ReduceOp, x *Tensor) *Tensor {
	if !g.ok("reduce", x) {
		return nil
	}
	if op > MaxAbs {
		return g.errf("reduce", "unknown op %d", op)
	}
	if err := checkF32(x); err != nil {
		return g.errf(op.String(), "%v", err)
	}
	n := x.Numel()
	scale := float32(1)
	if op == Mean {
		scale = float32(1 / float64(n))
	}
	chunk := max(g.maxElems()/256*256, 256)
	np := 0
	for s := 0; s < n; s += chunk {
		np += (min(chunk, n-s) + reduceItems - 1) / reduceItems
	}
	part := g.newTensor(op.String(), []int{np}, F32)
	if part == nil {
		return nil
	}
	consts := map[string]string{"MAXABS": fmt.Sprint(op == MaxAbs)}
	pi := 0
	for s := 0; s < n; s += chunk {
		cn := min(chunk, n-s)
		w := (cn + reduceItems - 1) / reduceItems
		sc := float32(1)
		if np == 1 {
			sc = scale
		}
		bx, ox := g.bindElems(x, s, cn)
		bp, op0 := g.bind(part)
		nx, ny := g.grid(w)
		p := new(gpu.Params).U(uint32(cn), uint32(nx), ox, op0+uint32(pi)).F(sc)
		if !g.run(op.String(), "reduce", consts, []bool{true, false}, p, []gpu.Binding{bx, bp}, nx, ny, 1) {
			Free(part)
			return nil
		}
		pi += w
	}
	return g.reducePartials(op.String(), part, op == MaxAbs, scale)
}

// SquaredError implements Backend: shaders/squared_error.wgsl for the first
// level, shaders/reduce.wgsl for the partials.
func (g *GPU) SquaredError(a, b *Tensor) *Tensor {
	if !g.ok("squared_error", a, b) {
		return nil
	}
	if err := axpbyCheck(a, b); err != nil {
		return g.errf("squared_error", "%v", err)
	}
	n := a.Numel()
	chunk := max(g.maxElems()/256*256, 256)
	np := 0
	for s := 0; s < n; s += chunk {
		np += (min(chunk, n-s) + reduceItems - 1) / reduceItems
	}
	part := g.newTensor("squared_error", []int{np}, F32)
	if part == nil {
		return nil
	}
	pi := 0
	for s := 0; s < n; s += chunk {
		cn := min(chunk, n-s)
		w := (cn + reduceItems - 1) / reduceItems
		ba, oa := g.bindElems(a, s, cn)
		bb, ob := g.bindElems(b, s, cn)
		bp, op0 := g.bind(part)
		nx, ny := g.grid(w)
		p := new(gpu.Params).U(uint32(cn), uint32(nx), oa, ob, op0+uint32(pi))
		if !g.run("squared_error", "squared_error", nil, []bool{true, true, false}, p, []gpu.Binding{ba, bb, bp}, nx, ny, 1) {
			Free(part)
			return nil
		}
		pi += w
	}
	return g.reducePartials("squared_error", part, false, 1)
}
