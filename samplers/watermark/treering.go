package watermark

import (
	"fmt"
	"math"
	"math/cmplx"

	"retrace/nn"
	"retrace/samplers"
)

// Tree-Ring (Wen, Kirchenbauer, Geiping & Goldstein, "Tree-Ring Watermarks:
// Fingerprints for Diffusion Images that are Invisible and Robust", 2023),
// following the authors' optim_utils.py (github:YuxinWenRick/
// tree-ring-watermark @ 3015283d) with the 'circle' mask, 'complex'
// injection and 'l1_complex' measurement. With
//
//	F(x) = fftshift(fft2(x))   over the last two axes (unnormalised),
//
// a key is F of a Gaussian draw gt_init (pattern "rand"), or that spectrum
// with concentric rings of constant value (pattern "ring"); generation
// starts from x_T whose spectrum has the key inside a circle of one channel
// (x_T = F⁻¹(M ⊙ key + (1−M) ⊙ F(x)), real part); detection inverts the
// image back to x_T and measures the masked distance to the key, with a
// p-value under a noncentral chi-square null.
//
// The FFTs run on the backend (nn.FFT2: WGSL kernels or the Go reference);
// the masked statistics (a few hundred values) are read back and summed in
// float64.

// TreeRingOptions choose the pattern and where it goes.
type TreeRingOptions struct {
	// Pattern is "rand" (the key is F(gt_init) itself; the reference
	// script's default) or "ring" (rings of constant value; the paper's
	// Tree-Ring_Rings).
	Pattern string
	// Channel is the latent channel that carries the key (0 for the
	// script's default and the pip package, 3 in the paper's ring runs).
	Channel int
	// Radius is the circle's radius in frequency bins (10 for 64×64
	// latents).
	Radius int
}

// DefaultTreeRing are the reference script's defaults (and the pip
// package's): rand pattern, channel 0, radius 10.
var DefaultTreeRing = TreeRingOptions{Pattern: "rand", Channel: 0, Radius: 10}

// TreeRing is a key: the complex pattern for every channel and the mask
// (one channel's circle) where it is written and tested.
type TreeRing struct {
	TreeRingOptions
	C, H, W      int
	KeyRe, KeyIm []float32 // [C, H, W], gt_patch of the reference code
	Mask         []bool    // [C, H, W], true only in Channel's circle
	masked       int
}

// CircleMask is the reference's circle_mask generalised to h×w: the centre
// is column w/2 and, because the reference flips y (y = ogrid[::-1]), row
// h − 1 − h/2 (row 31, col 32 for 64×64: one row above the DC bin of the
// shifted spectrum). Entry (row, col) is set when
// (col − w/2)² + (h − 1 − row − h/2)² ≤ r².
func CircleMask(h, w, r int) []bool {
	m := make([]bool, h*w)
	for row := 0; row < h; row++ {
		for col := 0; col < w; col++ {
			dx, dy := col-w/2, h-1-row-h/2
			m[row*w+col] = dx*dx+dy*dy <= r*r
		}
	}
	return m
}

// Spectrum returns F(x) = fftshift(fft2(x)) of x [..., H, W] on be.
func Spectrum(be nn.Backend, x *nn.Tensor) (re, im *nn.Tensor) {
	r, i := nn.FFT2(be, x, nil, false)
	re, im = nn.FFTShift(be, r, false), nn.FFTShift(be, i, false)
	nn.Free(r, i)
	return re, im
}

