package qr

// Symbol layout (§6.3, §7.7–§7.9): function patterns, format information,
// the zig-zag placement of codewords and the data masks. Modules are
// row-major; (row, col) with (0, 0) top left.

// symbolSize is 17 + 4·version.
func symbolSize(version int) int { return 17 + 4*version }

// IsFunction reports whether module (row, col) of a version-v symbol is a
// function pattern (finder, separators, timing, alignment, dark module) or
// format/version information, i.e. not a data or error correction module.
// It reports false outside the symbol and for versions other than 1–4.
func IsFunction(version, row, col int) bool {
	if version < MinVersion || version > MaxVersion {
		return false
	}
	size := symbolSize(version)
	if row < 0 || col < 0 || row >= size || col >= size {
		return false
	}
	switch {
	case row <= 8 && col <= 8: // top-left finder, separator, format information
		return true
	case row <= 8 && col >= size-8: // top-right finder, separator; format row 8
		return true
	case row >= size-8 && col <= 8: // bottom-left finder, separator, dark module; format col 8
		return true
	case row == 6 || col == 6: // timing patterns
		return true
	}
	if c := alignmentCenter[version]; c > 0 && abs(row-c) <= 2 && abs(col-c) <= 2 {
		return true
	}
	return false
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// drawFunctionPatterns sets the finder, separator, timing, alignment
// patterns and the dark module of m (format information is drawn by
// drawFormat).
func drawFunctionPatterns(m []bool, version int) {
	size := symbolSize(version)
	set := func(r, c int, dark bool) { m[r*size+c] = dark }
	// Finder patterns (7×7, §6.3.3) with their light separators.
	for _, o := range [][2]int{{0, 0}, {0, size - 7}, {size - 7, 0}} {
		for dr := -1; dr <= 7; dr++ {
			for dc := -1; dc <= 7; dc++ {
				r, c := o[0]+dr, o[1]+dc
				if r < 0 || c < 0 || r >= size || c >= size {
					continue
				}
				d := max(abs(dr-3), abs(dc-3)) // ring distance from the centre
				set(r, c, d != 2 && d != 4)
			}
		}
	}
	// Timing patterns (§6.3.5): dark on even positions.
	for i := 8; i < size-8; i++ {
		set(6, i, i%2 == 0)
		set(i, 6, i%2 == 0)
	}
	// Alignment pattern (§6.3.6): 5×5, dark ring, light ring, dark centre.
	if c := alignmentCenter[version]; c > 0 {
		for dr := -2; dr <= 2; dr++ {
			for dc := -2; dc <= 2; dc++ {
				set(c+dr, c+dc, max(abs(dr), abs(dc)) != 1)
			}
		}
	}
	set(size-8, 8, true) // dark module (§7.9.1)
}

// formatWord returns the 15-bit format information (§7.9): 2 level bits and
// 3 mask bits, BCH(15,5) with generator 0x537, XORed with 0x5412.
func formatWord(level Level, mask int) int {
	data := level.formatBits()<<3 | mask
	rem := data << 10
	for i := 14; i >= 10; i-- {
		if rem&(1<<i) != 0 {
			rem ^= 0x537 << (i - 10)
		}
	}
	return (data<<10 | rem) ^ 0x5412
}

// formatPositions returns the (row, col) of format bit i (0 = least
// significant) in the first copy (around the top-left finder) and the
// second copy (split between the top-right and bottom-left finders),
// Figure 25.
func formatPositions(size int) (first, second [15][2]int) {
	for i := 0; i < 15; i++ {
		switch {
		case i < 6:
			first[i] = [2]int{i, 8}
		case i < 8:
			first[i] = [2]int{i + 1, 8}
		case i == 8:
			first[i] = [2]int{8, 7}
		default:
			first[i] = [2]int{8, 14 - i}
		}
		if i < 8 {
			second[i] = [2]int{8, size - 1 - i}
		} else {
			second[i] = [2]int{size - 15 + i, 8}
		}
	}
	return first, second
}

// drawFormat writes both copies of the format information.
func drawFormat(m []bool, size int, word int) {
	first, second := formatPositions(size)
	for i := 0; i < 15; i++ {
		bit := word>>i&1 != 0
		m[first[i][0]*size+first[i][1]] = bit
		m[second[i][0]*size+second[i][1]] = bit
	}
}

// dataPositions returns the module indices (row·size + col) that hold the
// codeword bits, in placement order (§7.7.3): two-module columns from the
// right, alternately upwards and downwards, skipping the vertical timing
// column 6 and function modules. Bit j of the sequence is bit 7 − j%8 of
// codeword j/8; positions past the last codeword are remainder bits.
func dataPositions(version int) []int {
	size := symbolSize(version)
	var pos []int
	for right := size - 1; right >= 1; right -= 2 {
		if right == 6 {
			right = 5
		}
		upward := (right+1)&2 == 0
		for v := 0; v < size; v++ {
			row := v
			if upward {
				row = size - 1 - v
			}
			for j := 0; j < 2; j++ {
				col := right - j
				if !IsFunction(version, row, col) {
					pos = append(pos, row*size+col)
				}
			}
		}
	}
	return pos
}

// maskBit reports whether data mask pattern mask inverts module (i, j)
// (row i, column j), Table 10.
func maskBit(mask, i, j int) bool {
	switch mask {
	case 0:
		return (i+j)%2 == 0
	case 1:
		return i%2 == 0
	case 2:
		return j%3 == 0
	case 3:
		return (i+j)%3 == 0
	case 4:
		return (i/2+j/3)%2 == 0
	case 5:
		return i*j%2+i*j%3 == 0
	case 6:
		return (i*j%2+i*j%3)%2 == 0
	case 7:
		return ((i+j)%2+i*j%3)%2 == 0
	}
	panic("qr: mask out of range")
}

// interleave splits data codewords into the blocks of version and level,
// appends each block's error correction codewords and returns the final
// message sequence (§7.6): data codewords column by column across blocks,
// then error correction codewords likewise.
func interleave(data []byte, version int, level Level) []byte {
	bs := blocks(version, level)
	var dataBlocks, ecBlocks [][]byte
	off := 0
	for _, b := range bs {
		d := data[off : off+b.k]
		off += b.k
		dataBlocks = append(dataBlocks, d)
		ecBlocks = append(ecBlocks, rsEncode(d, b.n-b.k))
	}
	var out []byte
	for _, group := range [][][]byte{dataBlocks, ecBlocks} {
		longest := 0
		for _, b := range group {
			longest = max(longest, len(b))
		}
		for i := 0; i < longest; i++ {
			for _, b := range group {
				if i < len(b) {
					out = append(out, b[i])
				}
			}
		}
	}
	return out
}

// deinterleaveIndex returns, for each block of version and level, the
// indices into the interleaved codeword sequence of its codewords (data
// then error correction), the inverse of interleave.
func deinterleaveIndex(version int, level Level) [][]int {
	bs := blocks(version, level)
	idx := make([][]int, len(bs))
	next := 0
	longest := 0
	for _, b := range bs {
		longest = max(longest, b.k)
	}
	for i := 0; i < longest; i++ {
		for bi, b := range bs {
			if i < b.k {
				idx[bi] = append(idx[bi], next)
				next++
			}
		}
	}
	longest = 0
	for _, b := range bs {
		longest = max(longest, b.n-b.k)
	}
	for i := 0; i < longest; i++ {
		for bi, b := range bs {
			if i < b.n-b.k {
				idx[bi] = append(idx[bi], next)
				next++
			}
		}
	}
	return idx
}

// buildMatrix draws a complete symbol: function patterns, the codewords
// (already interleaved) placed and masked, and the format information.
func buildMatrix(version int, level Level, mask int, codewords []byte) []bool {
	size := symbolSize(version)
	m := make([]bool, size*size)
	drawFunctionPatterns(m, version)
	for j, p := range dataPositions(version) {
		var bit bool
		if j/8 < len(codewords) {
			bit = codewords[j/8]>>(7-j%8)&1 != 0
		}
		if maskBit(mask, p/size, p%size) {
			bit = !bit
		}
		m[p] = bit
	}
	drawFormat(m, size, formatWord(level, mask))
	return m
}
