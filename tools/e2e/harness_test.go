//go:build !js

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"retrace/nn/golden"
)

// chromiumPath finds Debian's chromium ($RETRACE_CHROMIUM overrides). A
// missing browser skips the test, except in CI where it fails: CI installs
// chromium with `make setup`, so its absence is a broken setup.
func chromiumPath(t *testing.T) string {
	t.Helper()
	cands := []string{os.Getenv("RETRACE_CHROMIUM"), "/usr/bin/chromium"}
	if p, err := exec.LookPath("chromium"); err == nil {
		cands = append(cands, p)
	}
	for _, p := range cands {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	msg := "chromium not found (install Debian's chromium: make setup; or set RETRACE_CHROMIUM)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// artifactsDir is where screenshots and logs go: $RETRACE_E2E_ARTIFACTS or
// <repo>/dist/e2e (emptied first).
func artifactsDir(t *testing.T, root string) string {
	d := os.Getenv("RETRACE_E2E_ARTIFACTS")
	if d == "" {
		d = filepath.Join(root, "dist", "e2e")
	}
	require.NoError(t, os.RemoveAll(d))
	require.NoError(t, os.MkdirAll(d, 0o755))
	return d
}

// syncBuffer collects a subprocess's output safely across goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// buildRetrace compiles the CLI once for the test.
func buildRetrace(t *testing.T, root, dir string) string {
	bin := filepath.Join(dir, "retrace")
	cmd := exec.Command("go", "build", "-o", bin, "./tools/retrace")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./tools/retrace: %s", out)
	return bin
}

// server is `retrace serve -v` on a free loopback port.
type server struct {
	url string
	cmd *exec.Cmd
	log *syncBuffer
}

var servingRe = regexp.MustCompile(`at (http://127\.0\.0\.1:\d+/)`)

func startServer(t *testing.T, bin, site string) *server {
	s := &server{log: &syncBuffer{}}
	s.cmd = exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--site", site, "-v")
	stdout, err := s.cmd.StdoutPipe()
	require.NoError(t, err)
	s.cmd.Stderr = s.log
	require.NoError(t, s.cmd.Start())
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	})
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			s.log.Write([]byte(line + "\n"))
			if !sent {
				first <- line
				sent = true
			}
		}
		if !sent {
			close(first)
		}
	}()
	select {
	case line := <-first:
		m := servingRe.FindStringSubmatch(line)
		require.NotNil(t, m, "retrace serve printed %q; want its URL", line)
		s.url = m[1]
	case <-time.After(30 * time.Second):
		t.Fatalf("retrace serve printed no URL in 30s: %s", s.log.String())
	}
	return s
}

// requests are the paths the server answered (from its -v log), with
// method and status.
type served struct {
	method, path string
	status       int
}

var servedRe = regexp.MustCompile(`^(GET|HEAD|POST|PUT|DELETE|OPTIONS|PATCH) (\S+) (\d+) `)

func (s *server) requests() []served {
	var out []served
	for _, line := range strings.Split(s.log.String(), "\n") {
		if m := servedRe.FindStringSubmatch(line); m != nil {
			var code int
			fmt.Sscan(m[3], &code)
			out = append(out, served{m[1], m[2], code})
		}
	}
	return out
}

// browser is one headless chromium with WebGPU on SwiftShader, its network
// log written to netlog.
type browser struct {
	ctx    context.Context // the tab
	cancel func()
	netlog string
	output *syncBuffer
	// page-side network events (the worker's requests appear only in
	// the net log)
	mu     sync.Mutex
	cdpReq []string
	logs   []string
}

