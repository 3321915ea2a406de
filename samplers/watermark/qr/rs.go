package qr

import "fmt"

// GF(256) as QR codes use it (ISO/IEC 18004:2015 §7.5.2): the field
// polynomial x⁸+x⁴+x³+x²+1 (0x11D), primitive element α = 2.
var (
	gfExp [512]byte // gfExp[i] = α^i, doubled so products need no mod 255
	gfLog [256]int  // gfLog[α^i] = i; gfLog[0] is unused
)

func init() {
	x := 1
	for i := 0; i < 255; i++ {
		gfExp[i] = byte(x)
		gfLog[x] = i
		x <<= 1
		if x&0x100 != 0 {
			x ^= 0x11D
		}
	}
	for i := 255; i < 512; i++ {
		gfExp[i] = gfExp[i-255]
	}
}

func gfMul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return gfExp[gfLog[a]+gfLog[b]]
}

// gfDiv returns a/b; b must not be 0.
func gfDiv(a, b byte) byte {
	if a == 0 {
		return 0
	}
	return gfExp[gfLog[a]+255-gfLog[b]]
}

// gfPow returns α^e for any integer e.
func gfPow(e int) byte {
	e %= 255
	if e < 0 {
		e += 255
	}
	return gfExp[e]
}

// Polynomials below are coefficient slices, lowest degree first, unless a
// comment says otherwise.

// polyEval evaluates p (lowest degree first) at x.
func polyEval(p []byte, x byte) byte {
	var y byte
	for i := len(p) - 1; i >= 0; i-- {
		y = gfMul(y, x) ^ p[i]
	}
	return y
}

// rsGenerator returns g(x) = Π_{i=0}^{ec-1} (x − α^i) (§7.5.2, Annex A),
// highest degree first, leading coefficient 1 included.
func rsGenerator(ec int) []byte {
	g := []byte{1}
	for i := 0; i < ec; i++ {
		next := make([]byte, len(g)+1)
		for j, c := range g {
			next[j] ^= c
			next[j+1] ^= gfMul(c, gfExp[i])
		}
		g = next
	}
	return g
}

// rsEncode returns the ec error correction codewords of data: the remainder
// of data(x)·x^ec divided by g(x), data[0] being the highest degree term.
func rsEncode(data []byte, ec int) []byte {
	g := rsGenerator(ec)
	rem := make([]byte, ec)
	for _, d := range data {
		f := d ^ rem[0]
		copy(rem, rem[1:])
		rem[ec-1] = 0
		for j := 0; j < ec; j++ {
			rem[j] ^= gfMul(g[j+1], f)
		}
	}
	return rem
}

// rsSyndromes returns S_j = r(α^j), j = 0…ec−1, of a received block r
// (r[0] the highest degree term, as QR transmits), and whether all are zero.
func rsSyndromes(r []byte, ec int) ([]byte, bool) {
	s := make([]byte, ec)
	zero := true
	for j := 0; j < ec; j++ {
		var y byte
		x := gfExp[j]
		for _, c := range r {
			y = gfMul(y, x) ^ c
		}
		s[j] = y
		if y != 0 {
			zero = false
		}
	}
	return s, zero
}

