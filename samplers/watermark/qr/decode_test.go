package qr

import (
	"fmt"
	"image"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func randomPayload(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}

// codewordModules returns, for each block of the code, the module indices
// of each of its codewords (8 per codeword).
func codewordModules(version int, level Level) [][][]int {
	pos := dataPositions(version)
	var out [][][]int
	for _, idx := range deinterleaveIndex(version, level) {
		var blk [][]int
		for _, j := range idx {
			blk = append(blk, pos[8*j:8*j+8])
		}
		out = append(out, blk)
	}
	return out
}

// flipCodewords flips 1–8 random modules of `count` random codewords of
// each block of m, returning the flipped codewords' module sets per block.
func flipCodewords(rng *rand.Rand, m []bool, version int, level Level, count func(ec int) int) [][][]int {
	var hit [][][]int
	for bi, blk := range codewordModules(version, level) {
		ec := blocks(version, level)[bi].n - blocks(version, level)[bi].k
		var h [][]int
		for _, j := range rng.Perm(len(blk))[:count(ec)] {
			mods := blk[j]
			for _, b := range rng.Perm(8)[:1+rng.IntN(8)] {
				m[mods[b]] = !m[mods[b]]
			}
			h = append(h, mods)
		}
		hit = append(hit, h)
	}
	return hit
}

// flipFormat flips k random bits of each format information copy.
func flipFormat(rng *rand.Rand, m []bool, size, k int) {
	first, second := formatPositions(size)
	for _, copyPos := range [][15][2]int{first, second} {
		for _, i := range rng.Perm(15)[:k] {
			p := copyPos[i][0]*size + copyPos[i][1]
			m[p] = !m[p]
		}
	}
}

// TestQRRoundTrip decodes Encode's output for every version, level and
// mask: clean, then with up to ⌊(n−k)/2⌋ corrupted codewords per block,
// up to 3 flipped format bits per copy and some flipped function modules.
func TestQRRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for v := MinVersion; v <= MaxVersion; v++ {
		for lv := L; lv <= H; lv++ {
			t.Run(fmt.Sprintf("%d-%v", v, lv), func(t *testing.T) {
				for mask := 0; mask < 8; mask++ {
					data := randomPayload(rng, rng.IntN(ByteCapacity(v, lv)+1))
					c, err := Encode(data, lv, v, mask)
					require.NoError(t, err)

					res, err := Decode(c.Modules, c.Size)
					require.NoError(t, err)
					require.Equal(t, data, res.Data)
					require.Equal(t, Result{Data: res.Data, Version: v, Level: lv, Mask: mask}, *res)

					m := append([]bool(nil), c.Modules...)
					flipCodewords(rng, m, v, lv, func(ec int) int { return ec / 2 })
					fmtFlips := mask % 4 // 0–3 bits per copy
					flipFormat(rng, m, c.Size, fmtFlips)
					for _, p := range []int{6*c.Size + 10, 3*c.Size + 3, (c.Size-1)*c.Size + 2} { // timing, finders
						m[p] = !m[p]
					}
					res, err = Decode(m, c.Size)
					require.NoError(t, err, "mask %d", mask)
					require.Equal(t, data, res.Data)
					require.Equal(t, mask, res.Mask)
					require.Equal(t, lv, res.Level)
					require.Equal(t, fmtFlips, res.FormatDistance)
					require.Equal(t, len(blocks(v, lv))*(blocks(v, lv)[0].n-blocks(v, lv)[0].k)/2, res.Corrected)

					soft, err := DecodeSoft(toProb(m, 0.9), c.Size)
					require.NoError(t, err)
					require.Equal(t, *res, *soft, "soft decoding of a hard-decodable symbol is the hard result")
				}
			})
		}
	}
}

// toProb turns a hard matrix into probabilities with the given confidence.
func toProb(m []bool, conf float32) []float32 {
	p := make([]float32, len(m))
	for i, d := range m {
		p[i] = 1 - conf
		if d {
			p[i] = conf
		}
	}
	return p
}

