// Package watermark marks images and detects the marks, client-side:
//
//   - DwtDct: the invisible-watermark library's dwtDct method (what the
//     Stable Diffusion 2/XL scripts use), bit-exact with that library, so
//     images it marked decode here and images marked here decode there.
//   - Tree-Ring (Wen et al., 2023): a key written into the Fourier
//     transform of the initial noise x_T, detected by inverting an image
//     back to x_T (DDIM, EDICT or BDIA) and testing the masked Fourier
//     region.
package watermark

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
)

// DwtDct runs on the CPU in Go, not as backend ops: it is integer and
// float64 image processing (OpenCV's fixed-point colour conversion, a Haar
// transform whose float64 products must round exactly like numpy's, Python
// floor division, a truncating uint8 store) that has to match the library
// bit for bit. float32 WGSL could not reproduce it, and a 512×512 image
// takes a few milliseconds on one core.
//
// The library (github:ShieldMnt/invisible-watermark, imwatermark/maxDct.py,
// EmbedMaxDct with its default scales [0, 36, 36] and block 4) does:
//  1. BGR → YUV with OpenCV's 8-bit fixed point;
//  2. only U is marked (the loop runs over channels 0 and 1, Y has scale 0);
//  3. the Haar dwt2 approximation band cA of U (rows and columns cut to
//     multiples of 4);
//  4. in every 4×4 block of cA (row-major, block b carries bit b mod n) the
//     largest-magnitude coefficient other than the first is quantised to
//     36·(⌊|v|/36⌋ + 0.25 + 0.5·bit) with v's sign — no DCT is computed
//     despite the name;
//  5. idwt2 with the horizontal and vertical detail bands swapped (the
//     library passes (cV, cH, cD)), stored into uint8 by truncation, and
//     YUV → BGR;
//  6. decoding repeats 1–3 and votes |v| mod 36 > 18 per block; bit b is
//     mean(votes)·255 > 127.
const (
	dwtDctScale = 36.0
	dwtDctBlock = 4
	// dwtDctMinPixels: the library refuses images under 256×256 pixels.
	dwtDctMinPixels = 256 * 256
)

// haarC is pywt's Haar filter coefficient 1/√2 (as float64).
const haarC = 0.7071067811865476

// rgb8 is an 8-bit RGB image, rows top to bottom, pixels R, G, B.
type rgb8 struct {
	w, h int
	pix  []uint8
}

// toRGB8 reads img's colour channels as 8-bit values (alpha is dropped,
// like cv2.imread's IMREAD_COLOR; 16-bit samples keep their high byte).
func toRGB8(img image.Image) rgb8 {
	b := img.Bounds()
	out := rgb8{w: b.Dx(), h: b.Dy(), pix: make([]uint8, 3*b.Dx()*b.Dy())}
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			out.pix[i], out.pix[i+1], out.pix[i+2] = c.R, c.G, c.B
			i += 3
		}
	}
	return out
}

func (m rgb8) image() *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, m.w, m.h))
	for i := 0; i < m.w*m.h; i++ {
		copy(img.Pix[4*i:4*i+3], m.pix[3*i:3*i+3])
		img.Pix[4*i+3] = 255
	}
	return img
}

// descale is OpenCV's CV_DESCALE(x, 14): round-half-up fixed point with an
// arithmetic (floor) shift.
func descale(x int32) int32 { return (x + 1<<13) >> 14 }

func sat8(x int32) uint8 { return uint8(min(max(x, 0), 255)) }

// bgrToYUV is cv2.cvtColor(COLOR_BGR2YUV) for 8-bit pixels (OpenCV's
// RGB2YUV_i coefficients, checked against cv2 for all 2²⁴ inputs by the
// fixture's author).
func bgrToYUV(r, g, b uint8) (y, u, v uint8) {
	B, G, R := int32(b), int32(g), int32(r)
	Y := descale(1868*B + 9617*G + 4899*R)
	U := descale((B-Y)*8061 + 128<<14)
	V := descale((R-Y)*14369 + 128<<14)
	return sat8(Y), sat8(U), sat8(V)
}

// yuvToBGR is cv2.cvtColor(COLOR_YUV2BGR) for 8-bit pixels.
func yuvToBGR(y, u, v uint8) (r, g, b uint8) {
	Y, U, V := int32(y), int32(u)-128, int32(v)-128
	return sat8(Y + descale(V*18678)), sat8(Y + descale(U*-6472+V*-9519)), sat8(Y + descale(U*33292))
}

// uPlane converts m to YUV and returns the three planes.
func (m rgb8) yuv() (ys, us, vs []uint8) {
	n := m.w * m.h
	ys, us, vs = make([]uint8, n), make([]uint8, n), make([]uint8, n)
	for i := 0; i < n; i++ {
		ys[i], us[i], vs[i] = bgrToYUV(m.pix[3*i], m.pix[3*i+1], m.pix[3*i+2])
	}
	return ys, us, vs
}

