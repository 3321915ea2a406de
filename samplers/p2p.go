package samplers

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"retrace/nn"
)

// Prompt-to-prompt (Hertz et al., "Prompt-to-Prompt Image Editing with
// Cross Attention Control", 2022). A P2P controller is installed as the
// UNet's AttentionHook while a source and a target branch are denoised in
// one batch. Batch layout of every UNet call (see Edit):
//
//	[uncond_src, uncond_tgt, cond_src, cond_tgt]   (classifier-free guidance)
//	[cond_src, cond_tgt]                           (guidance 1)
//
// The edited pair is always the last two rows (source, target); as in the
// reference implementation the unconditional rows are left untouched. Only
// the target row's attention maps are edited:
//
//   - cross-attention (attn2), §3.2: M̂_tgt = (M_src·A)·w + M_tgt⊙(1−α)·w, where
//     A[i,j] = α_j·[mapper(j) = i] aligns target token j with source token
//     mapper(j) (word swap: identity, equal token counts; refine: longest
//     common subsequence of the token ids), α_j ∈ {0,1} says whether token j
//     is replaced at this step (CrossReplace / TokenCrossReplace), and w_j is
//     the reweighting factor (1 unless Reweight names j);
//   - self-attention (attn1) injection: M̂_tgt = M_src for the first
//     SelfReplace fraction of the steps in layers with at most SelfMaxTokens
//     queries (P2P injects at 16×16 and coarser: 256);
//   - local blend (§3.3 "LocalBlend"): the cross-attention maps of chosen
//     words are summed over heads, layers of one resolution and the steps so
//     far, normalised by their maximum, thresholded, dilated (P2P's 3×3 max
//     pool), united over source and target, and the target latents are
//     blended after each step: x_tgt ← x_src + mask·(x_tgt − x_src).
//
// All maps stay on the backend; Go only computes the [Lk, Lk] alignment
// matrix and the [Lk] weight vectors (once per phase of the schedule).

// P2PMode chooses how target cross-attention maps relate to source maps.
type P2PMode int

const (
	// P2PNone edits no cross-attention maps (reweight, self-attention
	// injection and local blend still apply).
	P2PNone P2PMode = iota
	// P2PReplace is word swap: token j of the target takes the maps of
	// token j of the source; both prompts must have the same number of
	// tokens (swapped words of equal token length).
	P2PReplace
	// P2PRefine aligns prompts that add or remove words: target tokens in a
	// longest common subsequence of the two token-id sequences take the
	// maps of their source partners; other tokens keep their own maps.
	P2PRefine
)

// P2POptions configures a prompt-to-prompt controller.
type P2POptions struct {
	Mode P2PMode
	// ContextLen is the length Lk of the prompt embeddings (77 for CLIP).
	ContextLen int
	// SourceTokens, TargetTokens are the token ids as fed to the text
	// encoder (start token … end token, without padding); positions past
	// them are padding. Needed by Replace and Refine.
	SourceTokens, TargetTokens []int
	// CrossReplace is the fraction of steps, from the first, in which the
	// target's cross-attention maps take the aligned source maps.
	CrossReplace float64
	// TokenCrossReplace overrides CrossReplace for chosen target token
	// positions (P2P's per-word cross_replace_steps).
	TokenCrossReplace map[int]float64
	// SelfReplace is the fraction of steps with self-attention injection.
	SelfReplace float64
	// SelfMaxTokens limits injection to self-attention layers with at most
	// this many queries (P2P: 256); 0 means every layer.
	SelfMaxTokens int
	// Reweight scales the target's cross-attention to chosen token
	// positions at every step (P2P's equalizer; no renormalisation).
	Reweight map[int]float32
	// Blend, if set, enables the local blend.
	Blend *LocalBlend
}