// TestQRFormatCopies damages one format copy beyond repair and the other
// one less: the better copy must win.
func TestQRFormatCopies(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, tc := range []struct {
		name           string
		flips1, flips2 int // bits flipped in the first and second copy
		wantDist       int
	}{
		// A copy with f flipped bits is ≥ 7 − f bits from every other valid
		// word (minimum distance 7), so the other copy with fewer than
		// 7 − f flips (and ≤ 3) must win. (15 flips would give another
		// valid word: the format code contains the all-ones word.)
		{"first 5 off, second clean", 5, 0, 0},
		{"first 5 off, second 1", 5, 1, 1},
		{"first clean, second 6 off", 0, 6, 0},
		{"first 1, second 5", 1, 5, 1},
		{"first 3, second 3", 3, 3, 3},
		{"first 4, second 2", 4, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for v := MinVersion; v <= MaxVersion; v++ {
				for mask := 0; mask < 8; mask++ {
					lv := Level(rng.IntN(4))
					c, err := Encode([]byte("rtrc-01"), lv, v, mask)
					require.NoError(t, err)
					m := append([]bool(nil), c.Modules...)
					first, second := formatPositions(c.Size)
					for _, f := range []struct {
						pos [15][2]int
						k   int
					}{{first, tc.flips1}, {second, tc.flips2}} {
						for _, i := range rng.Perm(15)[:f.k] {
							p := f.pos[i][0]*c.Size + f.pos[i][1]
							m[p] = !m[p]
						}
					}
					res, err := Decode(m, c.Size)
					require.NoError(t, err)
					require.Equal(t, "rtrc-01", string(res.Data))
					require.Equal(t, mask, res.Mask)
					require.Equal(t, lv, res.Level)
					require.Equal(t, tc.wantDist, res.FormatDistance)
				}
			}
		})
	}
}

// TestQRFormatFourBitsOff writes into both copies a word 4 bits from the
// true format word and ≥ 4 from every valid one: beyond the 3 correctable
// bits, so decoding must fail.
func TestQRFormatFourBitsOff(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	c, err := Encode([]byte("rtrc-01"), Q, 2, 5)
	require.NoError(t, err)
	for tries := 0; ; tries++ {
		require.Less(t, tries, 1000, "no 4-bit-off word found")
		w := formatWord(Q, 5)
		for _, i := range rng.Perm(15)[:4] {
			w ^= 1 << i
		}
		nearest := 15
		for a := 0; a < 32; a++ {
			nearest = min(nearest, bits.OnesCount(uint(w^formatWord(Level(a>>3), a&7))))
		}
		if nearest < 4 {
			continue
		}
		m := append([]bool(nil), c.Modules...)
		drawFormat(m, c.Size, w)
		_, err := Decode(m, c.Size)
		require.ErrorContains(t, err, "format information unreadable")
		require.ErrorContains(t, err, "4 bits from the nearest valid format word")
		return
	}
}

// TestQRFormatTooDamaged destroys both format copies beyond 3 bits.
func TestQRFormatTooDamaged(t *testing.T) {
	c, err := Encode([]byte("rtrc-01"), M, 1, 3)
	require.NoError(t, err)
	m := append([]bool(nil), c.Modules...)
	first, second := formatPositions(c.Size)
	for _, copyPos := range [][15][2]int{first, second} {
		for _, i := range []int{0, 2, 4, 6, 8, 10, 12, 14} { // 8 flips: beyond any valid word's reach for at least one copy
			p := copyPos[i][0]*c.Size + copyPos[i][1]
			m[p] = !m[p]
		}
	}
	res, err := Decode(m, c.Size)
	if err == nil {
		// 8 flips may land within 3 bits of another format word; then the
		// data cannot decode as the right symbol.
		require.NotEqual(t, 3, res.Mask)
	} else {
		require.ErrorContains(t, err, "qr:")
	}
	// Every word of the format code is at least 7 bits from every other.
	for a := 0; a < 32; a++ {
		for b := a + 1; b < 32; b++ {
			wa, wb := formatWord(Level(a>>3), a&7), formatWord(Level(b>>3), b&7)
			d := 0
			for x := wa ^ wb; x != 0; x &= x - 1 {
				d++
			}
			require.GreaterOrEqual(t, d, 7)
		}
	}
}