// haarBands is pywt.dwt2(x, 'haar') of an r×c plane (r, c even) as float64:
// along axis 0 first, L = c·x[2i] + c·x[2i+1], H = c·x[2i] − c·x[2i+1],
// then along axis 1. Each product is rounded on its own (the float64()
// conversions keep the compiler from fusing them into FMAs), as numpy does.
type haarBands struct {
	rows, cols     int // of each band
	cA, cH, cV, cD []float64
}

func dwt2(x []uint8, stride, r, c int) haarBands {
	hr, hc := r/2, c/2
	l0, h0 := make([]float64, hr*c), make([]float64, hr*c)
	for i := 0; i < hr; i++ {
		for j := 0; j < c; j++ {
			a, b := float64(x[2*i*stride+j]), float64(x[(2*i+1)*stride+j])
			l0[i*c+j] = float64(haarC*a) + float64(haarC*b)
			h0[i*c+j] = float64(haarC*a) - float64(haarC*b)
		}
	}
	hb := haarBands{rows: hr, cols: hc, cA: make([]float64, hr*hc), cH: make([]float64, hr*hc), cV: make([]float64, hr*hc), cD: make([]float64, hr*hc)}
	for i := 0; i < hr; i++ {
		for j := 0; j < hc; j++ {
			la, lb := l0[i*c+2*j], l0[i*c+2*j+1]
			ha, hb2 := h0[i*c+2*j], h0[i*c+2*j+1]
			k := i*hc + j
			hb.cA[k] = float64(haarC*la) + float64(haarC*lb)
			hb.cV[k] = float64(haarC*la) - float64(haarC*lb)
			hb.cH[k] = float64(haarC*ha) + float64(haarC*hb2)
			hb.cD[k] = float64(haarC*ha) - float64(haarC*hb2)
		}
	}
	return hb
}

// idwt2Swapped is pywt.idwt2((cA, (cV, cH, cD)), 'haar') — the library's
// call, with the horizontal and vertical detail bands swapped — as float64:
// along axis 1, lo = c·cA ± c·cH at columns (2j, 2j+1) and hi = c·cV ± c·cD,
// then along axis 0, out[2i] = c·lo + c·hi, out[2i+1] = c·lo − c·hi.
func idwt2Swapped(hb haarBands) []float64 {
	hr, hc := hb.rows, hb.cols
	c := 2 * hc
	lo, hi := make([]float64, hr*c), make([]float64, hr*c)
	for i := 0; i < hr; i++ {
		for j := 0; j < hc; j++ {
			k := i*hc + j
			lo[i*c+2*j] = float64(haarC*hb.cA[k]) + float64(haarC*hb.cH[k])
			lo[i*c+2*j+1] = float64(haarC*hb.cA[k]) - float64(haarC*hb.cH[k])
			hi[i*c+2*j] = float64(haarC*hb.cV[k]) + float64(haarC*hb.cD[k])
			hi[i*c+2*j+1] = float64(haarC*hb.cV[k]) - float64(haarC*hb.cD[k])
		}
	}
	out := make([]float64, 2*hr*c)
	for i := 0; i < hr; i++ {
		for j := 0; j < c; j++ {
			out[2*i*c+j] = float64(haarC*lo[i*c+j]) + float64(haarC*hi[i*c+j])
			out[(2*i+1)*c+j] = float64(haarC*lo[i*c+j]) - float64(haarC*hi[i*c+j])
		}
	}
	return out
}

// pyFloorDiv is Python's float a // b (CPython float_floor_div, which
// numpy's floor_divide copies): computed from fmod, not floor(a/b).
func pyFloorDiv(a, b float64) float64 {
	mod := math.Mod(a, b)
	div := (a - mod) / b
	if mod != 0 && (b < 0) != (mod < 0) {
		div -= 1
	}
	if div == 0 {
		return math.Copysign(0, a/b)
	}
	f := math.Floor(div)
	if div-f > 0.5 {
		f++
	}
	return f
}

// pyMod is Python's float a % b (the result has b's sign).
func pyMod(a, b float64) float64 {
	mod := math.Mod(a, b)
	if mod != 0 && (b < 0) != (mod < 0) {
		mod += b
	} else if mod == 0 {
		mod = math.Copysign(0, b)
	}
	return mod
}

// maxPos is argmax(|block.flatten()[1:]|) + 1 of the 4×4 block at block
// row bi, column bj of an r×c band: the first maximum wins.
func maxPos(band []float64, cols, bi, bj int) int {
	best, pos := -1.0, 1
	for k := 1; k < dwtDctBlock*dwtDctBlock; k++ {
		v := math.Abs(band[(bi*dwtDctBlock+k/dwtDctBlock)*cols+bj*dwtDctBlock+k%dwtDctBlock])
		if v > best {
			best, pos = v, k
		}
	}
	return pos
}

// region returns the marked region: rows and columns cut to multiples of 4.
func (m rgb8) region() (int, int) {
	return m.h / 4 * 4, m.w / 4 * 4
}