// LocalBlend configures P2P's local blend.
type LocalBlend struct {
	// SourceWords, TargetWords are token positions of the words whose
	// cross-attention delimits the edited region in each prompt.
	SourceWords, TargetWords []int
	// Res is the height of the attention maps used (a layer whose query
	// count is Res × Res·W/H); SD uses 16 for 64×64 latents.
	Res int
	// Threshold in [0, 1): mask = map/max(map) > Threshold (P2P: 0.3).
	Threshold float64
	// Start is the fraction of steps before blending begins.
	Start float64
	// Dilate is the radius of the max pool before thresholding (P2P: 1).
	Dilate int
}

// P2P is a prompt-to-prompt attention controller. Install Hook as the
// UNet's AttentionHook, call SetStep before each UNet call and Blend after
// each sampler step (Edit does all of this).
type P2P struct {
	o       P2POptions
	lk      int
	mapper  []int     // target position → source position, −1 none
	alphaAt []float64 // per target token: replacement fraction
	weights []float32 // per target token: reweight factor
	step    int
	steps   int
	latH    int
	latW    int
	err     error

	// Per-step device tensors (rebuilt when the phase changes).
	phaseKey string
	aMat     *nn.Tensor // [Lk, Lk] = A·diag(w), nil when no token is replaced
	cVec     *nn.Tensor // [Lk] = (1−α)⊙w
	wVec     *nn.Tensor // [Lk] = w, nil when all weights are 1
	selfOn   bool

	// Local blend state.
	blendSel *nn.Tensor // [2, Lk, 1] one-hot word selections (src, tgt)
	blendAcc *nn.Tensor // [2, 1, Lq] accumulated maps
	onesH    map[int]*nn.Tensor
	lastMask *nn.Tensor // [1, 1, H, W] mask of the latest blend (tests)

	// inspect, if set (tests), sees every edited cross-attention call:
	// the target's own maps, the source maps and the edited target maps.
	inspect func(name string, own, base, edited *nn.Tensor)
}

