package qr

import "fmt"

// MinVersion and MaxVersion bound the symbol versions this package reads
// and writes (versions 7+ would need version information, §7.10).
const (
	MinVersion = 1
	MaxVersion = 4
)

// Level is an error correction level (§7.5.1).
type Level int

// The error correction levels, recovering about 7, 15, 25 and 30 % of the
// codewords.
const (
	L Level = iota
	M
	Q
	H
)

// String returns "L", "M", "Q" or "H".
func (l Level) String() string {
	switch l {
	case L:
		return "L"
	case M:
		return "M"
	case Q:
		return "Q"
	case H:
		return "H"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

func (l Level) valid() bool { return l >= L && l <= H }

// formatBits are the two error correction level bits of the format
// information (Table 12): L = 01, M = 00, Q = 11, H = 10.
func (l Level) formatBits() int { return [4]int{1, 0, 3, 2}[l] }

// levelFromFormatBits inverts formatBits.
var levelFromFormatBits = [4]Level{M, L, H, Q}

// blockGroup is a run of identical error correction blocks: count blocks of
// (total, data) codewords.
type blockGroup struct{ count, total, data int }

// ecBlocks is Table 9 for versions 1–4, indexed [version][level].
var ecBlocks = [MaxVersion + 1][4][]blockGroup{
	1: {{{1, 26, 19}}, {{1, 26, 16}}, {{1, 26, 13}}, {{1, 26, 9}}},
	2: {{{1, 44, 34}}, {{1, 44, 28}}, {{1, 44, 22}}, {{1, 44, 16}}},
	3: {{{1, 70, 55}}, {{1, 70, 44}}, {{2, 35, 17}}, {{2, 35, 13}}},
	4: {{{1, 100, 80}}, {{2, 50, 32}}, {{2, 50, 24}}, {{4, 25, 9}}},
}

// alignmentCenter is the row and column of the single alignment pattern of
// versions 2–6 (Annex E); version 1 has none.
var alignmentCenter = [MaxVersion + 1]int{2: 18, 3: 22, 4: 26}

// remainderBits follow the last codeword (Table 1).
var remainderBits = [MaxVersion + 1]int{1: 0, 2: 7, 3: 7, 4: 7}

// blockSpec is one block: n codewords, k of them data.
type blockSpec struct{ n, k int }

// blocks lists the blocks of a version and level in transmission order.
func blocks(version int, level Level) []blockSpec {
	var out []blockSpec
	for _, g := range ecBlocks[version][level] {
		for i := 0; i < g.count; i++ {
			out = append(out, blockSpec{g.total, g.data})
		}
	}
	return out
}

// dataCodewords is the number of data codewords of a version and level.
func dataCodewords(version int, level Level) int {
	k := 0
	for _, b := range blocks(version, level) {
		k += b.k
	}
	return k
}

// ByteCapacity is the longest byte-mode payload (in bytes) that fits a
// version 1–4 symbol at level: 4 mode bits and an 8-bit count precede the
// data (§7.4.5, Table 3).
func ByteCapacity(version int, level Level) int {
	if version < MinVersion || version > MaxVersion || !level.valid() {
		return 0
	}
	return (dataCodewords(version, level)*8 - 4 - 8) / 8
}
