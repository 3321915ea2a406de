//go:build js

package main

// Pack fetchers for the browser: packs over HTTP (whole-shard fetches with
// byte progress, kept in Cache Storage so a reload works offline) and packs
// from files the user picked (a local folder). Shard bytes stay in JS Blobs
// (which the browser may keep on disk) and are copied into Go memory a
// window at a time as the pack reader asks for them; the pack reader checks
// every shard's sha256 before its bytes are used.

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall/js"
	"time"

	"retrace/nn/pack"
)

// CacheName is the Cache Storage cache that holds pack files.
const CacheName = "retrace-packs-v1"

// Progress is a load progress event.
type Progress struct {
	Loaded, Total int64
	Shard         string
	Cached        bool
}

// blobFile is a pack.File over a JS Blob (or File).
type blobFile struct {
	blob   js.Value
	size   int64
	win    []byte
	winOff int64
}

// window is how much ReadAt copies from the Blob at once.
const window = 4 << 20

func newBlobFile(b js.Value) *blobFile {
	return &blobFile{blob: b, size: int64(b.Get("size").Float())}
}

func (f *blobFile) Size() int64 { return f.size }

func (f *blobFile) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= f.size {
			return n, io.EOF
		}
		if pos < f.winOff || pos >= f.winOff+int64(len(f.win)) {
			end := min(f.size, pos+max(window, int64(len(p)-n)))
			ab, err := callAwait(f.blob.Call("slice", float64(pos), float64(end)), "arrayBuffer")
			if err != nil {
				return n, fmt.Errorf("reading bytes %d…%d: %w", pos, end, err)
			}
			f.win = make([]byte, end-pos)
			js.CopyBytesToGo(f.win, js.Global().Get("Uint8Array").New(ab))
			f.winOff = pos
		}
		n += copy(p[n:], f.win[pos-f.winOff:])
	}
	return n, nil
}

// bytesFile is a pack.File in Go memory (the manifest).
type bytesFile []byte

func (b bytesFile) Size() int64 { return int64(len(b)) }
func (b bytesFile) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// httpFetcher fetches a pack's files from base (a URL ending in "/").
type httpFetcher struct {
	base     string
	cache    js.Value // a Cache, or undefined when Cache Storage is unavailable
	progress func(Progress)
	loaded   int64
	total    int64
	hashes   map[string]string
	// fetched are files downloaded this time: put into the cache once the
	// whole model loaded (so only verified packs are cached).
	fetched []cacheEntry
	offline bool
	// downloaded counts shards that came from the network (0: all from
	// the cache).
	downloaded int
	last       time.Time
}

type cacheEntry struct {
	key  string
	body js.Value // Blob or Uint8Array
}

func openCache() (js.Value, error) {
	caches := js.Global().Get("caches")
	if !caches.Truthy() {
		return js.Undefined(), errors.New("Cache Storage is not available here (the page needs https or localhost): the model will be downloaded again next time")
	}
	c, err := callAwait(caches, "open", CacheName)
	if err != nil {
		return js.Undefined(), fmt.Errorf("Cache Storage: %w", err)
	}
	return c, nil
}

func newHTTPFetcher(base string, progress func(Progress)) (*httpFetcher, error) {
	abs, perr := resolveURL(base)
	if perr != nil {
		return nil, withCode(CodeBadOptions, perr)
	}
	if !strings.HasSuffix(abs, "/") {
		abs += "/"
	}
	f := &httpFetcher{base: abs, progress: progress, hashes: map[string]string{}}
	f.cache, _ = openCache()
	return f, nil
}

// resolveURL makes u absolute against the worker's location.
func resolveURL(u string) (s string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pack URL %q is not a valid URL", u)
		}
	}()
	return js.Global().Get("URL").New(u, js.Global().Get("location").Get("href")).Call("toString").String(), nil
}

func (f *httpFetcher) report(shard string, cached, force bool) {
	if f.progress == nil || (!force && time.Since(f.last) < 50*time.Millisecond) {
		return
	}
	f.last = time.Now()
	f.progress(Progress{Loaded: f.loaded, Total: f.total, Shard: shard, Cached: cached})
}

func (f *httpFetcher) cacheMatch(key string) js.Value {
	if !f.cache.Truthy() {
		return js.Undefined()
	}
	r, err := callAwait(f.cache, "match", key)
	if err != nil || !r.Truthy() {
		return js.Undefined()
	}
	return r
}

// get fetches url; a failed request or status is an error naming the URL.
func get(url string, opts map[string]any) (js.Value, error) {
	resp, err := callAwait(js.Global(), "fetch", url, opts)
	if err != nil {
		return js.Undefined(), withCode(CodeNetwork, fmt.Errorf("pack: GET %s: %v (network error or offline)", url, err))
	}
	if !resp.Get("ok").Bool() {
		return js.Undefined(), withCode(CodeBadPack, fmt.Errorf("pack: GET %s: HTTP %d %s", url, resp.Get("status").Int(), resp.Get("statusText").String()))
	}
	return resp, nil
}