// NewP2P validates the options and builds a controller.
func NewP2P(be nn.Backend, o P2POptions) (*P2P, error) {
	lk := o.ContextLen
	if lk <= 0 {
		return nil, fmt.Errorf("p2p: context length %d (want the prompt embeddings' length, e.g. 77)", lk)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"CrossReplace", o.CrossReplace}, {"SelfReplace", o.SelfReplace}} {
		if !(f.v >= 0 && f.v <= 1) {
			return nil, fmt.Errorf("p2p: %s fraction %v outside [0, 1]", f.name, f.v)
		}
	}
	if o.SelfMaxTokens < 0 {
		return nil, fmt.Errorf("p2p: SelfMaxTokens %d < 0", o.SelfMaxTokens)
	}
	checkTok := func(what string, i int) error {
		if i < 0 || i >= lk {
			return fmt.Errorf("p2p: %s token index %d out of range [0, %d)", what, i, lk)
		}
		return nil
	}
	p := &P2P{o: o, lk: lk, onesH: map[int]*nn.Tensor{}}
	p.mapper = make([]int, lk)
	for j := range p.mapper {
		p.mapper[j] = -1
	}
	if len(o.SourceTokens) > lk || len(o.TargetTokens) > lk {
		return nil, fmt.Errorf("p2p: %d source / %d target tokens, more than the context length %d", len(o.SourceTokens), len(o.TargetTokens), lk)
	}
	switch o.Mode {
	case P2PNone:
	case P2PReplace:
		if len(o.SourceTokens) == 0 || len(o.SourceTokens) != len(o.TargetTokens) {
			return nil, fmt.Errorf("p2p: word swap needs source and target prompts of equal token counts (have %d and %d; use P2PRefine to add words)", len(o.SourceTokens), len(o.TargetTokens))
		}
		for j := range p.mapper {
			p.mapper[j] = j
		}
	case P2PRefine:
		if len(o.SourceTokens) == 0 || len(o.TargetTokens) == 0 {
			return nil, fmt.Errorf("p2p: refine needs the source and target token ids")
		}
		p.mapper = RefineMapper(o.SourceTokens, o.TargetTokens, lk)
	default:
		return nil, fmt.Errorf("p2p: unknown mode %d", o.Mode)
	}
	p.alphaAt = make([]float64, lk)
	if o.Mode != P2PNone {
		for j := range p.alphaAt {
			p.alphaAt[j] = o.CrossReplace
		}
	}
	for _, j := range editSortedKeys(o.TokenCrossReplace) {
		f := o.TokenCrossReplace[j]
		if err := checkTok("TokenCrossReplace", j); err != nil {
			return nil, err
		}
		if !(f >= 0 && f <= 1) {
			return nil, fmt.Errorf("p2p: TokenCrossReplace[%d] fraction %v outside [0, 1]", j, f)
		}
		if o.Mode == P2PNone {
			return nil, fmt.Errorf("p2p: TokenCrossReplace needs P2PReplace or P2PRefine")
		}
		p.alphaAt[j] = f
	}
	p.weights = make([]float32, lk)
	for j := range p.weights {
		p.weights[j] = 1
	}
	for _, j := range editSortedKeys(o.Reweight) {
		w := o.Reweight[j]
		if err := checkTok("Reweight", j); err != nil {
			return nil, err
		}
		if math.IsNaN(float64(w)) || math.IsInf(float64(w), 0) {
			return nil, fmt.Errorf("p2p: Reweight[%d] = %v", j, w)
		}
		p.weights[j] = w
	}
	if b := o.Blend; b != nil {
		if len(b.SourceWords) == 0 && len(b.TargetWords) == 0 {
			return nil, fmt.Errorf("p2p: local blend needs at least one source or target word")
		}
		if !(b.Threshold >= 0 && b.Threshold < 1) {
			return nil, fmt.Errorf("p2p: local blend threshold %v outside [0, 1)", b.Threshold)
		}
		if !(b.Start >= 0 && b.Start <= 1) {
			return nil, fmt.Errorf("p2p: local blend Start fraction %v outside [0, 1]", b.Start)
		}
		if b.Res <= 0 || b.Dilate < 0 {
			return nil, fmt.Errorf("p2p: local blend resolution %d / dilation %d", b.Res, b.Dilate)
		}
		sel := make([]float32, 2*lk)
		for r, ws := range [][]int{b.SourceWords, b.TargetWords} {
			for _, i := range ws {
				if err := checkTok("LocalBlend", i); err != nil {
					return nil, err
				}
				sel[r*lk+i] = 1
			}
		}
		p.blendSel = be.Upload([]int{2, lk, 1}, sel)
	}
	return p, nil
}

// RefineMapper aligns target tokens with source tokens for P2P's refine
// edit: mapper[j] is the source position of target position j, or −1. The
// start…end tokens are aligned by a longest common subsequence of the ids
// (ties prefer the earliest source match); padding positions j ≥ len(tgt)
// map to source padding j − len(tgt) + len(src) while that is inside lk.
// (The reference uses a global alignment that also pairs mismatched
// tokens, and maps padding j to j.)
func RefineMapper(src, tgt []int, lk int) []int {
	n, m := len(src), len(tgt)
	L := make([][]int, n+1)
	for i := range L {
		L[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if src[i] == tgt[j] {
				L[i][j] = L[i+1][j+1] + 1
			} else {
				L[i][j] = max(L[i+1][j], L[i][j+1])
			}
		}
	}
	mapper := make([]int, lk)
	for j := range mapper {
		mapper[j] = -1
	}
	for i, j := 0, 0; i < n && j < m; {
		switch {
		case src[i] == tgt[j]:
			mapper[j] = i
			i++
			j++
		case L[i+1][j] >= L[i][j+1]:
			i++
		default:
			j++
		}
	}
	for j := m; j < lk; j++ {
		if k := j - m + n; k < lk {
			mapper[j] = k
		}
	}
	return mapper
}

// Hook returns the attention hook to install as the UNet's AttentionHook.
func (p *P2P) Hook() nn.AttentionHook { return p.hook }

// Err returns the first error the hook met (a batch or context that does
// not match the controller).
func (p *P2P) Err() error { return p.err }

