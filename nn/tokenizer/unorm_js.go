//go:build js

package tokenizer

import "syscall/js"

// nfc and nfkc use the browser's String.prototype.normalize (the
// JavaScript engine's ICU tables); unorm_other.go has the native ones.
func nfc(s string) string {
	if isASCII(s) {
		return s
	}
	return js.ValueOf(s).Call("normalize", "NFC").String()
}

func nfkc(s string) string {
	if isASCII(s) {
		return s
	}
	return js.ValueOf(s).Call("normalize", "NFKC").String()
}
