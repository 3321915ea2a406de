//go:build !js

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

func init() {
	commands = append(commands,
		command{"serve", "dev server for the site and packs (--addr 127.0.0.1:8080 --site dist/site --packs DIR)", cmdServe},
	)
}

// contentTypes are the MIME types the site needs, set explicitly so they do
// not depend on the host's /etc/mime.types.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".webmanifest": "application/manifest+json",
	".wasm":        "application/wasm",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".webp":        "image/webp",
	".ico":         "image/x-icon",
	".txt":         "text/plain; charset=utf-8",
	".md":          "text/markdown; charset=utf-8",
	".woff2":       "font/woff2",
	".safetensors": "application/octet-stream",
	".bin":         "application/octet-stream",
}

// contentType returns the MIME type for a file name.
func contentType(name string) string {
	ext := strings.ToLower(filepath.Ext(name))
	if t, ok := contentTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// hashedName matches content-hashed assets (name.0123456789.ext) written by
// `retrace site`: they never change, so browsers may cache them for good.
var hashedName = regexp.MustCompile(`\.[0-9a-f]{10}\.[a-z0-9]+$`)

// siteServer serves a static site folder, and packs under /packs/ from a
// second folder. Only GET and HEAD; no directory listings; no path outside
// the two roots (".." segments, hidden files and symlinks leading out are
// refused).
type siteServer struct {
	site, packs string
	log         io.Writer // one line per request when non-nil
}

func newSiteServer(site, packs string) (*siteServer, error) {
	s := &siteServer{}
	var err error
	if s.site, err = rootDir(site); err != nil {
		return nil, fmt.Errorf("serve: --site: %w", err)
	}
	if packs != "" {
		if s.packs, err = rootDir(packs); err != nil {
			return nil, fmt.Errorf("serve: --packs: %w", err)
		}
	}
	return s, nil
}

// rootDir resolves a root folder to an absolute path without symlinks.
func rootDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	abs, err = filepath.EvalSymlinks(abs)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%s is not a folder", dir)
	}
	return abs, nil
}

type statusWriter struct {
	http.ResponseWriter
	code int
	n    int64
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (s *siteServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.log == nil {
		s.serve(w, r)
		return
	}
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	s.serve(sw, r)
	extra := ""
	if rg := r.Header.Get("Range"); rg != "" {
		extra = " " + rg
	}
	fmt.Fprintf(s.log, "%s %s %d %dB %s%s\n", r.Method, r.URL.Path, sw.code, sw.n, time.Since(start).Round(time.Microsecond), extra)
}

func (s *siteServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	full, status := s.resolve(r.URL.Path)
	if status != http.StatusOK {
		http.Error(w, http.StatusText(status), status)
		return
	}
	st, err := os.Stat(full)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	if st.IsDir() {
		if !strings.HasSuffix(r.URL.Path, "/") {
			http.Redirect(w, r, path.Base(r.URL.Path)+"/", http.StatusMovedPermanently)
			return
		}
		full = filepath.Join(full, "index.html")
		if st, err = os.Stat(full); err != nil || st.IsDir() {
			http.NotFound(w, r) // no directory listings
			return
		}
	}
	f, err := os.Open(full)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", contentType(full))
	h.Set("X-Content-Type-Options", "nosniff")
	if hashedName.MatchString(full) {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if strings.HasPrefix(r.URL.Path, "/packs/") {
		// Packs may be loaded by a page served from elsewhere.
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges")
	}
	// ServeContent answers Range (shards are read piecewise), HEAD and
	// conditional requests.
	http.ServeContent(w, r, st.Name(), st.ModTime(), f)
}

// resolve maps a URL path to a file under one of the roots. It returns
// 400 for malformed paths (".." segments, NUL, backslashes) and 404 for
// hidden files, missing roots and symlinks that lead outside the root.
func (s *siteServer) resolve(urlPath string) (string, int) {
	if !strings.HasPrefix(urlPath, "/") || strings.ContainsAny(urlPath, "\x00\\") {
		return "", http.StatusBadRequest
	}
	segs := strings.Split(urlPath[1:], "/")
	for _, seg := range segs {
		if seg == ".." || seg == "." {
			return "", http.StatusBadRequest
		}
		if strings.HasPrefix(seg, ".") {
			return "", http.StatusNotFound
		}
	}
	root, rel := s.site, urlPath
	if s.packs != "" && (urlPath == "/packs" || strings.HasPrefix(urlPath, "/packs/")) {
		root, rel = s.packs, strings.TrimPrefix(urlPath, "/packs")
	}
	full := filepath.Join(root, filepath.FromSlash(path.Clean("/"+rel)))
	real, err := filepath.EvalSymlinks(full)
	if err != nil {
		return "", http.StatusNotFound
	}
	if real != root && !strings.HasPrefix(real, root+string(filepath.Separator)) {
		return "", http.StatusNotFound
	}
	return real, http.StatusOK
}

// isLoopback reports whether host (a name or an IP) is a loopback address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func cmdServe(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address (loopback only unless --public; port 0 picks a free one)")
	site := fs.String("site", "dist/site", "site folder (built by `retrace site`)")
	packs := fs.String("packs", "", "folder served under /packs/ (default: the site's packs/)")
	public := fs.Bool("public", false, "allow listening on a non-loopback address")
	verbose := fs.Bool("v", false, "log every request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("serve: --addr %q: %w", *addr, err)
	}
	if !*public && !isLoopback(host) {
		return fmt.Errorf("serve: --addr %q is not a loopback address; pass --public to serve on the network", *addr)
	}
	s, err := newSiteServer(*site, *packs)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(s.site, "index.html")); err != nil {
		return fmt.Errorf("serve: %s has no index.html (build it with `retrace site --out %s`)", *site, *site)
	}
	if *verbose {
		s.log = out
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	packsDir := s.packs
	if packsDir == "" {
		packsDir = filepath.Join(s.site, "packs")
	}
	fmt.Fprintf(out, "retrace: serving %s (packs: %s) at http://%s/\n", *site, packsDir, ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
