//go:build !js

package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/tdewolff/minify/v2"
	"github.com/tdewolff/minify/v2/css"
	"github.com/tdewolff/minify/v2/html"
	"github.com/tdewolff/minify/v2/js"
	mjson "github.com/tdewolff/minify/v2/json"
	"github.com/tdewolff/minify/v2/svg"

	"retrace/nn/pack"
)

func init() {
	commands = append(commands,
		command{"site", "build the static site: wasm, pages, default pack; minified, content-hashed (--out dist/site)", cmdSite},
	)
}

// siteMarker marks a folder written by `retrace site`, so a rebuild may
// replace it (and never an unrelated folder given by mistake).
const siteMarker = ".retrace-site"

// siteOptions configures buildSite.
type siteOptions struct {
	Root   string // repository root (go.mod, wasm/, www/)
	Out    string // site folder to (re)create
	Model  string // "auto", "test", "none" or a diffusers folder / pack
	Minify bool
	Hash   bool
	Log    io.Writer
}

// siteReport is what buildSite measured.
type siteReport struct {
	WasmRaw   int64    `json:"wasm_bytes"`
	WasmGzip  int64    `json:"wasm_gzip9_bytes"`
	Files     int      `json:"files"`
	Bytes     int64    `json:"bytes"`
	Pack      string   `json:"pack"`
	PackBytes int64    `json:"pack_bytes"`
	Hashed    []string `json:"hashed"`
	Seconds   float64  `json:"seconds"`
}

// hashedExts are the assets renamed to name.<hash>.ext. HTML pages keep
// their names (they are the entry points) and so do JSON files (fetched by
// name) and packs (their shards carry sha256 in the manifest).
var hashedExts = map[string]bool{
	".js": true, ".mjs": true, ".css": true, ".wasm": true, ".svg": true, ".png": true,
	".jpg": true, ".jpeg": true, ".webp": true, ".gif": true, ".woff2": true,
}

// textExts are the files whose references to assets are rewritten.
var textExts = map[string]bool{
	".html": true, ".js": true, ".mjs": true, ".css": true, ".json": true, ".svg": true, ".webmanifest": true,
}

// newMinifier minifies HTML, CSS, JS (classic and module scripts), JSON
// and SVG.
func newMinifier() *minify.M {
	m := minify.New()
	m.Add("text/html", &html.Minifier{KeepDocumentTags: true, KeepEndTags: true, KeepQuotes: true})
	m.AddFunc("text/css", css.Minify)
	m.AddFunc("image/svg+xml", svg.Minify)
	m.AddFuncRegexp(regexp.MustCompile(`^((application|text)/(x-)?(java|ecma)script|module)$`), js.Minify)
	m.AddFuncRegexp(regexp.MustCompile(`[/+]json$`), mjson.Minify)
	return m
}

var minifyTypes = map[string]string{
	".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".mjs": "text/javascript",
	".json": "application/json", ".webmanifest": "application/manifest+json", ".svg": "image/svg+xml",
}

