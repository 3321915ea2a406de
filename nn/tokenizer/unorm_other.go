//go:build !js

package tokenizer

import "golang.org/x/text/unicode/norm"

// nfc and nfkc are Unicode normalization forms C and KC: natively from
// golang.org/x/text, in the browser from String.prototype.normalize
// (unorm_js.go), which keeps x/text's tables (~150 KB) out of the wasm.
func nfc(s string) string {
	if isASCII(s) {
		return s
	}
	return norm.NFC.String(s)
}

func nfkc(s string) string {
	if isASCII(s) {
		return s
	}
	return norm.NFKC.String(s)
}
