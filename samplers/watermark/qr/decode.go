package qr

import (
	"fmt"
	"math"
	"math/bits"
	"sort"
)

// Result is a decoded symbol.
type Result struct {
	Data    []byte // the payload: all segments' bytes (numeric and alphanumeric as ASCII)
	Version int
	Level   Level
	Mask    int
	// FormatDistance is the Hamming distance of the read format bits (the
	// closer of the two copies) to the chosen valid format word, 0–3.
	FormatDistance int
	// Corrected counts the codewords Reed–Solomon changed, over all blocks
	// (errors found plus erased codewords whose value was wrong). A wrong
	// symbol may be "corrected" into another valid one; callers wanting
	// strictness can bound Corrected.
	Corrected int
	// Erasures counts the codewords DecodeSoft marked as erasures, over all
	// blocks (0 for Decode and when hard decoding succeeded).
	Erasures int
}

// maxFormatDistance is the most format bit errors accepted: BCH(15,5) has
// minimum distance 7, so up to 3 are corrected unambiguously.
const maxFormatDistance = 3

// Decode decodes a hard module matrix: modules[row·size + col], true = dark,
// size = 17 + 4·version for versions 1–4.
func Decode(modules []bool, size int) (*Result, error) {
	version, err := checkSize(len(modules), size)
	if err != nil {
		return nil, err
	}
	level, mask, dist, err := readFormat(modules, size)
	if err != nil {
		return nil, err
	}
	cw, _ := readCodewords(modules, nil, version, mask)
	return finish(cw, nil, version, level, mask, dist)
}

// DecodeSoft decodes from p[row·size + col], the probability that each
// module is dark. It tries hard decoding (p > 0.5 is dark) first; for each
// Reed–Solomon block that fails it marks the least reliable codewords as
// erasures — a codeword's reliability is the minimum over its 8 modules of
// |p − 0.5| — one more at a time while 2·errors + erasures ≤ n − k allows,
// and takes the first erasure set whose correction passes the syndrome
// check. NaN probabilities count as 0.5 (no information).
func DecodeSoft(p []float32, size int) (*Result, error) {
	return DecodeSoftWith(p, size, SoftOptions{})
}

// SoftOptions bound DecodeSoft's erasure search.
type SoftOptions struct {
	// Reserve is how many of a block's n − k check codewords the erasures
	// must leave unused (e ≤ n − k − Reserve). Every erasure spends one
	// check codeword, and with none left any word "decodes": a random
	// block passes t-error decoding with about C(n−e, t)·255^t / 256^(n−k−e)
	// probability, t = ⌊(n−k−e)/2⌋. For version 1-H (n 26, k 9) Reserve 7
	// (e ≤ 10) keeps that near 1e-7 per attempt; Reserve 0 is DecodeSoft.
	Reserve int
}

// DecodeSoftWith is DecodeSoft with its erasure search bounded by o.
func DecodeSoftWith(p []float32, size int, o SoftOptions) (*Result, error) {
	version, err := checkSize(len(p), size)
	if err != nil {
		return nil, err
	}
	hard := make([]bool, len(p))
	rel := make([]float32, len(p))
	for i, v := range p {
		if math.IsNaN(float64(v)) {
			v = 0.5
		}
		hard[i] = v > 0.5
		rel[i] = float32(math.Abs(float64(v) - 0.5))
	}
	level, mask, dist, err := readFormat(hard, size)
	if err != nil {
		return nil, err
	}
	cw, cwRel := readCodewords(hard, rel, version, mask)
	return finishReserve(cw, cwRel, version, level, mask, dist, max(o.Reserve, 0))
}

// checkSize validates the matrix length and size and returns the version.
func checkSize(n, size int) (int, error) {
	if size < symbolSize(MinVersion) || size > symbolSize(MaxVersion) || (size-17)%4 != 0 {
		return 0, fmt.Errorf("qr: size %d is not 17 + 4·version for a version %d–%d symbol (21, 25, 29 or 33)", size, MinVersion, MaxVersion)
	}
	if n != size*size {
		return 0, fmt.Errorf("qr: matrix has %d modules, want %d×%d = %d", n, size, size, size*size)
	}
	return (size - 17) / 4, nil
}

