package tokenizer

// isASCII: ASCII text is already in every Unicode normalization form.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
