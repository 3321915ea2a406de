package qr

// Penalty weights of the mask evaluation (§7.8.3, Table 11).
const (
	penaltyN1 = 3
	penaltyN2 = 3
	penaltyN3 = 40
	penaltyN4 = 10
)

// penalty scores a complete symbol (format information included) by the
// four rules of §7.8.3; the encoder picks the mask with the lowest score,
// the lowest mask number on ties.
//
// Where the spec leaves room for reading, this follows ZXing (MaskUtil):
// rule 3 counts each 1:1:3:1:1 finder-like run once when 4 light modules
// precede or follow it, modules outside the symbol counting as light (the
// quiet zone); rule 4 uses k = ⌊|dark% − 50| / 5⌋.
func penalty(m []bool, size int) int {
	return penaltyRuns(m, size) + penaltyBlocks(m, size) + penaltyFinderLike(m, size) + penaltyBalance(m, size)
}

// line returns module c of row r, or of column r when transpose is set.
func line(m []bool, size, r, c int, transpose bool) bool {
	if transpose {
		r, c = c, r
	}
	return m[r*size+c]
}

// penaltyRuns is rule 1: each run of ≥ 5 same-colour modules in a row or
// column scores N1 + (run − 5).
func penaltyRuns(m []bool, size int) int {
	score := 0
	for _, tr := range []bool{false, true} {
		for r := 0; r < size; r++ {
			run := 1
			for c := 1; c <= size; c++ {
				if c < size && line(m, size, r, c, tr) == line(m, size, r, c-1, tr) {
					run++
					continue
				}
				if run >= 5 {
					score += penaltyN1 + run - 5
				}
				run = 1
			}
		}
	}
	return score
}

// penaltyBlocks is rule 2: N2 for every 2×2 block of one colour
// (overlapping blocks count separately).
func penaltyBlocks(m []bool, size int) int {
	score := 0
	for r := 0; r+1 < size; r++ {
		for c := 0; c+1 < size; c++ {
			v := m[r*size+c]
			if m[r*size+c+1] == v && m[(r+1)*size+c] == v && m[(r+1)*size+c+1] == v {
				score += penaltyN2
			}
		}
	}
	return score
}

// penaltyFinderLike is rule 3: N3 for each dark-light-dark-dark-dark-
// light-dark run in a row or column with 4 light modules before or after
// it (once even when both sides are light); outside the symbol is light.
func penaltyFinderLike(m []bool, size int) int {
	score := 0
	for _, tr := range []bool{false, true} {
		at := func(r, c int) bool { return line(m, size, r, c, tr) }
		light := func(r, from, to int) bool { // [from, to) of line r
			for c := max(from, 0); c < min(to, size); c++ {
				if at(r, c) {
					return false
				}
			}
			return true
		}
		for r := 0; r < size; r++ {
			for c := 0; c+6 < size; c++ {
				if at(r, c) && !at(r, c+1) && at(r, c+2) && at(r, c+3) && at(r, c+4) && !at(r, c+5) && at(r, c+6) &&
					(light(r, c-4, c) || light(r, c+7, c+11)) {
					score += penaltyN3
				}
			}
		}
	}
	return score
}

// penaltyBalance is rule 4: N4 per full 5 % step the proportion of dark
// modules is away from 50 %, k = ⌊|dark% − 50| / 5⌋.
func penaltyBalance(m []bool, size int) int {
	dark := 0
	for _, v := range m {
		if v {
			dark++
		}
	}
	total := size * size
	return penaltyN4 * (abs(2*dark-total) * 10 / total)
}