func startBrowser(t *testing.T, exe, netlog string) *browser {
	b := &browser{netlog: netlog, output: &syncBuffer{}}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.Flag("enable-unsafe-webgpu", true),
		chromedp.Flag("enable-features", "Vulkan"),
		chromedp.Flag("use-vulkan", "swiftshader"),
		chromedp.Flag("use-angle", "swiftshader"),
		// Browser services that phone home on their own (not the page's
		// requests, but they would blur the network check).
		chromedp.Flag("disable-features", "site-per-process,Translate,BlinkGenPropertyTrees,AutofillServerCommunication,OptimizationHints,OptimizationGuideModelDownloading,MediaRouter"),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("log-net-log", netlog),
		chromedp.Flag("net-log-capture-mode", "Default"),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(b.output),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	b.ctx = ctx
	var once sync.Once
	b.cancel = func() {
		once.Do(func() {
			_ = chromedp.Cancel(ctx) // closes the browser cleanly: the net log is complete
			cancel()
			acancel()
		})
	}
	t.Cleanup(b.cancel)
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			b.mu.Lock()
			b.cdpReq = append(b.cdpReq, e.Request.Method+" "+e.Request.URL)
			b.mu.Unlock()
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range e.Args {
				if a.Value != nil {
					parts = append(parts, string(a.Value))
				} else {
					parts = append(parts, a.Description)
				}
			}
			b.mu.Lock()
			b.logs = append(b.logs, fmt.Sprintf("console.%s: %s", e.Type, strings.Join(parts, " ")))
			b.mu.Unlock()
		case *runtime.EventExceptionThrown:
			b.mu.Lock()
			b.logs = append(b.logs, "exception: "+e.ExceptionDetails.Error())
			b.mu.Unlock()
		}
	})
	// The recorder must be in place before the page's scripts run.
	require.NoError(t, chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		_, err := page.AddScriptToEvaluateOnNewDocument(recorderJS).Do(ctx)
		return err
	})))
	return b
}

func (b *browser) consoleLog() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.logs, "\n")
}

// recorderJS wraps the Worker constructor so the test sees the worker's
// protocol messages (type, progress data, result shape and pixels) without
// changing what the page receives.
const recorderJS = `(() => {
  if (typeof Worker === "undefined") return;
  const W = Worker;
  window.__rt = { messages: [], results: [], errors: [], workers: 0 };
  window.Worker = class extends W {
    constructor(...args) {
      super(...args);
      window.__rt.workers++;
      this.addEventListener("message", (e) => {
        const m = e.data || {};
        const rec = { type: m.type, id: m.id, t: performance.now() };
        if (m.type === "progress" || m.type === "step") {
          const d = m.data || {};
          rec.data = { loaded: d.loaded, total: d.total, shard: d.shard, k: d.k, steps: d.steps };
        }
        if (m.type === "error") {
          rec.data = m.data;
          window.__rt.errors.push(m.data);
        }
        if (m.type === "result" && m.data && !m.data.rgba) {
          rec.data = m.data;
          rec.model = m.data.resolution !== undefined;
        }
        if (m.type === "result" && m.data && m.data.rgba) {
          const d = m.data;
          window.__rt.results.push({ width: d.width, height: d.height, rgba: Array.from(d.rgba), calls: d.calls, ms: d.ms, t: performance.now() });
        }
        window.__rt.messages.push(rec);
      });
    }
  };
})();`

// run runs chromedp actions with a timeout.
func (b *browser) run(t *testing.T, d time.Duration, actions ...chromedp.Action) error {
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	return chromedp.Run(ctx, actions...)
}

// eval evaluates JS (awaiting a Promise result) into res.
func (b *browser) eval(t *testing.T, d time.Duration, js string, res any) error {
	return b.run(t, d, chromedp.Evaluate(js, res, func(p *runtime.EvaluateParams) *runtime.EvaluateParams {
		return p.WithAwaitPromise(true)
	}))
}

// waitJS polls a JS expression until it is truthy.
func (b *browser) waitJS(t *testing.T, d time.Duration, expr string) error {
	return b.run(t, d, chromedp.Poll(expr, nil, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(d)))
}

// text returns an element's text ("" when absent).
func (b *browser) text(t *testing.T, id string) string {
	var s string
	err := b.eval(t, 10*time.Second, fmt.Sprintf(`(() => { const e = document.getElementById(%q); return e ? e.textContent.trim() : ""; })()`, id), &s)
	require.NoError(t, err)
	return s
}

func (b *browser) screenshot(t *testing.T, path string) {
	var buf []byte
	require.NoError(t, b.run(t, 30*time.Second, chromedp.FullScreenshot(&buf, 100)))
	require.NoError(t, os.WriteFile(path, buf, 0o644))
	_, err := png.Decode(bytes.NewReader(buf))
	require.NoError(t, err, "screenshot %s is not a PNG", path)
}

// decodeDataURL decodes a data:image/png;base64 URL.
func decodeDataURL(s string) (image.Image, error) {
	_, b64, ok := strings.Cut(s, ";base64,")
	if !ok {
		return nil, fmt.Errorf("not a base64 data URL: %.40q", s)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, err
	}
	img, _, err := image.Decode(bytes.NewReader(raw))
	return img, err
}