func checkDwtDct(m rgb8, n int) error {
	if n <= 0 {
		return errors.New("dwtdct: no payload bits")
	}
	if m.w*m.h < dwtDctMinPixels {
		return fmt.Errorf("dwtdct: image %d×%d is too small (the method needs at least 256×256 pixels)", m.w, m.h)
	}
	r, c := m.region()
	if blocks := (r / 2 / dwtDctBlock) * (c / 2 / dwtDctBlock); blocks < n {
		return fmt.Errorf("dwtdct: image %d×%d has %d blocks, fewer than the %d payload bits", m.w, m.h, blocks, n)
	}
	return nil
}

// EmbedDwtDct marks img with bits (the library's
// WatermarkEncoder.encode(bgr, 'dwtDct') on the image's 8-bit pixels) and
// returns the marked image. Store it losslessly (PNG): JPEG with 4:2:0
// chroma subsampling destroys the mark, which lives in U.
func EmbedDwtDct(img image.Image, bits []bool) (*image.RGBA, error) {
	m := toRGB8(img)
	if err := checkDwtDct(m, len(bits)); err != nil {
		return nil, err
	}
	out, _ := embedDwtDct(m, bits)
	return out.image(), nil
}

// embedDwtDct returns the marked image and the intermediates (for tests).
func embedDwtDct(m rgb8, bits []bool) (rgb8, dwtDebug) {
	ys, us, vs := m.yuv()
	r, c := m.region()
	hb := dwt2(us, m.w, r, c)
	dbg := dwtDebug{ys: ys, us: append([]uint8(nil), us...), vs: vs, ca1In: append([]float64(nil), hb.cA...)}
	br, bc := hb.rows/dwtDctBlock, hb.cols/dwtDctBlock
	for bi := 0; bi < br; bi++ {
		for bj := 0; bj < bc; bj++ {
			bit := 0.0
			if bits[(bi*bc+bj)%len(bits)] {
				bit = 1
			}
			pos := maxPos(hb.cA, hb.cols, bi, bj)
			k := (bi*dwtDctBlock+pos/dwtDctBlock)*hb.cols + bj*dwtDctBlock + pos%dwtDctBlock
			v := hb.cA[k]
			if v >= 0 {
				hb.cA[k] = (pyFloorDiv(v, dwtDctScale) + 0.25 + 0.5*bit) * dwtDctScale
			} else {
				hb.cA[k] = -1.0 * ((pyFloorDiv(math.Abs(v), dwtDctScale) + 0.25 + 0.5*bit) * dwtDctScale)
			}
		}
	}
	dbg.ca1Marked = hb.cA
	u2 := idwt2Swapped(hb)
	dbg.uIdwt = u2
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			// numpy's float64 → uint8 store: a C cast, truncating toward
			// zero (99.99999999999999 → 99), wrapping out-of-range values.
			us[i*m.w+j] = uint8(int64(u2[i*c+j]))
		}
	}
	dbg.usMarked = us
	out := rgb8{w: m.w, h: m.h, pix: make([]uint8, len(m.pix))}
	for i := range ys {
		out.pix[3*i], out.pix[3*i+1], out.pix[3*i+2] = yuvToBGR(ys[i], us[i], vs[i])
	}
	return out, dbg
}

type dwtDebug struct {
	ys, us, vs, usMarked []uint8
	ca1In, ca1Marked     []float64
	uIdwt                []float64
}

// DecodeDwtDct reads n bits from img (the library's
// WatermarkDecoder('bits', n).decode(bgr, 'dwtDct')) and returns them with
// each bit's mean vote in [0, 1] (a bit is set when mean·255 > 127; votes
// near 0.5 mean no mark, or a damaged one).
func DecodeDwtDct(img image.Image, n int) (bits []bool, votes []float64, err error) {
	m := toRGB8(img)
	if err := checkDwtDct(m, n); err != nil {
		return nil, nil, err
	}
	bits, votes = decodeDwtDct(m, n)
	return bits, votes, nil
}

func decodeDwtDct(m rgb8, n int) ([]bool, []float64) {
	_, us, _ := m.yuv()
	r, c := m.region()
	hb := dwt2(us, m.w, r, c)
	ones, count := make([]int, n), make([]int, n)
	br, bc := hb.rows/dwtDctBlock, hb.cols/dwtDctBlock
	for bi := 0; bi < br; bi++ {
		for bj := 0; bj < bc; bj++ {
			pos := maxPos(hb.cA, hb.cols, bi, bj)
			v := math.Abs(hb.cA[(bi*dwtDctBlock+pos/dwtDctBlock)*hb.cols+bj*dwtDctBlock+pos%dwtDctBlock])
			b := (bi*bc + bj) % n
			count[b]++
			if pyMod(v, dwtDctScale) > 0.5*dwtDctScale {
				ones[b]++
			}
		}
	}
	bits, votes := make([]bool, n), make([]float64, n)
	for b := range bits {
		votes[b] = float64(ones[b]) / float64(count[b]) // numpy mean of 0/1 ints: exact sum / n
		bits[b] = votes[b]*255 > 127
	}
	return bits, votes
}
