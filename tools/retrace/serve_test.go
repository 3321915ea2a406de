//go:build !js

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// serveFixture lays out a site, a packs folder and a secret file beside
// them (which no URL may reach).
func serveFixture(t *testing.T) (site, packs, secret string) {
	dir := t.TempDir()
	site, packs = filepath.Join(dir, "site"), filepath.Join(dir, "packs")
	for _, d := range []string{site, filepath.Join(site, "sub"), filepath.Join(site, ".git"), filepath.Join(packs, "tiny")} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	write := func(p, s string) {
		require.NoError(t, os.WriteFile(p, []byte(s), 0o644))
	}
	secret = filepath.Join(dir, "secret.txt")
	write(secret, "top secret")
	write(filepath.Join(site, "index.html"), "<!doctype html><title>retrace</title>")
	write(filepath.Join(site, "app.js"), "export const x = 1;")
	write(filepath.Join(site, "retrace.0123456789.wasm"), "\x00asm\x01\x00\x00\x00")
	write(filepath.Join(site, "data.json"), "{}")
	write(filepath.Join(site, "sub", "index.html"), "sub")
	write(filepath.Join(site, ".git", "config"), "hidden")
	shard := make([]byte, 1000)
	for i := range shard {
		shard[i] = byte(i)
	}
	require.NoError(t, os.WriteFile(filepath.Join(packs, "tiny", "shard-000.bin"), shard, 0o644))
	write(filepath.Join(packs, "tiny", "manifest.json"), `{"version":1}`)
	write(filepath.Join(packs, "tiny", "w.safetensors"), "st")
	require.NoError(t, os.Symlink(secret, filepath.Join(site, "escape.txt")))
	require.NoError(t, os.Symlink(dir, filepath.Join(packs, "up")))
	return site, packs, secret
}

// rawGet sends a request line as written (no client-side cleaning of the
// path) and returns the status code and body.
func rawGet(t *testing.T, addr, target string) (int, string) {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, addr)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeMIMETypes(t *testing.T) {
	site, packs, _ := serveFixture(t)
	s, err := newSiteServer(site, packs)
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	defer ts.Close()
	cases := []struct{ path, ctype, cache string }{
		{"/", "text/html; charset=utf-8", "no-cache"},
		{"/index.html", "text/html; charset=utf-8", "no-cache"},
		{"/app.js", "text/javascript; charset=utf-8", "no-cache"},
		{"/retrace.0123456789.wasm", "application/wasm", "public, max-age=31536000, immutable"},
		{"/data.json", "application/json", "no-cache"},
		{"/packs/tiny/manifest.json", "application/json", "no-cache"},
		{"/packs/tiny/shard-000.bin", "application/octet-stream", "no-cache"},
		{"/packs/tiny/w.safetensors", "application/octet-stream", "no-cache"},
		{"/sub/", "text/html; charset=utf-8", "no-cache"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			resp, err := http.Get(ts.URL + c.path)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, c.ctype, resp.Header.Get("Content-Type"))
			require.Equal(t, c.cache, resp.Header.Get("Cache-Control"))
			require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		})
	}
	resp, err := http.Get(ts.URL + "/packs/tiny/manifest.json")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "*", resp.Header.Get("Access-Control-Allow-Origin"))
}

func TestServeRange(t *testing.T) {
	site, packs, _ := serveFixture(t)
	s, err := newSiteServer(site, packs)
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	defer ts.Close()
	cases := []struct {
		rng   string
		first byte
		n     int
		cr    string
	}{
		{"bytes=0-9", 0, 10, "bytes 0-9/1000"},
		{"bytes=256-511", 0, 256, "bytes 256-511/1000"},
		{"bytes=990-", 990 % 256, 10, "bytes 990-999/1000"},
		{"bytes=-3", 997 % 256, 3, "bytes 997-999/1000"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("GET", ts.URL+"/packs/tiny/shard-000.bin", nil)
		req.Header.Set("Range", c.rng)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusPartialContent, resp.StatusCode, c.rng)
		require.Equal(t, c.cr, resp.Header.Get("Content-Range"), c.rng)
		require.Len(t, b, c.n, c.rng)
		require.Equal(t, c.first, b[0], c.rng)
	}
	req, _ := http.NewRequest("GET", ts.URL+"/packs/tiny/shard-000.bin", nil)
	req.Header.Set("Range", "bytes=5000-6000")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestedRangeNotSatisfiable, resp.StatusCode)
	resp, err = http.Head(ts.URL + "/packs/tiny/shard-000.bin")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "1000", resp.Header.Get("Content-Length"))
	require.Equal(t, "bytes", resp.Header.Get("Accept-Ranges"))
}

// No request reaches a file outside the site and packs folders, however
// the path is spelled; hidden files and directory listings are refused.
func TestServePathTraversal(t *testing.T) {
	site, packs, _ := serveFixture(t)
	s, err := newSiteServer(site, packs)
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")
	for _, target := range []string{
		"/../secret.txt",
		"/..%2fsecret.txt",
		"/%2e%2e/secret.txt",
		"/%2e%2e%2fsecret.txt",
		"/sub/../../secret.txt",
		"/packs/../../secret.txt",
		"/packs/..%2f..%2fsecret.txt",
		"/packs/tiny/../../../secret.txt",
		"/..\\secret.txt",
		"/%5c..%5csecret.txt",
		"/escape.txt",
		"/packs/up/secret.txt",
		"/packs/up/site/index.html",
		"/.git/config",
		"/%2egit/config",
		"/secret.txt%00.html",
		"/packs/",
		"/packs/tiny/",
		"//etc/passwd",
		"/./index.html",
	} {
		code, body := rawGet(t, addr, target)
		require.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound}, code, target)
		require.NotContains(t, body, "top secret", target)
		require.NotContains(t, body, "hidden", target)
	}
	req, _ := http.NewRequest("POST", ts.URL+"/index.html", strings.NewReader("x"))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	// A folder without a trailing slash redirects, inside the site.
	code, _ := rawGet(t, addr, "/sub")
	require.Equal(t, http.StatusMovedPermanently, code)
}

// Without --packs, /packs/ comes from the site's own packs folder.
func TestServeDefaultPacks(t *testing.T) {
	site, _, _ := serveFixture(t)
	require.NoError(t, os.MkdirAll(filepath.Join(site, "packs", "default"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(site, "packs", "default", "manifest.json"), []byte(`{"a":1}`), 0o644))
	s, err := newSiteServer(site, "")
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/packs/default/manifest.json")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, `{"a":1}`, string(b))
}

func TestServeLoopbackOnly(t *testing.T) {
	site, _, _ := serveFixture(t)
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.168.1.1:8080", "[::]:0"} {
		err := cmdServe([]string{"--addr", addr, "--site", site}, io.Discard)
		require.ErrorContains(t, err, "not a loopback address", addr)
	}
	err := cmdServe([]string{"--addr", "127.0.0.1:0", "--site", filepath.Join(site, "nope")}, io.Discard)
	require.ErrorContains(t, err, "--site")
	require.True(t, isLoopback("127.0.0.1"))
	require.True(t, isLoopback("::1"))
	require.True(t, isLoopback("localhost"))
	require.False(t, isLoopback(""))
}