// rsDecode corrects block (n = len(block) codewords, the last ec of them
// error correction codewords) in place, treating the positions in erasures
// as unknown. It corrects ν errors and ρ erasures when 2ν + ρ ≤ ec, using
// the Berlekamp–Massey algorithm initialised with the erasure locator, a
// Chien search and Forney's formula, and checks the syndromes afterwards.
// It returns the number of codewords whose value it changed. Beyond the
// bound it returns an error, or — inherent to any decoder — a different
// valid codeword; it never leaves block half corrected on error.
func rsDecode(block []byte, ec int, erasures []int) (int, error) {
	n := len(block)
	if ec <= 0 || ec >= n || n > 255 {
		return 0, fmt.Errorf("qr: Reed–Solomon block of %d codewords with %d error correction codewords is not a valid code", n, ec)
	}
	if len(erasures) > ec {
		return 0, fmt.Errorf("qr: %d erasures exceed the %d error correction codewords", len(erasures), ec)
	}
	seen := make(map[int]bool, len(erasures))
	for _, p := range erasures {
		if p < 0 || p >= n || seen[p] {
			return 0, fmt.Errorf("qr: erasure position %d is out of range or repeated (block of %d)", p, n)
		}
		seen[p] = true
	}
	S, zero := rsSyndromes(block, ec)
	if zero {
		return 0, nil
	}
	// Position i (0 = first codeword) is the coefficient of x^(n−1−i); its
	// locator is X = α^(n−1−i).
	lambda := []byte{1} // errata locator Λ(x), lowest degree first
	for _, p := range erasures {
		lambda = polyMulLinear(lambda, gfPow(n-1-p)) // Γ(x) = Π (1 − X x)
	}
	rho := len(erasures)
	B := append([]byte(nil), lambda...)
	L := rho
	for r := rho + 1; r <= ec; r++ {
		// Discrepancy Δ = Σ_j Λ_j S_{r−1−j}.
		var delta byte
		for j := 0; j < len(lambda) && j <= r-1; j++ {
			delta ^= gfMul(lambda[j], S[r-1-j])
		}
		xB := append([]byte{0}, B...)
		if delta == 0 {
			B = xB
			continue
		}
		next := make([]byte, max(len(lambda), len(xB)))
		copy(next, lambda)
		for j, c := range xB {
			next[j] ^= gfMul(delta, c)
		}
		if 2*L <= r+rho-1 {
			inv := gfDiv(1, delta)
			B = make([]byte, len(lambda))
			for j, c := range lambda {
				B[j] = gfMul(c, inv)
			}
			L = r - L + rho
		} else {
			B = xB
		}
		lambda = next
	}
	lambda = trimPoly(lambda)
	deg := len(lambda) - 1
	if deg != L || 2*(L-rho)+rho > ec {
		return 0, fmt.Errorf("qr: Reed–Solomon block has more errors than %d error correction codewords can correct (%d erasures)", ec, rho)
	}
	// Chien search: position i is in error when Λ(X_i⁻¹) = 0.
	var pos []int
	for i := 0; i < n; i++ {
		if polyEval(lambda, gfPow(-(n-1-i))) == 0 {
			pos = append(pos, i)
		}
	}
	if len(pos) != deg {
		return 0, fmt.Errorf("qr: Reed–Solomon error locator has %d roots in the block, want %d: too many errors", len(pos), deg)
	}
	// Ω(x) = S(x)Λ(x) mod x^ec; Forney with first root α^0:
	// e = X · Ω(X⁻¹) / Λ'(X⁻¹).
	omega := make([]byte, ec)
	for i, a := range lambda {
		for j := 0; j+i < ec && j < len(S); j++ {
			omega[i+j] ^= gfMul(a, S[j])
		}
	}
	dLambda := make([]byte, len(lambda)) // formal derivative: odd terms only
	for i := 1; i < len(lambda); i += 2 {
		dLambda[i-1] = lambda[i]
	}
	fixed := append([]byte(nil), block...)
	changed := 0
	for _, i := range pos {
		X := gfPow(n - 1 - i)
		Xinv := gfPow(-(n - 1 - i))
		den := polyEval(dLambda, Xinv)
		if den == 0 {
			return 0, fmt.Errorf("qr: Reed–Solomon error value at position %d is undefined (Λ' = 0): too many errors", i)
		}
		e := gfMul(X, gfDiv(polyEval(omega, Xinv), den))
		if e == 0 && !seen[i] {
			return 0, fmt.Errorf("qr: Reed–Solomon found a zero error at position %d: too many errors", i)
		}
		if e != 0 {
			changed++
		}
		fixed[i] ^= e
	}
	if _, ok := rsSyndromes(fixed, ec); !ok {
		return 0, fmt.Errorf("qr: Reed–Solomon correction left nonzero syndromes: too many errors")
	}
	copy(block, fixed)
	return changed, nil
}

// polyMulLinear returns p(x)·(1 − a x) (lowest degree first).
func polyMulLinear(p []byte, a byte) []byte {
	out := make([]byte, len(p)+1)
	copy(out, p)
	for i, c := range p {
		out[i+1] ^= gfMul(c, a)
	}
	return out
}

// trimPoly drops zero coefficients of the highest degrees (keeps at least one).
func trimPoly(p []byte) []byte {
	for len(p) > 1 && p[len(p)-1] == 0 {
		p = p[:len(p)-1]
	}
	return p
}
