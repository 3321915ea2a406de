//go:build !js

package pack

import (
	"crypto/sha256"
	"hash"
)

// newSHA256 hashes shards: crypto/sha256 natively (sha256.go says why the
// browser differs).
func newSHA256() hash.Hash { return sha256.New() }