// netRequest is a request the browser's network stack made.
type netRequest struct {
	URL, Method, Initiator, NIK, Type string
}

// readNetLog reads chromium's --log-net-log file (complete once the browser
// has closed) and returns every URL request it started.
func readNetLog(path string) ([]netRequest, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var nl struct {
		Constants struct {
			LogEventTypes map[string]int `json:"logEventTypes"`
		} `json:"constants"`
		Events []struct {
			Type   int             `json:"type"`
			Params json.RawMessage `json:"params"`
		} `json:"events"`
	}
	if err := json.Unmarshal(b, &nl); err != nil {
		// A browser killed before closing leaves the events array open.
		s := strings.TrimRight(string(b), " \n\r\t,")
		if err2 := json.Unmarshal([]byte(s+"]}"), &nl); err2 != nil {
			return nil, fmt.Errorf("net log: %w", err)
		}
	}
	start, ok := nl.Constants.LogEventTypes["URL_REQUEST_START_JOB"]
	if !ok {
		return nil, fmt.Errorf("net log: no URL_REQUEST_START_JOB event type")
	}
	var out []netRequest
	for _, e := range nl.Events {
		if e.Type != start || len(e.Params) == 0 {
			continue
		}
		var p struct {
			URL       string `json:"url"`
			Method    string `json:"method"`
			Initiator string `json:"initiator"`
			NIK       string `json:"network_isolation_key"`
			Type      string `json:"request_type"`
		}
		if err := json.Unmarshal(e.Params, &p); err != nil {
			return nil, err
		}
		if p.URL == "" {
			continue // the end of a job
		}
		out = append(out, netRequest{p.URL, p.Method, p.Initiator, p.NIK, p.Type})
	}
	return out, nil
}

// repoRoot is the module root.
func repoRoot(t *testing.T) string { return golden.RepoRoot(t) }

func writeJSON(t *testing.T, path string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

func copyDir(t *testing.T, src, dst string) {
	require.NoError(t, os.MkdirAll(dst, 0o755))
	ents, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range ents {
		if e.IsDir() {
			copyDir(t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		out, err := os.Create(filepath.Join(dst, e.Name()))
		require.NoError(t, err)
		_, err = io.Copy(out, in)
		require.NoError(t, err)
		in.Close()
		require.NoError(t, out.Close())
	}
}

// requireLocalNetwork checks chromium's net log (the browser must be
// closed) and the server's log: every request of the page and its worker
// went to the test server, read a static asset or a pack file, and carried
// no data. It returns the number of the page's requests.
func requireLocalNetwork(t *testing.T, br *browser, srv *server) int {
	reqs, err := readNetLog(br.netlog)
	require.NoError(t, err)
	base, err := url.Parse(srv.url)
	require.NoError(t, err)
	site := base.Scheme + "://" + base.Hostname()
	pageReqs := 0
	for _, r := range reqs {
		fromPage := r.Initiator == base.Scheme+"://"+base.Host || (r.Type == "main frame" && strings.HasPrefix(r.NIK, site+" "))
		if !fromPage {
			// The browser's own services. Any of them tied to the page
			// must not send data (uploads would be a leak).
			if strings.HasPrefix(r.NIK, site+" ") {
				t.Logf("browser service request for the page: %s %.100s", r.Method, r.URL)
				require.Equal(t, "GET", r.Method, "the browser sent data about the page: %s", r.URL)
			}
			continue
		}
		pageReqs++
		u, err := url.Parse(r.URL)
		require.NoError(t, err)
		require.Equal(t, base.Host, u.Host, "request to another host: %s %s", r.Method, r.URL)
		require.Contains(t, []string{"GET", "HEAD"}, r.Method, "the page only reads: %s %s", r.Method, r.URL)
		require.Empty(t, u.RawQuery, "no data in query strings: %s", r.URL)
		require.True(t, allowedPath(site, u.Path), "not a static asset or pack file: %s", r.URL)
	}
	require.Greater(t, pageReqs, 5, "the net log recorded the page's requests")
	for _, r := range srv.requests() {
		require.Contains(t, []string{"GET", "HEAD"}, r.method, "%v", r)
		require.True(t, allowedPath(site, r.path), "%v", r)
	}
	return pageReqs
}
