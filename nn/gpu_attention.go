package nn

import (
	"fmt"

	"retrace/nn/gpu"
)

// attnMaxHeadDim is the largest head dim the attention kernels support: each
// invocation keeps a query row and its accumulator (2·D floats) in private
// memory, and the tiled kernel needs at least one K and V row in workgroup
// memory.
const attnMaxHeadDim = 256

// Attention implements Backend with a flash-attention kernel: the online
// softmax folds the keys into each query row's running max, sum and
// accumulator, so at most one tile of scores exists per workgroup and memory
// stays at the size of q, k, v and out.
//
// Variants ("attention"): "reg" (shaders/attention_reg.wgsl, no workgroup
// memory or barriers, a few query rows per invocation; the default on CPU
// adapters) and "tiled" (shaders/attention_tiled.wgsl, K/V tiles in
// workgroup memory; the default on real GPUs).
//
// Tensors larger than one storage binding are split: one dispatch per batch
// element and run of query rows (q and out rows are contiguous); each
// batch element's k and v must fit one binding.
func (g *GPU) Attention(q, k, v *Tensor, heads int, scale float32, causal bool) *Tensor {
	const op = "attention"
	if !g.ok(op, q, k, v) {
		return nil
	}
	s, err := checkAttention(q, k, v, heads)
	if err != nil {
		return g.errf(op, "%v", err)
	}
	if s.D > attnMaxHeadDim {
		return g.errf(op, "q %v: head dim %d (%d heads) exceeds the supported maximum %d", q.shape, s.D, heads, attnMaxHeadDim)
	}
	hd := s.H * s.D
	if !g.fits(s.Lk * hd) {
		return g.errf(op, "k %v: one batch element (%d floats) exceeds maxStorageBufferBindingSize (%d floats)", k.shape, s.Lk*hd, g.maxElems())
	}
	def := "tiled"
	if g.Dev.Info().CPU {
		def = "reg"
	}
	variant := g.variant(op, def)
	d4 := (s.D + 3) / 4
	var name string
	var consts map[string]string
	var unitRows, unitsPerWG int // query rows per work unit; work units per workgroup
	var keysPer int              // keys per dispatch
	switch variant {
	case "reg":
		// More rows per invocation reuse each k/v load more (8 rows: ~2x
		// over 4 for SD cross-attention on lavapipe) but cost private memory.
		rows := 8
		switch {
		case s.D > 64:
			rows = 2
		case s.D > 48:
			rows = 4
		}
		const kb = 8
		name, unitRows, unitsPerWG = "attention_reg", rows, 64 // a unit is one invocation
		consts = map[string]string{"D": fmt.Sprintf("%du", s.D), "ROWS": fmt.Sprintf("%du", rows), "KB": fmt.Sprintf("%du", kb)}
		// Loop iterations: q/state load and store, then per key the two
		// 4-wide d loops, per block the rescale of ROWS accumulators.
		keysPer = (attnLoopBudget - 2*rows*s.D - 100) * kb / ((2*d4+6)*kb + rows*s.D + 10)
	case "tiled":
		// 2·BK·D floats of workgroup memory.
		bk := min(32, int(g.Dev.Limits().MaxComputeWorkgroupStorageSize)/(8*s.D))
		if bk < 1 {
			return g.errf(op, "head dim %d needs %d bytes of workgroup memory, the device has %d", s.D, 8*s.D, g.Dev.Limits().MaxComputeWorkgroupStorageSize)
		}
		name, unitRows, unitsPerWG = "attention_tiled", 64, 1 // a unit is one workgroup
		consts = map[string]string{"D": fmt.Sprintf("%du", s.D), "BK": fmt.Sprintf("%du", bk)}
		perTile := s.D + (bk*s.D+63)/64 + 10
		keysPer = (attnLoopBudget - 2*s.D - 100) * bk / ((2*d4+6)*bk + perTile) / bk * bk
		keysPer = max(keysPer, bk)
	default:
		return g.errf(op, "unknown variant %q (want reg or tiled)", variant)
	}
	if !g.Dev.Info().CPU {
		keysPer = s.Lk // the loop budget is lavapipe's
	}
	keysPer = max(keysPer, 1)
	out := g.newTensor(op, q.shape, F32)
	if out == nil {
		return nil
	}
	// (m, l) per (batch, head, query row) of one dispatch, carried between
	// the dispatches of a split key axis.
	whole := g.fits(q.Numel()) && g.fits(k.Numel()) && g.fits(2*s.B*s.H*s.Lq)
	chunk := min(g.maxElems()/hd, g.maxElems()/(2*s.H))
	if chunk < 1 {
		Free(out)
		return g.errf(op, "q %v: one query row does not fit maxStorageBufferBindingSize", q.shape)
	}
	mlRows := s.B * s.Lq
	if !whole {
		mlRows = min(chunk, s.Lq)
	}
	// A single key range never touches ml, but a distinct buffer is bound
	// (WebGPU forbids aliasing writable bindings).
	mlBytes := uint64(16)
	if keysPer < s.Lk {
		mlBytes = uint64(2 * s.H * mlRows * 4)
	}
	ml, err := g.Dev.Alloc(mlBytes)
	if err != nil {
		Free(out)
		return g.errf(op, "scratch for %d rows: %v", mlRows, err)
	}
	defer ml.Free() // pending dispatches still see it
	// dispatch runs nb batch elements of lq query rows starting at query row0
	// of batch b0 (nb > 1 only with row0 == 0 and lq == s.Lq), keys [k0, k1).
	dispatch := func(b0, nb, row0, lq, k0, k1 int) bool {
		var bq, bo, bk, bv, bml gpu.Binding
		var oq, oo, ok, ov uint32
		if nb == s.B {
			bq, oq = g.bind(q)
			bo, oo = g.bind(out)
			bk, ok = g.bind(k)
			bv, ov = g.bind(v)
		} else {
			start := (b0*s.Lq + row0) * hd
			bq, oq = g.bindElems(q, start, lq*hd)
			bo, oo = g.bindElems(out, start, lq*hd)
			bk, ok = g.bindElems(k, b0*s.Lk*hd, s.Lk*hd)
			bv, ov = g.bindElems(v, b0*s.Lk*hd, s.Lk*hd)
		}
		bml = gpu.Binding{Buf: ml, Size: min(mlBytes, uint64(2*s.H*nb*lq*4))}
		groups := nb * s.H * ((lq + unitRows - 1) / unitRows)
		nx, ny := g.grid((groups + unitsPerWG - 1) / unitsPerWG)
		p := new(gpu.Params).U(uint32(nb), uint32(lq), uint32(s.Lk), uint32(s.H), uint32(hd), uint32(row0), b2u(causal), uint32(nx))
		p.U(uint32(s.Lq*hd), uint32(s.Lk*hd), oq, ok, ov, oo).F(scale)
		p.U(uint32(k0), uint32(k1), b2u(k0 == 0), b2u(k1 == s.Lk), 0)
		return g.run(op, name, consts, []bool{true, true, true, false, false}, p, []gpu.Binding{bq, bk, bv, bo, bml}, nx, ny, 1)
	}
	run := func(b0, nb, row0, lq int) bool {
		for k0 := 0; k0 < s.Lk; k0 += keysPer {
			if !dispatch(b0, nb, row0, lq, k0, min(k0+keysPer, s.Lk)) {
				return false
			}
		}
		return true
	}
	if whole {
		if !run(0, s.B, 0, s.Lq) {
			Free(out)
			return nil
		}
		return out
	}
	for b := 0; b < s.B; b++ {
		for r := 0; r < s.Lq; r += chunk {
			if !run(b, 1, r, min(chunk, s.Lq-r)) {
				Free(out)
				return nil
			}
		}
	}
	return out
}

// attnLoopBudget bounds the loop iterations of one invocation on CPU
// adapters: lavapipe (gallivm) stops every loop of an invocation once 65535
// iterations have run in total, silently leaving the output unwritten, so
// long key axes are split over dispatches there.
const attnLoopBudget = 50000

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}