// readFormat reads both format information copies and picks the valid
// format word (of the 32) nearest to either copy; it fails when even the
// nearest is more than maxFormatDistance bits away.
func readFormat(m []bool, size int) (Level, int, int, error) {
	first, second := formatPositions(size)
	var words [2]int
	for i := 0; i < 15; i++ {
		if m[first[i][0]*size+first[i][1]] {
			words[0] |= 1 << i
		}
		if m[second[i][0]*size+second[i][1]] {
			words[1] |= 1 << i
		}
	}
	best, bestLevel, bestMask := 16, L, 0
	for _, w := range words {
		for lv := L; lv <= H; lv++ {
			for mask := 0; mask < 8; mask++ {
				if d := bits.OnesCount(uint(w ^ formatWord(lv, mask))); d < best {
					best, bestLevel, bestMask = d, lv, mask
				}
			}
		}
	}
	if best > maxFormatDistance {
		return 0, 0, 0, fmt.Errorf("qr: format information unreadable: both copies (%015b, %015b) are %d bits from the nearest valid format word (at most %d correctable)",
			words[0], words[1], best, maxFormatDistance)
	}
	return bestLevel, bestMask, best, nil
}

// readCodewords unmasks and reads the codewords in placement order; with
// rel (per-module reliability) it also returns each codeword's reliability,
// the minimum over its modules.
func readCodewords(m []bool, rel []float32, version, mask int) ([]byte, []float32) {
	size := symbolSize(version)
	pos := dataPositions(version)
	n := len(pos) / 8 // remainder bits dropped
	cw := make([]byte, n)
	var cwRel []float32
	if rel != nil {
		cwRel = make([]float32, n)
		for i := range cwRel {
			cwRel[i] = float32(math.Inf(1))
		}
	}
	for j := 0; j < 8*n; j++ {
		p := pos[j]
		bit := m[p] != maskBit(mask, p/size, p%size)
		if bit {
			cw[j/8] |= 0x80 >> (j % 8)
		}
		if rel != nil {
			cwRel[j/8] = min(cwRel[j/8], rel[p])
		}
	}
	return cw, cwRel
}

// finish de-interleaves the codewords, corrects each block (with erasures
// when cwRel is given and hard decoding fails) and parses the data.
func finish(cw []byte, cwRel []float32, version int, level Level, mask, dist int) (*Result, error) {
	return finishReserve(cw, cwRel, version, level, mask, dist, 0)
}

// finishReserve is finish with at most n − k − reserve erasures per block.
func finishReserve(cw []byte, cwRel []float32, version int, level Level, mask, dist, reserve int) (*Result, error) {
	res := &Result{Version: version, Level: level, Mask: mask, FormatDistance: dist}
	var data []byte
	for bi, idx := range deinterleaveIndex(version, level) {
		block := make([]byte, len(idx))
		for i, j := range idx {
			block[i] = cw[j]
		}
		ec := len(block) - blocks(version, level)[bi].k
		fixed, erased, err := correctBlock(block, ec, ec-reserve, idx, cwRel)
		if err != nil {
			return nil, fmt.Errorf("qr: version %d-%v mask %d, block %d of %d: %w", version, level, mask, bi+1, len(blocks(version, level)), err)
		}
		res.Corrected += fixed
		res.Erasures += erased
		data = append(data, block[:len(block)-ec]...)
	}
	payload, err := parseData(data)
	if err != nil {
		return nil, fmt.Errorf("qr: version %d-%v mask %d: %w", version, level, mask, err)
	}
	res.Data = payload
	return res, nil
}

// correctBlock runs Reed–Solomon on block in place: without erasures first,
// then (with reliabilities) with the 1, 2, … ec least reliable codewords
// erased. It returns the codewords changed and the erasures used.
func correctBlock(block []byte, ec, maxErasures int, idx []int, cwRel []float32) (int, int, error) {
	fixed, err := rsDecode(block, ec, nil)
	if err == nil || cwRel == nil {
		return fixed, 0, err
	}
	order := make([]int, len(block)) // block positions, least reliable first
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return cwRel[idx[order[a]]] < cwRel[idx[order[b]]] })
	for e := 1; e <= maxErasures; e++ {
		if fixed, err2 := rsDecode(block, ec, order[:e]); err2 == nil {
			return fixed, e, nil
		}
	}
	return 0, 0, fmt.Errorf("%w; erasing up to %d least reliable codewords did not help", err, max(maxErasures, 0))
}

// Character count indicator lengths for versions 1–9 (Table 3).
const (
	countBitsNumeric      = 10
	countBitsAlphanumeric = 9
	countBitsByte         = 8
)

