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
	at := func(r, c int, transpose bool) bool {
		if transpose {
			r, c = c, r
		}
		return m[r*size+c]
	}
	light := func(r, from, to int, transpose bool) bool { // [from, to) of line r
		for c := max(from, 0); c < min(to, size); c++ {
			if at(r, c, transpose) {
				return false
			}
		}
		return true
	}
	score := 0
	for _, tr := range []bool{false, true} {
		for r := 0; r < size; r++ {
			// Rule 1: runs of ≥ 5 same-colour modules score N1 + (run − 5).
			run := 1
			for c := 1; c <= size; c++ {
				if c < size && at(r, c, tr) == at(r, c-1, tr) {
					run++
					continue
				}
				if run >= 5 {
					score += penaltyN1 + run - 5
				}
				run = 1
			}
			// Rule 3: dark-light-dark-dark-dark-light-dark with 4 light
			// modules on either side.
			for c := 0; c+6 < size; c++ {
				if at(r, c, tr) && !at(r, c+1, tr) && at(r, c+2, tr) && at(r, c+3, tr) &&
					at(r, c+4, tr) && !at(r, c+5, tr) && at(r, c+6, tr) &&
					(light(r, c-4, c, tr) || light(r, c+7, c+11, tr)) {
					score += penaltyN3
				}
			}
		}
	}
	// Rule 2: every 2×2 block of one colour.
	dark := 0
	for r := 0; r < size; r++ {
		for c := 0; c < size; c++ {
			v := m[r*size+c]
			if v {
				dark++
			}
			if r+1 < size && c+1 < size && m[r*size+c+1] == v && m[(r+1)*size+c] == v && m[(r+1)*size+c+1] == v {
				score += penaltyN2
			}
		}
	}
	// Rule 4: N4 per full 5 % step the dark proportion is away from 50 %.
	total := size * size
	score += penaltyN4 * (abs(2*dark-total) * 10 / total)
	return score
}