// NewTreeRing makes a key from gtInit [1, C, H, W], a standard-normal draw
// (the reference draws it with torch.manual_seed(w_seed)).
func NewTreeRing(be nn.Backend, gtInit *nn.Tensor, o TreeRingOptions) (*TreeRing, error) {
	if gtInit == nil || gtInit.Rank() != 4 || gtInit.Dim(0) != 1 {
		return nil, fmt.Errorf("treering: gt_init %v must be [1, C, H, W]", gtInit)
	}
	c, h, w := gtInit.Dim(1), gtInit.Dim(2), gtInit.Dim(3)
	if o.Channel < 0 || o.Channel >= c {
		return nil, fmt.Errorf("treering: channel %d of a %d-channel latent", o.Channel, c)
	}
	if o.Radius < 1 || 2*o.Radius >= min(h, w) {
		return nil, fmt.Errorf("treering: radius %d does not fit a %d×%d latent (1 ≤ r < %d)", o.Radius, h, w, (min(h, w)+1)/2)
	}
	if o.Pattern != "rand" && o.Pattern != "ring" {
		return nil, fmt.Errorf("treering: pattern %q (want rand or ring)", o.Pattern)
	}
	fr, fi := Spectrum(be, gtInit)
	defer nn.Free(fr, fi)
	re, err := be.Read(fr)
	if err != nil {
		return nil, err
	}
	im, err := be.Read(fi)
	if err != nil {
		return nil, err
	}
	k := &TreeRing{TreeRingOptions: o, C: c, H: h, W: w, KeyRe: re, KeyIm: im, Mask: make([]bool, c*h*w)}
	if o.Pattern == "ring" {
		// for i = r … 1: every channel's circle of radius i takes the value
		// of the original spectrum (gt_patch_tmp) at row 0, column i (so a
		// bin at distance d from the centre ends with column ⌈d⌉, 1 at d = 0).
		k.KeyRe, k.KeyIm = append([]float32(nil), re...), append([]float32(nil), im...)
		for i := o.Radius; i >= 1; i-- {
			circ := CircleMask(h, w, i)
			for ch := 0; ch < c; ch++ {
				vr, vi := re[ch*h*w+i], im[ch*h*w+i]
				for p, in := range circ {
					if in {
						k.KeyRe[ch*h*w+p], k.KeyIm[ch*h*w+p] = vr, vi
					}
				}
			}
		}
	}
	for p, in := range CircleMask(h, w, o.Radius) {
		if in {
			k.Mask[o.Channel*h*w+p] = true
			k.masked++
		}
	}
	return k, nil
}

// NewTreeRingFromSeed makes a key from gt_init drawn with samplers.Noise
// (the same key natively and in the browser) for c×h×w latents.
func NewTreeRingFromSeed(be nn.Backend, seed uint64, c, h, w int, o TreeRingOptions) (*TreeRing, error) {
	g := samplers.NewNoise(seed).Tensor(be, 1, c, h, w)
	if g == nil {
		return nil, be.Err()
	}
	defer nn.Free(g)
	return NewTreeRing(be, g, o)
}

func (k *TreeRing) checkLatents(what string, x *nn.Tensor) error {
	if x == nil || x.Rank() != 4 || x.Dim(1) != k.C || x.Dim(2) != k.H || x.Dim(3) != k.W {
		return fmt.Errorf("treering: %s %v must be [B, %d, %d, %d] (the key's shape)", what, x, k.C, k.H, k.W)
	}
	return nil
}

// Inject returns x [B, C, H, W] (standard-normal initial noise) with the key
// written into its spectrum: F_w = F(x) with F_w[mask] = key[mask], and
// x_w = real(ifft2(ifftshift(F_w))). The key is not Hermitian-symmetric,
// so taking the real part keeps only part of it; generation starts from
// x_w.
func (k *TreeRing) Inject(be nn.Backend, x *nn.Tensor) (*nn.Tensor, error) {
	if err := k.checkLatents("latents", x); err != nil {
		return nil, err
	}
	n := k.C * k.H * k.W
	keep, kr, ki := make([]float32, n), make([]float32, n), make([]float32, n)
	for i, in := range k.Mask {
		if in {
			kr[i], ki[i] = k.KeyRe[i], k.KeyIm[i]
		} else {
			keep[i] = 1
		}
	}
	shape := []int{1, k.C, k.H, k.W}
	tKeep, tKr, tKi := be.Upload(shape, keep), be.Upload(shape, kr), be.Upload(shape, ki)
	defer nn.Free(tKeep, tKr, tKi)
	fr, fi := Spectrum(be, x)
	// Selection by multiplication: F·1 + 0 = F and F·0 + key = key exactly.
	sel := func(f, key *nn.Tensor) *nn.Tensor {
		a := be.Binary(nn.Mul, f, tKeep)
		b := be.Binary(nn.Add, a, key)
		nn.Free(a)
		s := nn.FFTShift(be, b, true)
		nn.Free(b)
		return s
	}
	wr, wi := sel(fr, tKr), sel(fi, tKi)
	nn.Free(fr, fi)
	or, oi := nn.FFT2(be, wr, wi, true)
	nn.Free(wr, wi, oi)
	return or, be.Err()
}