// TestQRSoftBeatsHard corrupts more codewords than hard decoding can
// correct, but marks them unreliable: DecodeSoft erases them and succeeds.
func TestQRSoftBeatsHard(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct {
		version int
		level   Level
	}{{1, M}, {1, H}, {2, Q}, {3, H}, {4, M}, {4, H}} {
		t.Run(fmt.Sprintf("%d-%v", tc.version, tc.level), func(t *testing.T) {
			data := []byte("rtrc-01")
			c, err := Encode(data, tc.level, tc.version, -1)
			require.NoError(t, err)
			m := append([]bool(nil), c.Modules...)
			// ec/2 + 2 bad codewords per block: beyond hard decoding, within
			// 2·0 + erasures ≤ ec once they are erased.
			hit := flipCodewords(rng, m, tc.version, tc.level, func(ec int) int { return ec/2 + 2 })
			_, err = Decode(m, c.Size)
			require.Error(t, err, "hard decoding must fail")

			p := toProb(m, 0.95)
			for _, blk := range hit {
				for _, mods := range blk {
					for _, i := range mods {
						// Unsure, and on the wrong side for flipped modules.
						d := 0.01 + 0.09*float32(rng.Float64())
						if m[i] {
							p[i] = 0.5 + d
						} else {
							p[i] = 0.5 - d
						}
					}
				}
			}
			res, err := DecodeSoft(p, c.Size)
			require.NoError(t, err)
			require.Equal(t, data, res.Data)
			// Each block needs e erasures with 2·(m − e) + e ≤ ec, m bad
			// codewords: the first such e is 2m − ec.
			wantErasures, wantCorrected := 0, 0
			for bi, b := range blocks(tc.version, tc.level) {
				ec := b.n - b.k
				wantErasures += 2*len(hit[bi]) - ec
				wantCorrected += len(hit[bi])
			}
			require.Equal(t, wantErasures, res.Erasures)
			require.Equal(t, wantCorrected, res.Corrected)

			// A reserve that leaves too few check codewords for those
			// erasures makes the same matrix fail; one that leaves exactly
			// enough still decodes.
			need := 0
			for bi, b := range blocks(tc.version, tc.level) {
				need = max(need, 2*len(hit[bi])-(b.n-b.k))
			}
			minEC := 1 << 30
			for _, b := range blocks(tc.version, tc.level) {
				minEC = min(minEC, b.n-b.k)
			}
			_, err = DecodeSoftWith(p, c.Size, SoftOptions{Reserve: minEC - need + 1})
			require.ErrorContains(t, err, "erasing up to")
			res, err = DecodeSoftWith(p, c.Size, SoftOptions{Reserve: minEC - need})
			if err == nil { // blocks with a larger ec may still fit
				require.Equal(t, data, res.Data)
			}
		})
	}
}

// TestQRDecodeErrors feeds malformed input: errors that name the problem,
// no panics, no garbage payloads.
func TestQRDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		size int
		want string
	}{
		{"size 20", 400, 20, "size 20 is not 17 + 4·version"},
		{"size 37 (version 5)", 37 * 37, 37, "size 37"},
		{"size 0", 0, 0, "size 0"},
		{"size negative", 0, -3, "size -3"},
		{"length mismatch", 440, 21, "matrix has 440 modules, want 21×21 = 441"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(make([]bool, tc.n), tc.size)
			require.ErrorContains(t, err, tc.want)
			_, err = DecodeSoft(make([]float32, tc.n), tc.size)
			require.ErrorContains(t, err, tc.want)
		})
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for v := MinVersion; v <= MaxVersion; v++ {
		size := symbolSize(v)
		for _, fill := range []struct {
			name string
			f    func(i int) float32
		}{
			{"all light", func(int) float32 { return 0 }},
			{"all dark", func(int) float32 { return 1 }},
			{"all unsure", func(int) float32 { return 0.5 }},
		} {
			p := make([]float32, size*size)
			for i := range p {
				p[i] = fill.f(i)
			}
			hard := make([]bool, len(p))
			for i := range p {
				hard[i] = p[i] > 0.5
			}
			_, err := Decode(hard, size)
			require.Error(t, err, "version %d %s", v, fill.name)
			_, err = DecodeSoft(p, size)
			require.Error(t, err, "version %d %s", v, fill.name)
		}
		// Random matrices, and random matrices with valid format information
		// (so decoding reaches Reed–Solomon and the parser).
		for trial := 0; trial < 200; trial++ {
			p := make([]float32, size*size)
			for i := range p {
				p[i] = rng.Float32()
			}
			if trial%2 == 1 {
				drawFormat01(p, size, formatWord(Level(rng.IntN(4)), rng.IntN(8)))
			}
			hard := make([]bool, len(p))
			for i := range p {
				hard[i] = p[i] > 0.5
			}
			res, err := Decode(hard, size)
			require.Error(t, err, "version %d trial %d decoded %+v", v, trial, res)
			res, err = DecodeSoft(p, size)
			require.Error(t, err, "soft: version %d trial %d decoded %+v", v, trial, res)
		}
	}
}

