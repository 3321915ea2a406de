//go:build !js

package e2e

import (
	"fmt"
	"image"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// The page's element ids (docs/JS_API.md, www/index.html).
const (
	idImage       = "image-input"
	idSource      = "source"
	idTarget      = "target"
	idMethod      = "method"
	idSteps       = "steps"
	idGuidance    = "guidance"
	idSeed        = "seed"
	idReconstruct = "reconstruct"
	idRun         = "run"
	idResult      = "result"
	idError       = "error"
	idStatus      = "status"
)

// setField sets an input's or select's value (or a checkbox's state) and
// fires input and change events as a user's edit would.
func (b *browser) setField(t *testing.T, id string, value any) {
	js := fmt.Sprintf(`(() => {
	  const e = document.getElementById(%q);
	  if (!e) return "no element #" + %q;
	  const v = %s;
	  if (e.type === "checkbox") { e.checked = !!v; }
	  else if (e.tagName === "SELECT") {
	    if (![...e.options].some(o => o.value === String(v))) return "#" + %q + " has no option " + v + " (options: " + [...e.options].map(o => o.value).join(", ") + ")";
	    e.value = String(v);
	  } else { e.value = String(v); }
	  e.dispatchEvent(new Event("input", {bubbles: true}));
	  e.dispatchEvent(new Event("change", {bubbles: true}));
	  return "";
	})()`, id, id, jsValue(value), id)
	var msg string
	require.NoError(t, b.eval(t, 5*time.Second, js, &msg))
	require.Empty(t, msg)
}

func jsValue(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case bool:
		return fmt.Sprint(v)
	default:
		return fmt.Sprint(v)
	}
}

// clearError dismisses a shown error (the page's own Dismiss button).
func (b *browser) clearError(t *testing.T) {
	require.NoError(t, b.eval(t, 5*time.Second, `(() => {
	  const e = document.getElementById("error");
	  if (e && !e.hidden) { const c = document.getElementById("error-close"); if (c) c.click(); else e.hidden = true; }
	  return true;
	})()`, nil))
}

// errorShown is true while #error is visible with a message.
const errorShown = `(() => { const e = document.getElementById("error"); return !!e && !e.hidden && e.textContent.trim() !== ""; })()`

// errorText is the shown error's message ("" when none is shown).
func (b *browser) errorText(t *testing.T) string {
	var s string
	require.NoError(t, b.eval(t, 5*time.Second, `(() => {
	  const e = document.getElementById("error");
	  if (!e || e.hidden) return "";
	  const m = document.getElementById("error-text") || e;
	  return m.textContent.trim();
	})()`, &s))
	return s
}

// fillEdit uploads the image and types the settings.
func (b *browser) fillEdit(t *testing.T, img string, s editSettings) {
	require.NoError(t, b.run(t, 10*time.Second, chromedp.SetUploadFiles("#"+idImage, []string{img}, chromedp.ByQuery)))
	b.fillSettings(t, s)
}

func (b *browser) fillSettings(t *testing.T, s editSettings) {
	b.setField(t, idSource, s.Source)
	b.setField(t, idTarget, s.Target)
	b.setField(t, idMethod, s.Method)
	b.setField(t, idSteps, s.Steps)
	b.setField(t, idGuidance, s.Guidance)
	b.setField(t, idSeed, s.Seed)
	b.setField(t, idReconstruct, s.Reconstruct)
}

func (b *browser) counts(t *testing.T) (results int) {
	require.NoError(t, b.eval(t, 5*time.Second, `window.__rt.results.length`, &results))
	return results
}

// edit runs one edit through the form and returns the runtime's result.
func (b *browser) edit(t *testing.T, img string, s editSettings) pageRun {
	b.clearError(t)
	b.fillEdit(t, img, s)
	// The page reads the file's header in the worker before it enables Run.
	err := b.waitJS(t, 30*time.Second, fmt.Sprintf(`!document.getElementById(%q).disabled || %s`, idRun, errorShown))
	require.NoError(t, err, "#run stayed disabled: #status %q", b.text(t, idStatus))
	require.Empty(t, b.errorText(t), "picking the image failed")
	n := b.counts(t)
	var m0 int
	require.NoError(t, b.eval(t, 5*time.Second, `window.__rt.messages.length`, &m0))
	require.NoError(t, b.run(t, 10*time.Second, chromedp.Click("#"+idRun, chromedp.ByQuery)))
	err = b.waitJS(t, editTimeout, fmt.Sprintf(`window.__rt.results.length > %d || %s`, n, errorShown))
	require.NoError(t, err, "no result: #status %q", b.text(t, idStatus))
	require.Empty(t, b.errorText(t), "the edit failed")
	var r pageRun
	require.NoError(t, b.eval(t, 10*time.Second, `window.__rt.results[window.__rt.results.length - 1]`, &r))
	require.Equal(t, 4*r.Width*r.Height, len(r.RGBA))
	var steps []struct {
		K, Steps int
		T        float64
	}
	require.NoError(t, b.eval(t, 5*time.Second, fmt.Sprintf(`window.__rt.messages.slice(%d).filter(m => m.type === "step").map(m => ({...m.data, t: m.t}))`, m0), &steps))
	if len(steps) > 1 {
		t.Logf("%d step events, %.0f ms apart on average", len(steps), (steps[len(steps)-1].T-steps[0].T)/float64(len(steps)-1))
	}
	require.NotEmpty(t, steps, "step events while editing")
	for i := 1; i < len(steps); i++ {
		require.Greater(t, steps[i].K, steps[i-1].K, "steps go forward")
	}
	// The page finished handling it (result shown, Run enabled again).
	require.NoError(t, b.waitJS(t, 30*time.Second, fmt.Sprintf(`!document.getElementById(%q).hidden && !document.getElementById(%q).disabled`, idResult, idRun)))
	return r
}