// Open implements pack.Fetcher.
func (f *httpFetcher) Open(name string) (pack.File, error) {
	url := f.base + name
	if name == "manifest.json" {
		return f.openManifest(url)
	}
	key := url
	if h, ok := f.hashes[name]; ok {
		key = url + "?sha256=" + h
	}
	if r := f.cacheMatch(key); r.Truthy() {
		blob, err := callAwait(r, "blob")
		if err == nil {
			b := newBlobFile(blob)
			f.loaded += b.size
			f.report(name, true, true)
			return b, nil
		}
	}
	resp, err := get(url, nil)
	if err != nil {
		return nil, err
	}
	reader := resp.Get("body").Call("getReader")
	chunks := js.Global().Get("Array").New()
	for {
		r, err := callAwait(reader, "read")
		if err != nil {
			return nil, withCode(CodeNetwork, fmt.Errorf("pack: GET %s: %v", url, err))
		}
		if r.Get("done").Bool() {
			break
		}
		v := r.Get("value")
		chunks.Call("push", v)
		f.loaded += int64(v.Get("byteLength").Float())
		f.report(name, false, false)
	}
	blob := js.Global().Get("Blob").New(chunks)
	f.report(name, false, true)
	f.fetched = append(f.fetched, cacheEntry{key, blob})
	f.downloaded++
	return newBlobFile(blob), nil
}

func (f *httpFetcher) openManifest(url string) (pack.File, error) {
	var b []byte
	resp, err := get(url, map[string]any{"cache": "no-cache"})
	if err != nil {
		// Offline: the cached manifest (and shards) still load the model.
		r := f.cacheMatch(url)
		if !r.Truthy() || ErrorCode(err) != CodeNetwork {
			return nil, err
		}
		resp, f.offline = r, true
	}
	ab, err := callAwait(resp, "arrayBuffer")
	if err != nil {
		return nil, withCode(CodeNetwork, fmt.Errorf("pack: GET %s: %v", url, err))
	}
	b = make([]byte, ab.Get("byteLength").Int())
	js.CopyBytesToGo(b, js.Global().Get("Uint8Array").New(ab))
	if m, err := pack.ParseManifest(b); err == nil {
		for _, s := range m.Shards {
			f.hashes[s.File] = s.SHA256
			f.total += s.Bytes
		}
	}
	if !f.offline {
		f.fetched = append(f.fetched, cacheEntry{url, bytesToJS(b)})
	}
	f.report("manifest.json", f.offline, true)
	return bytesFile(b), nil
}

// commit stores the files fetched this time in Cache Storage and deletes
// cached files of the same pack that its manifest no longer names. A full
// quota is returned as an error (code "quota"): the model is loaded, only
// not cached.
func (f *httpFetcher) commit() error {
	if !f.cache.Truthy() {
		if _, err := openCache(); err != nil {
			return withCode(CodeQuota, err)
		}
		return nil
	}
	keep := map[string]bool{f.base + "manifest.json": true}
	for name, h := range f.hashes {
		keep[f.base+name+"?sha256="+h] = true
	}
	for _, e := range f.fetched {
		resp := js.Global().Get("Response").New(e.body)
		if _, err := callAwait(f.cache, "put", e.key, resp); err != nil {
			if isQuota(err) {
				return withCode(CodeQuota, fmt.Errorf("the browser's storage quota is full: the model was loaded but not cached for offline use (%v); clear the cache or free space", err))
			}
			return withCode(CodeQuota, fmt.Errorf("caching %s failed: %v", e.key, err))
		}
	}
	f.fetched = nil
	keys, err := callAwait(f.cache, "keys")
	if err != nil {
		return nil
	}
	for i := 0; i < keys.Length(); i++ {
		u := keys.Index(i).Get("url").String()
		if strings.HasPrefix(u, f.base) && !keep[u] {
			callAwait(f.cache, "delete", keys.Index(i))
		}
	}
	return nil
}

// clearCache deletes retrace's cache; true if there was one.
func clearCache() (bool, error) {
	caches := js.Global().Get("caches")
	if !caches.Truthy() {
		return false, nil
	}
	v, err := callAwait(caches, "delete", CacheName)
	if err != nil {
		return false, err
	}
	return v.Truthy(), nil
}

// filesFetcher serves a pack from File objects the user picked (a folder
// with manifest.json and the shards), by base name.
type filesFetcher struct {
	files    map[string]js.Value
	progress func(Progress)
	loaded   int64
	total    int64
}

func newFilesFetcher(list js.Value, progress func(Progress)) (*filesFetcher, string) {
	f := &filesFetcher{files: map[string]js.Value{}, progress: progress}
	name := "local pack"
	for i := 0; i < list.Length(); i++ {
		file := list.Index(i)
		f.files[file.Get("name").String()] = file
		f.total += int64(file.Get("size").Float())
		if rel := file.Get("webkitRelativePath"); rel.Type() == js.TypeString && strings.Contains(rel.String(), "/") {
			name = strings.Split(rel.String(), "/")[0]
		}
	}
	if m, ok := f.files["manifest.json"]; ok {
		f.total -= int64(m.Get("size").Float())
	}
	return f, name
}

func (f *filesFetcher) Open(name string) (pack.File, error) {
	file, ok := f.files[name]
	if !ok {
		return nil, withCode(CodeBadPack, fmt.Errorf("pack: the chosen files have no %s (pick the pack's folder: manifest.json and its shards)", name))
	}
	b := newBlobFile(file)
	if name != "manifest.json" {
		f.loaded += b.size
		if f.progress != nil {
			f.progress(Progress{Loaded: f.loaded, Total: f.total, Shard: name, Cached: true})
		}
	}
	return b, nil
}