// Free releases the controller's device tensors.
func (p *P2P) Free() {
	nn.Free(p.aMat, p.cVec, p.wVec, p.blendSel, p.blendAcc, p.lastMask)
	for _, t := range p.onesH {
		nn.Free(t)
	}
	p.aMat, p.cVec, p.wVec, p.blendSel, p.blendAcc, p.lastMask = nil, nil, nil, nil, nil, nil
	p.onesH = map[int]*nn.Tensor{}
}

// Begin resets the per-run state for a run of steps steps on latents of
// h×w.
func (p *P2P) Begin(steps, h, w int) {
	p.steps, p.latH, p.latW = steps, h, w
	p.step = 0
	p.err = nil
	nn.Free(p.blendAcc, p.lastMask)
	p.blendAcc, p.lastMask = nil, nil
	p.phaseKey = "-"
}

// active reports whether a control with fraction f is on at step k of n:
// k < ⌊f·n⌋ (so f = 1 covers every step).
func editActive(f float64, k, n int) bool { return k < int(math.Floor(f*float64(n)+1e-9)) }

// SetStep selects step k (from 0) and rebuilds the per-phase tensors when
// the set of replaced tokens changes.
func (p *P2P) SetStep(be nn.Backend, k int) {
	p.step = k
	p.selfOn = editActive(p.o.SelfReplace, k, p.steps)
	var key strings.Builder
	alpha := make([]float32, p.lk)
	for j, f := range p.alphaAt {
		if p.mapper[j] >= 0 && editActive(f, k, p.steps) {
			alpha[j] = 1
			key.WriteByte('1')
		} else {
			key.WriteByte('0')
		}
	}
	if key.String() == p.phaseKey {
		return
	}
	p.phaseKey = key.String()
	nn.Free(p.aMat, p.cVec, p.wVec)
	p.aMat, p.cVec, p.wVec = nil, nil, nil
	lk := p.lk
	// Any Reweight entry (even 1) routes the target through the explicit
	// maps, so reweighting by 1 is a real no-op of that path.
	anyAlpha, anyW := false, len(p.o.Reweight) > 0
	a := make([]float32, lk*lk)
	c := make([]float32, lk)
	for j := 0; j < lk; j++ {
		w := p.weights[j]
		if alpha[j] != 0 {
			anyAlpha = true
			a[p.mapper[j]*lk+j] = w
		} else {
			c[j] = w
		}
	}
	if anyAlpha {
		p.aMat = be.Upload([]int{lk, lk}, a)
		p.cVec = be.Upload([]int{lk}, c)
	}
	if anyW {
		p.wVec = be.Upload([]int{lk}, p.weights)
	}
}

func (p *P2P) fail(format string, args ...any) {
	if p.err == nil {
		p.err = fmt.Errorf("p2p: "+format, args...)
	}
}

// attend is the unedited attention (the fused kernel where it applies).
func editAttend(be nn.Backend, q, k, v *nn.Tensor, heads int, scale float32) *nn.Tensor {
	if q.Dim(2)/heads > nn.MaxFusedHeadDim {
		return nn.AttentionExplicit(be, q, k, v, heads, scale)
	}
	return be.Attention(q, k, v, heads, scale, false)
}

// rows returns views of rows [start, start+n) of q, k, v.
func editRows(start, n int, ts ...*nn.Tensor) []*nn.Tensor {
	out := make([]*nn.Tensor, len(ts))
	for i, t := range ts {
		out[i] = nn.Narrow(t, start, n)
	}
	return out
}