// drawFormat01 writes a format word into both copies of a probability map.
func drawFormat01(p []float32, size, word int) {
	m := make([]bool, len(p))
	drawFormat(m, size, word)
	first, second := formatPositions(size)
	for _, cp := range [][15][2]int{first, second} {
		for _, rc := range cp {
			i := rc[0]*size + rc[1]
			p[i] = 0
			if m[i] {
				p[i] = 1
			}
		}
	}
}

// TestQREncodeErrors checks the argument errors and automatic versions.
func TestQREncodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		n                    int
		level                Level
		version, mask        int
		want                 string
		wantVersion, wantCap int
	}{
		{name: "auto v1", n: 7, level: M, wantVersion: 1},
		{name: "auto v1 full", n: 17, level: L, wantVersion: 1},
		{name: "auto v2", n: 18, level: L, wantVersion: 2},
		{name: "auto v4-H", n: 34, level: H, wantVersion: 4},
		{name: "too long", n: 35, level: H, want: "35 bytes do not fit versions 1–4 at level H (capacity 34 bytes)"},
		{name: "too long v1", n: 8, level: H, version: 1, want: "8 bytes do not fit version 1-H (capacity 7 bytes)"},
		{name: "version 5", n: 1, level: L, version: 5, want: "version 5 is not supported"},
		{name: "version -1", n: 1, level: L, version: -1, want: "version -1"},
		{name: "mask 8", n: 1, level: L, mask: 8, want: "mask 8"},
		{name: "mask -2", n: 1, level: L, mask: -2, want: "mask -2"},
		{name: "level 4", n: 1, level: 4, want: "level 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Encode(make([]byte, tc.n), tc.level, tc.version, tc.mask)
			if tc.want != "" {
				require.ErrorContains(t, err, tc.want)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantVersion, c.Version)
		})
	}
	require.Equal(t, "Q", Q.String())
	require.Equal(t, "Level(7)", Level(7).String())
	require.Equal(t, []int{17, 14, 11, 7}, []int{ByteCapacity(1, L), ByteCapacity(1, M), ByteCapacity(1, Q), ByteCapacity(1, H)})
	require.Equal(t, []int{78, 62, 46, 34}, []int{ByteCapacity(4, L), ByteCapacity(4, M), ByteCapacity(4, Q), ByteCapacity(4, H)})
}

// TestQRImageAndFunction checks Image's layout and IsFunction's count of
// data modules (Table 1: 208, 359, 567, 807 data and remainder modules).
func TestQRImageAndFunction(t *testing.T) {
	c, err := Encode([]byte("rtrc-01"), M, 1, 0)
	require.NoError(t, err)
	img := c.Image(3, 4)
	require.Equal(t, image.Rect(0, 0, (21+8)*3, (21+8)*3), img.Bounds())
	require.Equal(t, uint8(255), img.GrayAt(0, 0).Y, "quiet zone")
	require.Equal(t, uint8(0), img.GrayAt(12, 12).Y, "finder corner")
	require.Equal(t, uint8(0), img.GrayAt(14, 14).Y)
	require.Equal(t, uint8(255), img.GrayAt(15, 15).Y, "finder's light ring")
	for r := 0; r < c.Size; r++ {
		for col := 0; col < c.Size; col++ {
			want := uint8(255)
			if c.Dark(r, col) {
				want = 0
			}
			require.Equal(t, want, img.GrayAt((col+4)*3+1, (r+4)*3+2).Y)
		}
	}
	require.False(t, c.Dark(-1, 0))
	require.False(t, c.Dark(0, 21))

	for v, want := range map[int]int{1: 208, 2: 359, 3: 567, 4: 807} {
		size := symbolSize(v)
		n := 0
		for r := 0; r < size; r++ {
			for col := 0; col < size; col++ {
				if !IsFunction(v, r, col) {
					n++
				}
			}
		}
		require.Equal(t, want, n, "version %d", v)
		require.Len(t, dataPositions(v), want)
		require.Equal(t, want, 8*(blocks(v, L)[0].n*len(blocks(v, L)))+remainderBits[v])
	}
	require.False(t, IsFunction(5, 0, 0))
	require.False(t, IsFunction(1, 21, 0))
	require.True(t, IsFunction(1, 13, 8), "dark module")
	require.True(t, IsFunction(2, 18, 18), "alignment centre")
}