func cmdSite(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("site", flag.ContinueOnError)
	dst := fs.String("out", "dist/site", "site folder to write (replaced if it is a previous build)")
	model := fs.String("model", "auto", "default pack: auto (models/fashion if present, else the test pack), test, none, or a diffusers folder / pack")
	noMinify := fs.Bool("no-minify", false, "copy pages as written")
	noHash := fs.Bool("no-hash", false, "keep asset names (no content hashes)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	log := out
	if *asJSON {
		log = io.Discard
	}
	r, err := buildSite(siteOptions{Root: root, Out: *dst, Model: *model, Minify: !*noMinify, Hash: !*noHash, Log: log})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Fprintf(out, "wrote %s: %d files, %.1f MiB (pack %s: %.1f MiB) in %.1fs\n", *dst, r.Files, float64(r.Bytes)/(1<<20), r.Pack, float64(r.PackBytes)/(1<<20), r.Seconds)
	fmt.Fprintf(out, "retrace.wasm: %d bytes raw (%.2f MiB), %d bytes gzip level 9 (Go compress/gzip; %.2f MiB)\n", r.WasmRaw, float64(r.WasmRaw)/(1<<20), r.WasmGzip, float64(r.WasmGzip)/(1<<20))
	return nil
}

// buildSite writes the static site into a staging folder beside o.Out and
// swaps it in when everything succeeded.
func buildSite(o siteOptions) (*siteReport, error) {
	start := time.Now()
	if o.Log == nil {
		o.Log = io.Discard
	}
	out, err := filepath.Abs(o.Out)
	if err != nil {
		return nil, err
	}
	www := filepath.Join(o.Root, "www")
	if st, err := os.Stat(www); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("site: no pages folder %s", www)
	}
	if err := checkReplaceable(out); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	r := &siteReport{}

	// 1. The wasm runtime.
	fmt.Fprintln(o.Log, "building retrace.wasm (GOOS=js GOARCH=wasm, -trimpath -ldflags=-s -w)")
	wasmPath := filepath.Join(stage, "retrace.wasm")
	if err := goCmd(o.Root, []string{"GOOS=js", "GOARCH=wasm"}, "build", "-trimpath", "-ldflags=-s -w", "-o", wasmPath, "./wasm"); err != nil {
		return nil, fmt.Errorf("site: wasm build: %w", err)
	}
	if r.WasmRaw, r.WasmGzip, err = gzipSize(wasmPath); err != nil {
		return nil, err
	}

	// 2. Pages and the Go wasm loader.
	if err := copyTree(www, stage); err != nil {
		return nil, fmt.Errorf("site: %w", err)
	}
	goroot, err := goOutput(o.Root, "env", "GOROOT")
	if err != nil {
		return nil, err
	}
	loader := ""
	for _, p := range []string{"lib/wasm/wasm_exec.js", "misc/wasm/wasm_exec.js"} {
		if _, err := os.Stat(filepath.Join(goroot, p)); err == nil {
			loader = filepath.Join(goroot, p)
			break
		}
	}
	if loader == "" {
		return nil, fmt.Errorf("site: wasm_exec.js not found in %s/lib/wasm or %s/misc/wasm", goroot, goroot)
	}
	if err := copyFile(loader, filepath.Join(stage, "wasm_exec.js")); err != nil {
		return nil, err
	}

	// 3. Minify, then content-hash (hashes cover the minified bytes).
	if o.Minify {
		if err := minifyTree(stage); err != nil {
			return nil, err
		}
	}
	if o.Hash {
		if r.Hashed, err = hashAssets(stage, o.Log); err != nil {
			return nil, err
		}
	}

	// 4. The default pack.
	if r.Pack, err = sitePack(o.Root, o.Model, filepath.Join(stage, "packs"), o.Log); err != nil {
		return nil, err
	}

	// 5. Swap in.
	if err := os.WriteFile(filepath.Join(stage, siteMarker), []byte("written by retrace site; replaced on rebuild\n"), 0o644); err != nil {
		return nil, err
	}
	err = filepath.WalkDir(stage, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == siteMarker {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		r.Files++
		r.Bytes += info.Size()
		if rel, _ := filepath.Rel(stage, p); strings.HasPrefix(rel, "packs"+string(filepath.Separator)) {
			r.PackBytes += info.Size()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := os.RemoveAll(out); err != nil {
		return nil, err
	}
	if err := os.Chmod(stage, 0o755); err != nil {
		return nil, err
	}
	if err := os.Rename(stage, out); err != nil {
		return nil, err
	}
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

// checkReplaceable refuses to overwrite a folder that is neither empty nor
// a previous build.
func checkReplaceable(out string) error {
	ents, err := os.ReadDir(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("site: --out %s: %w", out, err)
	}
	if len(ents) == 0 {
		return nil
	}
	if _, err := os.Stat(filepath.Join(out, siteMarker)); err != nil {
		return fmt.Errorf("site: --out %s exists and was not written by `retrace site` (no %s); remove it or pick another folder", out, siteMarker)
	}
	return nil
}

func goBinary() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

func goCmd(dir string, env []string, args ...string) error {
	cmd := exec.Command(goBinary(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return nil
}

func goOutput(dir string, args ...string) (string, error) {
	cmd := exec.Command(goBinary(), args...)
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(b)), nil
}

// gzipSize returns a file's size raw and compressed with gzip level 9.
func gzipSize(p string) (raw, gz int64, err error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, 0, err
	}
	var cw countWriter
	zw, _ := gzip.NewWriterLevel(&cw, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		return 0, 0, err
	}
	if err := zw.Close(); err != nil {
		return 0, 0, err
	}
	return int64(len(b)), cw.n, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(b []byte) (int, error) { c.n += int64(len(b)); return len(b), nil }

// copyTree copies src into dst, skipping hidden files and folders.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return copyFile(p, target)
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// siteFiles lists the files under dir (slash paths, sorted), skipping the
// packs folder.
func siteFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "packs" {
				return filepath.SkipDir
			}
			return nil
		}
		files = append(files, rel)
		return nil
	})
	sort.Strings(files)
	return files, err
}

func minifyTree(dir string) error {
	m := newMinifier()
	files, err := siteFiles(dir)
	if err != nil {
		return err
	}
	for _, rel := range files {
		mt, ok := minifyTypes[strings.ToLower(path.Ext(rel))]
		if !ok {
			continue
		}
		p := filepath.Join(dir, filepath.FromSlash(rel))
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		small, err := m.Bytes(mt, b)
		if err != nil {
			return fmt.Errorf("site: minifying %s: %w", rel, err)
		}
		if err := os.WriteFile(p, small, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// refToken matches runs of URL-ish characters; those ending in an asset's
// name are candidate references.
var refToken = regexp.MustCompile(`[A-Za-z0-9_./-]+`)

// resolveRef maps a reference written in file `from` to a site path:
// relative to the file's folder, else to the site root; "" if it names no
// asset.
func resolveRef(from, ref string, assets map[string]bool) string {
	if strings.HasPrefix(ref, "/") {
		p := path.Clean(ref)[1:]
		if assets[p] {
			return p
		}
		return ""
	}
	if p := path.Join(path.Dir(from), ref); assets[p] {
		return p
	}
	if p := path.Clean(ref); assets[p] {
		return p
	}
	return ""
}

// findRefs returns the assets a text file references.
func findRefs(from string, b []byte, assets map[string]bool) map[string]bool {
	refs := map[string]bool{}
	for _, loc := range refToken.FindAllIndex(b, -1) {
		if p := resolveRef(from, string(b[loc[0]:loc[1]]), assets); p != "" {
			refs[p] = true
		}
	}
	return refs
}

// rewriteRefs replaces each reference to a renamed asset by its new name.
func rewriteRefs(from string, b []byte, assets map[string]bool, names map[string]string) []byte {
	return refToken.ReplaceAllFunc(b, func(tok []byte) []byte {
		p := resolveRef(from, string(tok), assets)
		n, ok := names[p]
		if p == "" || !ok {
			return tok
		}
		s := string(tok)
		return []byte(s[:strings.LastIndex(s, "/")+1] + path.Base(n))
	})
}

// hashAssets renames each referenced asset to name.<10 hex of sha256>.ext
// and rewrites the references in pages, scripts and styles. Assets are
// hashed after the assets they reference, so a hash covers the names it
// points to. Assets that nothing references by name (loaded by a computed
// URL, say) keep their names.
func hashAssets(dir string, log io.Writer) ([]string, error) {
	files, err := siteFiles(dir)
	if err != nil {
		return nil, err
	}
	assets := map[string]bool{}
	for _, f := range files {
		if hashedExts[strings.ToLower(path.Ext(f))] {
			assets[f] = true
		}
	}
	content := map[string][]byte{}
	refs := map[string]map[string]bool{}
	referenced := map[string]bool{}
	for _, f := range files {
		if !textExts[strings.ToLower(path.Ext(f))] {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
		if err != nil {
			return nil, err
		}
		content[f] = b
		refs[f] = findRefs(f, b, assets)
		for a := range refs[f] {
			if a != f {
				referenced[a] = true
			}
		}
	}
	pending := map[string]bool{}
	for a := range assets {
		if referenced[a] {
			pending[a] = true
		} else {
			fmt.Fprintf(log, "site: %s is not referenced by name; keeping its name\n", a)
		}
	}
	names := map[string]string{}
	for len(pending) > 0 {
		progress := false
		for _, a := range sortedKeys(pending) {
			ready := true
			for r := range refs[a] {
				if r != a && pending[r] {
					ready = false
				}
			}
			if !ready {
				continue
			}
			if err := hashOne(dir, a, content, assets, names); err != nil {
				return nil, err
			}
			delete(pending, a)
			progress = true
		}
		if !progress {
			// A reference cycle: hash what is left in a fixed order; their
			// references to each other keep the names known so far.
			for _, a := range sortedKeys(pending) {
				if err := hashOne(dir, a, content, assets, names); err != nil {
					return nil, err
				}
				delete(pending, a)
			}
		}
	}
	// Pages and JSON keep their names; rewrite their references.
	for f, b := range content {
		if assets[f] {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(f)), rewriteRefs(f, b, assets, names), 0o644); err != nil {
			return nil, err
		}
	}
	var out []string
	for _, a := range sortedKeys(assets) {
		if n, ok := names[a]; ok {
			out = append(out, a+" → "+n)
		}
	}
	return out, nil
}

func hashOne(dir, a string, content map[string][]byte, assets map[string]bool, names map[string]string) error {
	src := filepath.Join(dir, filepath.FromSlash(a))
	b, ok := content[a]
	if ok {
		b = rewriteRefs(a, b, assets, names)
	} else {
		var err error
		if b, err = os.ReadFile(src); err != nil {
			return err
		}
	}
	sum := sha256.Sum256(b)
	ext := path.Ext(a)
	n := strings.TrimSuffix(a, ext) + "." + hex.EncodeToString(sum[:])[:10] + ext
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(n)), b, 0o644); err != nil {
		return err
	}
	if err := os.Remove(src); err != nil {
		return err
	}
	names[a] = n
	return nil
}

func sortedKeys(m map[string]bool) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// packIndex is packs/index.json: which packs the site ships, the default
// first.
type packIndex struct {
	Default string          `json:"default"`
	Packs   []packIndexItem `json:"packs"`
}

type packIndexItem struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Source string `json:"source"`
	Bytes  int64  `json:"bytes"`
	Shards int    `json:"shards"`
}

// sitePack writes the default pack to <packs>/default and packs/index.json.
func sitePack(root, model, packs string, log io.Writer) (string, error) {
	if model == "none" {
		return "none", nil
	}
	if model == "auto" {
		model = "test"
		if st, err := os.Stat(filepath.Join(root, "models", "fashion")); err == nil && st.IsDir() {
			model = filepath.Join(root, "models", "fashion")
		}
	}
	dst := filepath.Join(packs, "default")
	var m *pack.Manifest
	var err error
	source := model
	switch {
	case model == "test":
		fmt.Fprintln(log, "default pack: the tiny fixture pipeline (test pack; models/fashion not found)")
		source = "test pack (tiny fixture pipeline)"
		m, err = writeTestPack(root, dst, 1<<20)
	case exists(filepath.Join(model, "manifest.json")):
		fmt.Fprintf(log, "default pack: copying pack %s\n", model)
		if err = copyTree(model, dst); err == nil {
			var b []byte
			if b, err = os.ReadFile(filepath.Join(dst, "manifest.json")); err == nil {
				m, err = pack.ParseManifest(b)
			}
		}
	default:
		fmt.Fprintf(log, "default pack: converting %s (f16)\n", model)
		m, err = pack.Convert(model, dst, pack.Policy{Mode: "f16"}, 16<<20, nil)
	}
	if err != nil {
		return "", fmt.Errorf("site: default pack: %w", err)
	}
	s := m.Summarize()
	if rel, err := filepath.Rel(root, source); filepath.IsAbs(source) && err == nil && !strings.HasPrefix(rel, "..") {
		source = filepath.ToSlash(rel)
	}
	idx := packIndex{Default: "default", Packs: []packIndexItem{{Name: "default", Path: "packs/default/", Source: source, Bytes: s.Total, Shards: s.Shards}}}
	b, _ := json.MarshalIndent(idx, "", "  ")
	if err := os.WriteFile(filepath.Join(packs, "index.json"), b, 0o644); err != nil {
		return "", err
	}
	return source, nil
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
