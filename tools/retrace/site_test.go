//go:build !js

package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	for name, s := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
	}
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

// Minified pages keep their ids and module syntax; assets get content
// hashes and every reference (HTML, module imports, new URL(...), CSS
// url(), JS string literals) follows the new names; pages and JSON keep
// their names; packs are left alone.
func TestSiteMinifyAndHash(t *testing.T) {
	input := map[string]string{
		"index.html": `<!doctype html>
<html lang="en">
  <head>
    <link rel="stylesheet" href="style.css">
    <link rel="icon" href="img/icon.svg">
  </head>
  <body>
    <!-- comment -->
    <input id="image-input"   type="file">
    <div id="adapter">  </div>
    <script type="module">
      import { Retrace } from "./retrace.js";
      const rt = new Retrace(new URL("./worker.js", import.meta.url));
    </script>
  </body>
</html>`,
		"style.css":  "body {\n  background: url(img/icon.svg);\n  color: #ffffff;\n}\n",
		"retrace.js": "// page side\nexport class Retrace {\n  constructor(url) {\n    this.worker = new Worker(url, { type: \"module\" });\n  }\n}\n",
		"worker.js": `import "./wasm_exec.js";
const wasmURL = new URL("retrace.wasm", import.meta.url);
globalThis.wasm = await WebAssembly.instantiateStreaming(fetch(wasmURL), {});
`,
		"wasm_exec.js":          "(() => { globalThis.Go = class { constructor() { this.argv = []; } }; })();\n",
		"retrace.wasm":          "\x00asm\x01\x00\x00\x00",
		"img/icon.svg":          `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16">  <circle cx="8" cy="8" r="4" /> </svg>`,
		"unused.js":             "export const unused = 1;\n",
		"config.json":           "{\n  \"wasm\": \"retrace.wasm\"\n}\n",
		"packs/default/a.js":    "not an asset of the site",
		"packs/default/x.json":  "{ \"keep\": \"as is\" }",
		"packs/default/w.0.bin": "shard",
	}
	dir := t.TempDir()
	writeFiles(t, dir, input)
	require.NoError(t, minifyTree(dir))
	hashed, err := hashAssets(dir, io.Discard)
	require.NoError(t, err)
	require.Len(t, hashed, 6, "%v", hashed)

	hashedRe := regexp.MustCompile(`^[a-z_]+\.[0-9a-f]{10}\.(js|css|wasm|svg)$`)
	names := map[string]string{}
	for _, h := range hashed {
		from, to, ok := strings.Cut(h, " → ")
		require.True(t, ok)
		require.Regexp(t, hashedRe, filepath.Base(to))
		require.FileExists(t, filepath.Join(dir, to))
		require.NoFileExists(t, filepath.Join(dir, from))
		names[from] = to
	}
	require.FileExists(t, filepath.Join(dir, "unused.js"), "unreferenced assets keep their names")

	page := readFile(t, filepath.Join(dir, "index.html"))
	require.Contains(t, page, `id="image-input"`)
	require.Contains(t, page, `id="adapter"`)
	require.NotContains(t, page, "comment")
	require.Contains(t, page, names["style.css"])
	require.Contains(t, page, names["img/icon.svg"])
	require.Contains(t, page, `"./`+names["retrace.js"]+`"`)
	require.Contains(t, page, `"./`+names["worker.js"]+`"`)
	require.Contains(t, page, "import.meta.url")

	worker := readFile(t, filepath.Join(dir, names["worker.js"]))
	require.Contains(t, worker, names["wasm_exec.js"])
	require.Contains(t, worker, names["retrace.wasm"])
	require.Contains(t, worker, "globalThis.wasm")
	css := readFile(t, filepath.Join(dir, names["style.css"]))
	require.Contains(t, css, "url("+names["img/icon.svg"]+")")
	require.Contains(t, css, "#fff")
	require.NotContains(t, css, "\n")
	require.Contains(t, readFile(t, filepath.Join(dir, "config.json")), names["retrace.wasm"])
	require.Equal(t, "not an asset of the site", readFile(t, filepath.Join(dir, "packs/default/a.js")))
	require.Equal(t, "{ \"keep\": \"as is\" }", readFile(t, filepath.Join(dir, "packs/default/x.json")))

	// The same input gives the same names.
	dir2 := t.TempDir()
	writeFiles(t, dir2, input)
	require.NoError(t, minifyTree(dir2))
	again, err := hashAssets(dir2, io.Discard)
	require.NoError(t, err)
	require.Equal(t, hashed, again)
}

// A folder that is not a previous build is never replaced.
func TestSiteRefusesForeignOut(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"important.txt": "keep"})
	require.ErrorContains(t, checkReplaceable(dir), "not written by `retrace site`")
	require.NoError(t, checkReplaceable(filepath.Join(dir, "new")))
	writeFiles(t, dir, map[string]string{siteMarker: ""})
	require.NoError(t, checkReplaceable(dir))
}

// The test pack converts and lists itself in packs/index.json.
func TestSiteTestPack(t *testing.T) {
	root, err := repoRoot()
	require.NoError(t, err)
	dir := t.TempDir()
	src, err := sitePack(root, "test", filepath.Join(dir, "packs"), io.Discard)
	require.NoError(t, err)
	require.Contains(t, src, "test pack")
	require.FileExists(t, filepath.Join(dir, "packs", "default", "manifest.json"))
	idx := readFile(t, filepath.Join(dir, "packs", "index.json"))
	require.Contains(t, idx, `"path": "packs/default/"`)
}