const alphanumeric = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

// parseData reads the segments of the data codewords (§7.4): numeric,
// alphanumeric and byte mode, until the terminator or the end, then checks
// that the rest is the standard padding (zero bits to the byte boundary,
// then 0xEC, 0x11, …), so random codewords that happen to pass
// Reed–Solomon are rejected rather than returned as garbage.
func parseData(data []byte) ([]byte, error) {
	r := bitReader{buf: data}
	out := []byte{}
	for {
		if r.left() < 4 {
			if r.read(r.left()) != 0 {
				return nil, fmt.Errorf("nonzero bits after the last segment where a truncated terminator belongs")
			}
			return out, nil
		}
		mode := r.read(4)
		switch mode {
		case 0b0000: // terminator
			return out, r.checkPadding()
		case 0b0001:
			n, err := r.count(countBitsNumeric, "numeric", func(n int) int { return 10*(n/3) + [3]int{0, 4, 7}[n%3] })
			if err != nil {
				return nil, err
			}
			for ; n > 0; n -= 3 {
				digits, bitsN := min(n, 3), [4]int{0, 4, 7, 10}[min(n, 3)]
				v := r.read(bitsN)
				if v >= [4]int{1, 10, 100, 1000}[digits] {
					return nil, fmt.Errorf("numeric segment has the %d-digit group %d", digits, v)
				}
				out = append(out, []byte(fmt.Sprintf("%0*d", digits, v))...)
			}
		case 0b0010:
			n, err := r.count(countBitsAlphanumeric, "alphanumeric", func(n int) int { return 11*(n/2) + 6*(n%2) })
			if err != nil {
				return nil, err
			}
			for ; n > 0; n -= 2 {
				if n >= 2 {
					v := r.read(11)
					if v >= 45*45 {
						return nil, fmt.Errorf("alphanumeric segment has the pair value %d (≥ 45²)", v)
					}
					out = append(out, alphanumeric[v/45], alphanumeric[v%45])
				} else {
					v := r.read(6)
					if v >= 45 {
						return nil, fmt.Errorf("alphanumeric segment has the character value %d (≥ 45)", v)
					}
					out = append(out, alphanumeric[v])
				}
			}
		case 0b0100:
			n, err := r.count(countBitsByte, "byte", func(n int) int { return 8 * n })
			if err != nil {
				return nil, err
			}
			for i := 0; i < n; i++ {
				out = append(out, byte(r.read(8)))
			}
		default:
			return nil, fmt.Errorf("unsupported or invalid mode indicator %04b at bit %d (supported: numeric 0001, alphanumeric 0010, byte 0100, terminator 0000)", mode, r.n-4)
		}
	}
}

// bitReader reads bits most significant first.
type bitReader struct {
	buf []byte
	n   int // bits read
}

func (r *bitReader) left() int { return 8*len(r.buf) - r.n }

func (r *bitReader) read(bits int) int {
	v := 0
	for i := 0; i < bits; i++ {
		v = v<<1 | int(r.buf[r.n/8]>>(7-r.n%8)&1)
		r.n++
	}
	return v
}

// count reads a character count of the given width and checks that the
// segment's data (dataBits(count) bits) fits the remaining capacity.
func (r *bitReader) count(width int, mode string, dataBits func(int) int) (int, error) {
	if r.left() < width {
		return 0, fmt.Errorf("%s segment's character count is cut off by the end of the data (%d bits left, want %d)", mode, r.left(), width)
	}
	n := r.read(width)
	if need := dataBits(n); need > r.left() {
		return 0, fmt.Errorf("%s segment claims %d characters (%d bits) but only %d data bits remain", mode, n, need, r.left())
	}
	return n, nil
}

// checkPadding checks the bits after a terminator: zeros to the byte
// boundary, then pad codewords 0xEC, 0x11 alternately (§7.4.9–§7.4.10).
func (r *bitReader) checkPadding() error {
	if rem := (8 - r.n%8) % 8; rem > 0 && r.read(rem) != 0 {
		return fmt.Errorf("nonzero bits between the terminator and the byte boundary")
	}
	for i, want := r.n/8, byte(0xEC); i < len(r.buf); i, want = i+1, want^0xEC^0x11 {
		if r.buf[i] != want {
			return fmt.Errorf("data codeword %d after the terminator is %#02x, want pad codeword %#02x", i, r.buf[i], want)
		}
	}
	return nil
}