func (p *P2P) hook(be nn.Backend, name string, q, k, v *nn.Tensor, heads int, scale float32) *nn.Tensor {
	if p.err != nil {
		return nil
	}
	cross := strings.HasSuffix(name, "attn2")
	b, lq, lk := q.Dim(0), q.Dim(1), k.Dim(1)
	if b != 2 && b != 4 {
		p.fail("%s: batch %d, want 4 ([uncond_src, uncond_tgt, cond_src, cond_tgt]) or 2 ([src, tgt])", name, b)
		return nil
	}
	if cross && lk != p.lk {
		p.fail("%s: context length %d, the controller was built for %d", name, lk, p.lk)
		return nil
	}
	selfEdit := !cross && p.selfOn && (p.o.SelfMaxTokens == 0 || lq <= p.o.SelfMaxTokens)
	crossEdit := cross && (p.aMat != nil || p.wVec != nil)
	collect := cross && p.blendSel != nil && p.blendRows(lq) > 0
	if !selfEdit && !crossEdit && !collect {
		return nil
	}
	if selfEdit {
		// Target self-attention maps ← source maps; the target keeps its
		// own values.
		src := editRows(b-2, 1, q, k)
		probs := nn.AttentionProbs(be, src[0], src[1], heads, scale)
		nn.Free(src...)
		return p.withTarget(be, q, k, v, heads, scale, probs)
	}
	pair := editRows(b-2, 2, q, k)
	probs := nn.AttentionProbs(be, pair[0], pair[1], heads, scale) // [2, H, Lq, Lk]
	nn.Free(pair...)
	if collect {
		p.collect(be, probs, heads, lq)
	}
	if !crossEdit {
		nn.Free(probs)
		return nil
	}
	base, own := nn.Narrow(probs, 0, 1), nn.Narrow(probs, 1, 1)
	var edited *nn.Tensor
	if p.aMat != nil {
		b2 := nn.Reshape(base, heads*lq, lk)
		moved := be.MatMul(b2, p.aMat, false, false) // M_src·A·diag(w)
		kept := be.Binary(nn.Mul, own, p.cVec)       // M_tgt⊙(1−α)⊙w
		m4 := nn.Reshape(moved, 1, heads, lq, lk)
		edited = be.Binary(nn.Add, m4, kept)
		nn.Free(b2, moved, kept, m4)
	} else {
		edited = be.Binary(nn.Mul, own, p.wVec)
	}
	if p.inspect != nil {
		p.inspect(name, own, base, edited)
	}
	nn.Free(base, own, probs)
	return p.withTarget(be, q, k, v, heads, scale, edited)
}

// withTarget returns the attention output of every row, the target's
// (last row) computed from the maps tprobs [1, H, Lq, Lk]; it frees tprobs.
func (p *P2P) withTarget(be nn.Backend, q, k, v *nn.Tensor, heads int, scale float32, tprobs *nn.Tensor) *nn.Tensor {
	b := q.Dim(0)
	rest := editRows(0, b-1, q, k, v)
	head := editAttend(be, rest[0], rest[1], rest[2], heads, scale)
	nn.Free(rest...)
	vt := nn.Narrow(v, b-1, 1)
	tail := nn.AttentionApply(be, tprobs, vt)
	nn.Free(vt, tprobs)
	out := be.Concat(0, head, tail)
	nn.Free(head, tail)
	return out
}

// blendRows returns the map height of a layer with lq queries if it is the
// local blend's resolution, else 0.
func (p *P2P) blendRows(lq int) int {
	r := p.o.Blend.Res
	if p.latH <= 0 || p.latW <= 0 || p.latH%r != 0 {
		return 0
	}
	w := p.latW * r / p.latH
	if r*w != lq {
		return 0
	}
	return r
}

// collect adds the source and target maps of the blend words, summed over
// heads, to the running sum [2, 1, Lq].
func (p *P2P) collect(be nn.Backend, probs *nn.Tensor, heads, lq int) {
	ones, ok := p.onesH[heads]
	if !ok {
		v := make([]float32, 2*heads)
		for i := range v {
			v[i] = 1
		}
		ones = be.Upload([]int{2, 1, heads}, v)
		p.onesH[heads] = ones
	}
	p3 := nn.Reshape(probs, 2, heads*lq, p.lk)
	words := be.MatMul(p3, p.blendSel, false, false) // [2, H·Lq, 1]
	w3 := nn.Reshape(words, 2, heads, lq)
	sum := be.MatMul(ones, w3, false, false) // [2, 1, Lq]
	nn.Free(p3, words, w3)
	if p.blendAcc == nil {
		p.blendAcc = sum
		return
	}
	acc := be.Binary(nn.Add, p.blendAcc, sum)
	nn.Free(p.blendAcc, sum)
	p.blendAcc = acc
}

