package tokenizer

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// mergeReference is transformers' CLIPTokenizer.bpe loop written plainly:
// find the lowest-ranked adjacent pair, merge its occurrences left to
// right, repeat.
func (t *Tokenizer) mergeReference(word []string) []string {
	word = append([]string(nil), word...)
	for len(word) > 1 {
		best, bestRank := -1, 0
		for i := 0; i+1 < len(word); i++ {
			if r, ok := t.ranks[pair{word[i], word[i+1]}]; ok && (best < 0 || r < bestRank) {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		first, second := word[best], word[best+1]
		var next []string
		for i := 0; i < len(word); {
			if i+1 < len(word) && word[i] == first && word[i+1] == second {
				next = append(next, first+second)
				i += 2
			} else {
				next = append(next, word[i])
				i++
			}
		}
		word = next
	}
	return word
}

func symbols(token string) []string {
	var word []string
	rs := []rune(token)
	for i, r := range rs {
		s := string(r)
		if i == len(rs)-1 {
			s += "</w>"
		}
		word = append(word, s)
	}
	return word
}

// TestTokenizerMergeMatchesReference compares the heap-based merge with the
// plain loop on random words, including merge lists whose ranks are out of
// the usual order (a merge using a symbol before the merge making it).
func TestTokenizerMergeMatchesReference(t *testing.T) {
	odd := []string{"xx xx", "x x", "a a", "aa a", "a aa", "aaa a</w>", "b a", "ba b", "a b", "ab ab", "abab ab</w>", "ba ba", "a a</w>"}
	v, m := synthFiles(odd)
	toks := []*Tokenizer{synthTokenizer(t)}
	tok, err := FromReaders(bytes.NewReader(v), bytes.NewReader(m))
	require.NoError(t, err)
	toks = append(toks, tok)
	for _, dir := range []string{"../../testdata/golden/clip_bpe", "../../../shared/fixtures/clip_bpe"} {
		if real, err := Load(dir); err == nil {
			toks = append(toks, real)
			break
		}
	}
	r := rand.New(rand.NewSource(7))
	for ti, tok := range toks {
		for _, alphabet := range []string{"ab", "abx", "helo", "abcdefghijklmnopqrstuvwxyz", "aaab"} {
			for range 300 {
				n := 1 + r.Intn(40)
				var sb strings.Builder
				for range n {
					sb.WriteByte(alphabet[r.Intn(len(alphabet))])
				}
				w := symbols(sb.String())
				require.Equal(t, tok.mergeReference(w), tok.merge(append([]string(nil), w...)), "tokenizer %d word %q", ti, sb.String())
			}
		}
	}
}

// TestTokenizerLongWord: a 64 KiB word without spaces stays fast (the
// plain loop takes tens of seconds).
func TestTokenizerLongWord(t *testing.T) {
	tok := synthTokenizer(t)
	for _, dir := range []string{"../../testdata/golden/clip_bpe", "../../../shared/fixtures/clip_bpe"} {
		if real, err := Load(dir); err == nil {
			tok = real
			break
		}
	}
	r := rand.New(rand.NewSource(1))
	b := make([]byte, 1<<16)
	for i := range b {
		b[i] = byte('a' + r.Intn(26))
	}
	start := time.Now()
	ids := tok.Encode(string(b))
	require.Greater(t, len(ids), 1000)
	require.Less(t, time.Since(start), 5*time.Second)
}