// TestQRParseData parses hand-built data codeword streams (9 codewords,
// version 1-H's capacity): the three modes, several segments, and the
// padding garbage that must be rejected.
func TestQRParseData(t *testing.T) {
	type field struct{ v, bits int }
	build := func(pad bool, fs ...field) []byte {
		var w bitWriter
		for _, f := range fs {
			w.write(f.v, f.bits)
		}
		if r := w.n % 8; r != 0 {
			w.write(0, 8-r)
		}
		for p := 0xEC; pad && len(w.buf) < 9; p ^= 0xEC ^ 0x11 {
			w.write(p, 8)
		}
		return w.buf
	}
	term := field{0, 4}
	for _, tc := range []struct {
		name string
		data []byte
		want string // payload, or "error: substring"
	}{
		{"byte", build(true, field{4, 4}, field{2, 8}, field{'h', 8}, field{'i', 8}, term), "hi"},
		{"numeric 8 digits", build(true, field{1, 4}, field{8, 10}, field{12, 10}, field{345, 10}, field{67, 7}, term), "01234567"},
		{"alphanumeric", build(true, field{2, 4}, field{3, 9}, field{10*45 + 35, 11}, field{44, 6}, term), "AZ:"},
		{"two segments", build(true, field{1, 4}, field{1, 10}, field{7, 4}, field{4, 4}, field{1, 8}, field{'x', 8}, term), "7x"},
		{"empty, no segment", build(true, term), ""},
		// 4 + 10 + 5·10 + 7 = 71 bits: 1 bit left, no room for a terminator.
		{"full, no terminator", build(false, field{1, 4}, field{17, 10}, field{123, 10}, field{456, 10}, field{789, 10}, field{12, 10}, field{345, 10}, field{67, 7}, field{0, 1}), "12345678901234567"},
		{"unknown mode", build(true, field{0b0111, 4}, field{0, 8}), "error: mode indicator 0111"},
		{"kanji", build(true, field{0b1000, 4}, field{0, 8}), "error: mode indicator 1000"},
		{"count beyond capacity", build(true, field{4, 4}, field{9, 8}), "error: byte segment claims 9 characters"},
		{"numeric group 1000", build(true, field{1, 4}, field{3, 10}, field{1000, 10}, term), "error: 3-digit group 1000"},
		{"numeric single digit 10", build(true, field{1, 4}, field{1, 10}, field{10, 4}, term), "error: 1-digit group 10"},
		{"alphanumeric pair 2025", build(true, field{2, 4}, field{2, 9}, field{2025, 11}, term), "error: pair value 2025"},
		{"alphanumeric char 45", build(true, field{2, 4}, field{1, 9}, field{45, 6}, term), "error: character value 45"},
		{"bad pad codeword", append(build(false, field{4, 4}, field{1, 8}, field{'a', 8}, term), 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x12), "error: data codeword 8 after the terminator is 0x12"},
		{"nonzero bits after terminator", build(true, field{1, 4}, field{1, 10}, field{5, 4}, term, field{1, 2}), "error: nonzero bits between the terminator"},
		{"nonzero truncated terminator", build(false, field{1, 4}, field{17, 10}, field{123, 10}, field{456, 10}, field{789, 10}, field{12, 10}, field{345, 10}, field{67, 7}, field{1, 1}), "error: nonzero bits after the last segment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Len(t, tc.data, 9)
			got, err := parseData(tc.data)
			if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
				require.ErrorContains(t, err, want)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, string(got))
		})
	}
}
