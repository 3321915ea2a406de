package qr

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestQRRSKnownVectors checks the Reed–Solomon encoder against published
// codewords: ISO/IEC 18004 Annex I (version 1-M "01234567", numeric) and
// the widely reproduced version 1-M "HELLO WORLD" (alphanumeric) example.
func TestQRRSKnownVectors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		data, ec []byte
	}{
		{"annex I 01234567", []byte{0x10, 0x20, 0x0C, 0x56, 0x61, 0x80, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11},
			[]byte{0xA5, 0x24, 0xD4, 0xC1, 0xED, 0x36, 0xC7, 0x87, 0x2C, 0x55}},
		{"HELLO WORLD 1-M", []byte{32, 91, 11, 120, 209, 114, 220, 77, 67, 64, 236, 17, 236, 17, 236, 17},
			[]byte{196, 35, 39, 119, 235, 215, 231, 226, 93, 23}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.ec, rsEncode(tc.data, len(tc.ec)))
			_, zero := rsSyndromes(append(append([]byte(nil), tc.data...), tc.ec...), len(tc.ec))
			require.True(t, zero)
		})
	}
}

// TestQRRSKnownSymbols decodes symbols built from the known codewords: the
// numeric and alphanumeric parsers and the whole matrix path.
func TestQRRSKnownSymbols(t *testing.T) {
	for _, tc := range []struct {
		want string
		data []byte
	}{
		{"01234567", []byte{0x10, 0x20, 0x0C, 0x56, 0x61, 0x80, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11, 0xEC, 0x11}},
		{"HELLO WORLD", []byte{32, 91, 11, 120, 209, 114, 220, 77, 67, 64, 236, 17, 236, 17, 236, 17}},
	} {
		for mask := 0; mask < 8; mask++ {
			m := buildMatrix(1, M, mask, interleave(tc.data, 1, M))
			res, err := Decode(m, 21)
			require.NoError(t, err)
			require.Equal(t, tc.want, string(res.Data))
			require.Equal(t, mask, res.Mask)
			require.Equal(t, M, res.Level)
		}
	}
}

// rsCodes are the (n, k) block shapes of versions 1–4.
func rsCodes() [][2]int {
	seen := map[[2]int]bool{}
	var out [][2]int
	for v := MinVersion; v <= MaxVersion; v++ {
		for lv := L; lv <= H; lv++ {
			for _, b := range blocks(v, lv) {
				if !seen[[2]int{b.n, b.k}] {
					seen[[2]int{b.n, b.k}] = true
					out = append(out, [2]int{b.n, b.k})
				}
			}
		}
	}
	return out
}

func randomCodeword(rng *rand.Rand, n, k int) []byte {
	data := make([]byte, k)
	for i := range data {
		data[i] = byte(rng.IntN(256))
	}
	return append(data, rsEncode(data, n-k)...)
}

// corrupt changes the given positions of a copy of w to different values.
func corrupt(rng *rand.Rand, w []byte, pos []int) []byte {
	r := append([]byte(nil), w...)
	for _, p := range pos {
		r[p] ^= byte(1 + rng.IntN(255))
	}
	return r
}

// TestQRRSCorrects corrupts t errors and e erasures with 2t + e ≤ n − k in
// every block shape of versions 1–4 and requires the exact codeword back.
func TestQRRSCorrects(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, nk := range rsCodes() {
		n, k := nk[0], nk[1]
		ec := n - k
		t.Run(fmt.Sprintf("n%d_k%d", n, k), func(t *testing.T) {
			for e := 0; e <= ec; e++ {
				for errs := 0; 2*errs+e <= ec; errs++ {
					for trial := 0; trial < 3; trial++ {
						w := randomCodeword(rng, n, k)
						perm := rng.Perm(n)
						erased := perm[:e]
						// Erased positions may or may not hold wrong values.
						r := corrupt(rng, w, perm[e:e+errs])
						for _, p := range erased {
							if rng.IntN(2) == 0 {
								r[p] = byte(rng.IntN(256))
							}
						}
						wrong := 0
						for i := range r {
							if r[i] != w[i] {
								wrong++
							}
						}
						fixed, err := rsDecode(r, ec, erased)
						require.NoError(t, err, "%d errors, %d erasures", errs, e)
						require.Equal(t, w, r, "%d errors, %d erasures", errs, e)
						require.Equal(t, wrong, fixed)
					}
				}
			}
		})
	}
}

// TestQRRSBeyondBound corrupts more than the code can correct: the decoder
// must return an error or a valid codeword (never panic, never a word with
// nonzero syndromes), and leave the block untouched on error.
func TestQRRSBeyondBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, nk := range rsCodes() {
		n, k := nk[0], nk[1]
		ec := n - k
		failed, miscorrected := 0, 0
		for trial := 0; trial < 200; trial++ {
			w := randomCodeword(rng, n, k)
			e := rng.IntN(ec + 1)
			errs := (ec-e)/2 + 1 + rng.IntN(3)
			if e+errs > n {
				continue
			}
			perm := rng.Perm(n)
			r := corrupt(rng, w, perm[e:e+errs])
			before := append([]byte(nil), r...)
			_, err := rsDecode(r, ec, perm[:e])
			if err != nil {
				failed++
				require.Equal(t, before, r, "block changed on error")
				continue
			}
			_, zero := rsSyndromes(r, ec)
			require.True(t, zero, "success must be a valid codeword")
			require.NotEqual(t, w, r, "beyond the bound yet the original came back")
			miscorrected++
		}
		require.Positive(t, failed, "n=%d k=%d: some uncorrectable words must be detected", n, k)
		t.Logf("n=%d k=%d: %d detected, %d miscorrected into another codeword", n, k, failed, miscorrected)
	}
	// Bad arguments are errors.
	w := randomCodeword(rng, 26, 16)
	_, err := rsDecode(w, 10, []int{1, 1})
	require.ErrorContains(t, err, "repeated")
	_, err = rsDecode(w, 10, []int{26})
	require.ErrorContains(t, err, "out of range")
	_, err = rsDecode(w, 10, make([]int, 11))
	require.ErrorContains(t, err, "exceed")
}