// stepMask returns 1 where x > 0 and 0 elsewhere, exactly: x·2⁶⁰ is ≥ 1
// for every positive float32 difference of values in [0, 1].
func blendStep(be nn.Backend, x *nn.Tensor) *nn.Tensor {
	s := be.Affine(x, float32(math.Ldexp(1, 60)), 0)
	m := be.Clamp(s, 0, 1)
	nn.Free(s)
	return m
}

// Blend applies the local blend to x [2, C, H, W] = [src, tgt] after step
// k and returns the new latents (x itself when the blend is off or has not
// started). It takes ownership of x.
func (p *P2P) Blend(be nn.Backend, x *nn.Tensor) *nn.Tensor {
	lb := p.o.Blend
	if lb == nil || x == nil || p.err != nil {
		return x
	}
	if x.Rank() != 4 || x.Dim(0) != 2 {
		p.fail("local blend: latents %v, want [2, C, H, W] (source, target)", x.Shape())
		return x
	}
	if p.step < int(math.Floor(lb.Start*float64(p.steps)+1e-9)) {
		return x
	}
	if p.blendAcc == nil {
		p.fail("local blend: no cross-attention layer has %d-row maps for %d×%d latents", lb.Res, p.latH, p.latW)
		return x
	}
	h := lb.Res
	w := p.blendAcc.Dim(2) / h
	var union *nn.Tensor
	for r, words := range [][]int{lb.SourceWords, lb.TargetWords} {
		if len(words) == 0 {
			continue
		}
		m := nn.Narrow(p.blendAcc, r, 1)
		mx := be.Reduce(nn.MaxAbs, m) // maps are ≥ 0
		n := be.Binary(nn.Div, m, mx)
		d := be.Affine(n, 1, -float32(lb.Threshold))
		bin := blendStep(be, d) // map/max > threshold
		nn.Free(m, mx, n, d)
		if union == nil {
			union = bin
			continue
		}
		s := be.Binary(nn.Add, union, bin)
		nn.Free(union, bin)
		union = be.Clamp(s, 0, 1)
		nn.Free(s)
	}
	mask := nn.Reshape(union, 1, 1, h, w)
	nn.Free(union)
	if k := lb.Dilate; k > 0 {
		// max_pool(map) > t ⇔ some neighbour > t: dilate the binary mask
		// with a box sum and threshold it again.
		ks := 2*k + 1
		ones := make([]float32, ks*ks)
		for i := range ones {
			ones[i] = 1
		}
		kw := be.Upload([]int{1, 1, ks, ks}, ones)
		box := be.Conv2d(mask, kw, nil, nn.Conv2dSame(1, k))
		nn.Free(kw, mask)
		mask = blendStep(be, box)
		nn.Free(box)
	}
	for mh := h; mh < p.latH; mh *= 2 {
		up := be.Upsample2x(mask) // nearest, as nnf.interpolate
		nn.Free(mask)
		mask = up
	}
	if mask != nil && (mask.Dim(2) != p.latH || mask.Dim(3) != p.latW) {
		p.fail("local blend: %d×%d maps do not upsample to %d×%d latents by powers of two", h, w, p.latH, p.latW)
		nn.Free(mask)
		return x
	}
	xs, xt := nn.Narrow(x, 0, 1), nn.Narrow(x, 1, 1)
	d := be.Binary(nn.Sub, xt, xs)
	md := be.Binary(nn.Mul, d, mask)
	nt := be.Binary(nn.Add, xs, md)
	out := be.Concat(0, xs, nt)
	nn.Free(xs, xt, d, md, nt, x, p.lastMask)
	p.lastMask = mask
	return out
}

// editSortedKeys lists a map's keys in order (stable error messages).
func editSortedKeys[V any](m map[int]V) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}
