//go:build js

package pack

import "hash"

// newSHA256 hashes shards: the small SHA-256 in the browser (sha256.go).
func newSHA256() hash.Hash { return newSHA256Small() }