// TreeRingScore is the detection statistic of one latent.
type TreeRingScore struct {
	// Metric is the reference's l1_complex distance: the mean over the
	// mask of |F(x) − key|. Low means marked (≈ 5 for a freshly marked
	// 64×64 rand latent, ≈ 80 for unrelated noise).
	Metric float64 `json:"metric"`
	// PValue is get_p_value's: with v and k the real and imaginary parts
	// of F(x)[mask] and key[mask], σ = std(v) (unbiased), λ = Σk²/σ²,
	// stat = Σ((v−k)/σ)², p = ncx2.cdf(stat, df = len(k), nc = λ): the
	// probability that unmarked noise comes this close to the key.
	PValue float64 `json:"p_value"`
	// Log10P is log10 of PValue, finite where PValue underflows to 0.
	Log10P float64 `json:"log10_p"`
}

// Score measures latents x [B, C, H, W] (an inverted x_T) against the key.
func (k *TreeRing) Score(be nn.Backend, x *nn.Tensor) ([]TreeRingScore, error) {
	if err := k.checkLatents("latents", x); err != nil {
		return nil, err
	}
	fr, fi := Spectrum(be, x)
	defer nn.Free(fr, fi)
	re, err := be.Read(fr)
	if err != nil {
		return nil, err
	}
	im, err := be.Read(fi)
	if err != nil {
		return nil, err
	}
	n := k.C * k.H * k.W
	out := make([]TreeRingScore, x.Dim(0))
	for b := range out {
		out[b] = k.score(re[b*n:(b+1)*n], im[b*n:(b+1)*n])
	}
	return out, nil
}

// score computes the metric and p-value from one spectrum in float64.
func (k *TreeRing) score(re, im []float32) TreeRingScore {
	var v, key []float64
	l1 := 0.0
	for i, in := range k.Mask {
		if !in {
			continue
		}
		f := complex(float64(re[i]), float64(im[i]))
		kk := complex(float64(k.KeyRe[i]), float64(k.KeyIm[i]))
		l1 += cmplx.Abs(f - kk)
		v = append(v, real(f))
		key = append(key, real(kk))
	}
	// torch.concatenate([real, imag]): all real parts, then all imaginary.
	for i, in := range k.Mask {
		if in {
			v = append(v, float64(im[i]))
			key = append(key, float64(k.KeyIm[i]))
		}
	}
	mean := 0.0
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	ss := 0.0
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	sigma2 := ss / float64(len(v)-1)
	lambda, stat := 0.0, 0.0
	for i := range v {
		lambda += key[i] * key[i] / sigma2
		d := v[i] - key[i]
		stat += d * d / sigma2
	}
	lp := logNCX2CDF(stat, float64(len(key)), lambda)
	return TreeRingScore{Metric: l1 / float64(k.masked), PValue: math.Exp(lp), Log10P: lp / math.Ln10}
}

// Detect inverts x0 (clean latents [1, C, H, W], e.g. the VAE encoding of
// an image) back to x_T with method ("ddim", "edict" or "bdia") over steps
// of cfg's grid using eps (the noise estimate; an empty prompt's for
// images of unknown prompt), and scores the top latent. Exact inversions
// (EDICT, BDIA) recover x_T of a generation made with the same model and
// schedule far more closely than DDIM's approximate one.
func (k *TreeRing) Detect(be nn.Backend, method string, cfg samplers.SchedulerConfig, steps int, eps samplers.EpsFunc, x0 *nn.Tensor) (TreeRingScore, error) {
	if method != "ddim" && method != "edict" && method != "bdia" {
		return TreeRingScore{}, fmt.Errorf("treering: inversion method %q (want ddim, edict or bdia)", method)
	}
	if err := k.checkLatents("latents", x0); err != nil {
		return TreeRingScore{}, err
	}
	if x0.Dim(0) != 1 {
		return TreeRingScore{}, fmt.Errorf("treering: detect takes one latent [1, C, H, W], got %v", x0)
	}
	inv, err := samplers.Invert(be, method, cfg, steps, eps, x0, 0)
	if err != nil {
		return TreeRingScore{}, err
	}
	defer inv.Free()
	s, err := k.Score(be, inv.X)
	if err != nil {
		return TreeRingScore{}, err
	}
	return s[0], nil
}