// editError picks a bad image (and runs the edit if the page accepted the
// file) and returns the error the page shows.
func (b *browser) editError(t *testing.T, img string, s editSettings) string {
	b.clearError(t)
	n := b.counts(t)
	b.fillEdit(t, img, s)
	// The page may reject the file as soon as it is picked.
	err := b.waitJS(t, 30*time.Second, fmt.Sprintf(`!document.getElementById(%q).disabled || %s`, idRun, errorShown))
	require.NoError(t, err)
	if b.errorText(t) == "" {
		require.NoError(t, b.run(t, 10*time.Second, chromedp.Click("#"+idRun, chromedp.ByQuery)))
		require.NoError(t, b.waitJS(t, editTimeout, fmt.Sprintf(`window.__rt.results.length > %d || %s`, n, errorShown)))
	}
	msg := b.errorText(t)
	require.NotEmpty(t, msg, "the bad input gave a result instead of an error")
	return msg
}

// errorCode checks the shown error's code (#error data-code) and that
// only a device loss offers the retry on a new device (as rendered: a
// hidden attribute that CSS overrides does not count).
func (b *browser) errorCode(t *testing.T, want string) {
	var got struct {
		Code  string
		Retry bool
	}
	require.NoError(t, b.eval(t, 5*time.Second, `(() => {
	  const e = document.getElementById("error"), r = document.getElementById("retry");
	  return {code: e.dataset.code || "", retry: !!r && r.getClientRects().length > 0};
	})()`, &got))
	require.Equal(t, want, got.Code, "#error data-code")
	require.Equal(t, want == "device-lost", got.Retry, "the retry-on-a-new-device button shows only for a lost device")
}

// resultImage reads what #result shows (an <img> or <canvas>, or one
// inside it) at its natural size.
func (b *browser) resultImage(t *testing.T) image.Image {
	var dataURL string
	require.NoError(t, b.eval(t, 10*time.Second, fmt.Sprintf(`(async () => {
	  const el = document.getElementById(%q);
	  if (!el) return "no #result";
	  let src = (el instanceof HTMLImageElement || el instanceof HTMLCanvasElement) ? el : el.querySelector("img, canvas");
	  if (!src) return "no img or canvas in #result";
	  let w, h;
	  if (src instanceof HTMLImageElement) { await src.decode(); w = src.naturalWidth; h = src.naturalHeight; }
	  else { w = src.width; h = src.height; }
	  const c = document.createElement("canvas"); c.width = w; c.height = h;
	  c.getContext("2d").drawImage(src, 0, 0);
	  return c.toDataURL("image/png");
	})()`, idResult), &dataURL))
	img, err := decodeDataURL(dataURL)
	require.NoError(t, err, "#result: %.80s", dataURL)
	require.Positive(t, img.Bounds().Dx())
	return img
}

// loadPack loads a pack by URL through the model picker.
func (b *browser) loadPack(t *testing.T, url string) {
	b.clearError(t)
	n := b.modelLoads(t)
	b.pickPack(t, url)
	err := b.waitJS(t, loadTimeout, fmt.Sprintf(`window.__rt.messages.filter(m => m.type === "result" && m.model).length > %d || %s`, n, errorShown))
	require.NoError(t, err)
	require.Empty(t, b.errorText(t))
}

func (b *browser) loadPackError(t *testing.T, url string) string {
	b.clearError(t)
	n := b.modelLoads(t)
	b.pickPack(t, url)
	err := b.waitJS(t, loadTimeout, fmt.Sprintf(`window.__rt.messages.filter(m => m.type === "result" && m.model).length > %d || %s`, n, errorShown))
	require.NoError(t, err)
	msg := b.errorText(t)
	require.NotEmpty(t, msg, "the corrupted pack loaded without an error")
	return msg
}

func (b *browser) modelLoads(t *testing.T) (n int) {
	require.NoError(t, b.eval(t, 5*time.Second, `window.__rt.messages.filter(m => m.type === "result" && m.model).length`, &n))
	return n
}

// pickPack types a pack URL into the model picker (which selects "Pack
// URL") and loads it.
func (b *browser) pickPack(t *testing.T, url string) {
	b.setField(t, "pack-url", url)
	var checked bool
	require.NoError(t, b.eval(t, 5*time.Second, `(() => { const r = document.querySelector('input[name="model-src"][value="url"]'); return !!r && r.checked; })()`, &checked))
	require.True(t, checked, "typing a pack URL selects the URL source")
	require.NoError(t, b.waitJS(t, 30*time.Second, `!document.getElementById("load").disabled`))
	require.NoError(t, b.run(t, 10*time.Second, chromedp.Click("#load", chromedp.ByQuery)))
}
