package tokenizer

import (
	"container/heap"
	"sort"
)

// merge applies the BPE merges to word exactly as transformers'
// CLIPTokenizer.bpe does: take the lowest-ranked pair present anywhere in
// the word, merge all its non-overlapping occurrences left to right, and
// repeat until no pair has a rank. Done naively that costs O(n²) for a long
// word without spaces (a pasted URL or hash); here each distinct pair keeps
// the list of its occurrences and a heap yields the next pair, so a round
// touches only the occurrences it merges.
func (t *Tokenizer) merge(word []string) []string {
	n := len(word)
	if n < 2 {
		return word
	}
	sym := append([]string(nil), word...)
	prev := make([]int, n) // linked list over the original positions
	next := make([]int, n)
	for i := range n {
		prev[i], next[i] = i-1, i+1
	}
	next[n-1] = -1
	alive := make([]bool, n)
	for i := range alive {
		alive[i] = true
	}
	occ := make(map[pair][]int)
	var pq rankHeap
	add := func(i int) { // record the pair starting at node i
		j := next[i]
		if j < 0 {
			return
		}
		p := pair{sym[i], sym[j]}
		r, ok := t.ranks[p]
		if !ok {
			return
		}
		if len(occ[p]) == 0 {
			heap.Push(&pq, rankedPair{r, p})
		}
		occ[p] = append(occ[p], i)
	}
	valid := func(i int, p pair) bool {
		return alive[i] && sym[i] == p.a && next[i] >= 0 && sym[next[i]] == p.b
	}
	for i := 0; i+1 < n; i++ {
		add(i)
	}
	for pq.Len() > 0 {
		top := heap.Pop(&pq).(rankedPair)
		p := top.p
		list := occ[p]
		delete(occ, p)
		sort.Ints(list)
		merged := p.a + p.b
		for k, i := range list {
			if k > 0 && i == list[k-1] || !valid(i, p) {
				continue // stale, duplicate, or consumed earlier in this round
			}
			j := next[i]
			sym[i] = merged
			alive[j] = false
			next[i] = next[j]
			if next[j] >= 0 {
				prev[next[j]] = i
			}
			if prev[i] >= 0 {
				add(prev[i])
			}
			add(i)
		}
	}
	out := word[:0:0]
	for i := 0; i >= 0; i = next[i] {
		out = append(out, sym[i])
	}
	return out
}

type rankedPair struct {
	rank int
	p    pair
}

type rankHeap []rankedPair

func (h rankHeap) Len() int           { return len(h) }
func (h rankHeap) Less(i, j int) bool { return h[i].rank < h[j].rank }
func (h rankHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *rankHeap) Push(x any)        { *h = append(*h, x.(rankedPair)) }
func (h *rankHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
