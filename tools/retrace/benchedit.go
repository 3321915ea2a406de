//go:build !js

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"retrace/nn"
	"retrace/samplers"
)

func init() {
	commands = append(commands, command{"bench-edit", "FashionEdit: edit Fashion-MNIST test images to another class with every inversion method; SSIM/PSNR, judge success (docs/EDITING.md)", cmdBenchEdit})
}

// fashionEditTarget is the FashionEdit mapping from a test image's class to
// the class it is edited to. "pairs" (the default) swaps each class with
// one of similar shape, so that an edit can keep the silhouette:
// t-shirt↔shirt, pullover↔coat, trouser↔dress, sneaker↔ankle boot;
// sandal→sneaker and bag→pullover (no close partner). "shift" is the
// harder (label + 5) mod 10 (t-shirt→sandal, trouser→shirt, …).
func fashionEditTarget(mapping string, label int) (int, error) {
	switch mapping {
	case "pairs":
		return [10]int{6, 3, 4, 1, 2, 7, 0, 9, 2, 7}[label], nil
	case "shift":
		return (label + 5) % 10, nil
	}
	return 0, fmt.Errorf("bench-edit: --map %q: want pairs or shift", mapping)
}

// fashionSubset picks n test images, class-balanced and deterministic:
// the k-th is the (k/10)-th image of class k mod 10 in test-set order, so
// any prefix of the subset is balanced too (a partial run stays fair).
func fashionSubset(labels []byte, n int) ([]int, error) {
	var byClass [10][]int
	for i, l := range labels {
		byClass[l] = append(byClass[l], i)
	}
	out := make([]int, 0, n)
	for k := 0; k < n; k++ {
		c, j := k%10, k/10
		if j >= len(byClass[c]) {
			return nil, fmt.Errorf("bench-edit: %d images asked for, class %d has only %d", n, c, len(byClass[c]))
		}
		out = append(out, byClass[c][j])
	}
	return out, nil
}

// benchEditSettings are the settings a results folder was made with; a
// resumed run must use the same.
type benchEditSettings struct {
	Model        string   `json:"model"`
	Map          string   `json:"map"`
	Methods      []string `json:"methods"`
	Steps        int      `json:"steps"`
	Guidance     float64  `json:"guidance"`
	Seed         uint64   `json:"seed"`
	Skip         int      `json:"skip"`
	CrossReplace float64  `json:"cross_replace"`
	SelfReplace  float64  `json:"self_replace"`
}

// benchEditRow is one line of results.jsonl: one image edited with one
// method, and its reconstruction. Metrics are on the 28×28 image (the
// 2-pixel padding cropped) in [0, 1], from the float output (before the
// PNG's 8-bit rounding).
type benchEditRow struct {
	Order     int     `json:"order"` // position in the subset
	Index     int     `json:"index"` // position in the Fashion-MNIST test set
	Source    string  `json:"source"`
	Target    string  `json:"target"`
	Method    string  `json:"method"`
	SSIM      float64 `json:"ssim"`
	PSNR      float64 `json:"psnr"`
	Calls     int     `json:"calls"`
	Ms        float64 `json:"ms"`
	File      string  `json:"file"`
	ReconSSIM float64 `json:"recon_ssim"`
	ReconPSNR float64 `json:"recon_psnr"`
	ReconCall int     `json:"recon_calls"`
	ReconMs   float64 `json:"recon_ms"`
	ReconFile string  `json:"recon_file"`
	SrcFile   string  `json:"source_file"`
	Backend   string  `json:"backend"`
}

func cmdBenchEdit(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench-edit", flag.ContinueOnError)
	var mf modelFlags
	mf.register(fs)
	n := fs.Int("n", 200, "test images (class-balanced subset, see docs/EDITING.md)")
	data := fs.String("data", "", "folder of the Fashion-MNIST IDX files (default: $FASHION_MNIST_DIR, else dpkg -L dataset-fashion-mnist)")
	mapping := fs.String("map", "pairs", "class mapping: pairs (similar shapes) or shift ((label+5) mod 10)")
	methods := fs.String("methods", "ddim,edict,bdia,ef-ddpm,direct", "comma-separated edit methods")
	steps := fs.Int("steps", 25, "inversion and sampling steps")
	guidance := fs.Float64("guidance", 3, "classifier-free guidance scale")
	seed := fs.Uint64("seed", 1, "noise seed (edit-friendly DDPM); image k uses seed + index")
	skip := fs.Int("skip", 0, "edit-friendly DDPM: T_skip")
	cross := fs.Float64("cross", 0.8, "direct: fraction of steps with cross-attention replacement")
	self := fs.Float64("self", 0.4, "direct: fraction of steps with self-attention injection")
	dst := fs.String("out", "bench/fashionedit", "output folder (PNGs, results.jsonl, summary.json)")
	resume := fs.Bool("resume", false, "keep results.jsonl and do only the (image, method) pairs it lacks")
	reportOnly := fs.Bool("report", false, "do no edits: judge and summarize the results.jsonl in --out")
	judge := fs.String("judge", "tools/train/judge.py", "judge script (empty: print its command instead of running it)")
	python := fs.String("python", "/usr/bin/python3", "Python with torch for the judge")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := benchEditSettings{Model: mf.model, Map: *mapping, Methods: strings.Split(*methods, ","), Steps: *steps,
		Guidance: *guidance, Seed: *seed, Skip: *skip, CrossReplace: *cross, SelfReplace: *self}
	if _, err := fashionEditTarget(*mapping, 0); err != nil {
		return err
	}
	res := filepath.Join(*dst, "results.jsonl")
	if !*reportOnly {
		if err := runBenchEdit(set, mf, *n, *data, *dst, *resume, out); err != nil {
			return err
		}
	}
	rows, err := readBenchEditRows(res)
	if err != nil {
		return err
	}
	var sum *benchEditSummary
	if *judge == "" {
		fmt.Fprintf(out, "judge the images with:\n  %s\n", strings.Join(judgeCommand(*python, "tools/train/judge.py", *dst, rows), " "))
		sum = summarizeBenchEdit(set, rows, nil)
	} else {
		verdicts, err := runJudge(*python, *judge, *dst, rows)
		if err != nil {
			return err
		}
		sum = summarizeBenchEdit(set, rows, verdicts)
	}
	b, _ := json.MarshalIndent(sum, "", "  ")
	if err := os.WriteFile(filepath.Join(*dst, "summary.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := writeBenchEditSheet(*dst, rows, 10); err != nil {
		return err
	}
	table := sum.Markdown()
	if err := os.WriteFile(filepath.Join(*dst, "table.md"), []byte(table), 0o644); err != nil {
		return err
	}
	fmt.Fprint(out, table)
	return nil
}

// runBenchEdit edits the subset with every method, appending a line to
// results.jsonl after each (image, method), so an interrupted run keeps
// what it did.
func runBenchEdit(set benchEditSettings, mf modelFlags, n int, dataDir, dst string, resume bool, out io.Writer) error {
	if n <= 0 || set.Steps <= 0 {
		return errors.New("bench-edit: --n and --steps must be positive")
	}
	images, labels, err := loadFashionTest(fashionDir(dataDir))
	if err != nil {
		return err
	}
	subset, err := fashionSubset(labels, n)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dst, "source"), 0o755); err != nil {
		return err
	}
	res := filepath.Join(dst, "results.jsonl")
	cfgPath := filepath.Join(dst, "settings.json")
	done := map[string]bool{}
	if resume {
		if b, err := os.ReadFile(cfgPath); err == nil {
			var old benchEditSettings
			if err := json.Unmarshal(b, &old); err != nil {
				return fmt.Errorf("%s: %w", cfgPath, err)
			}
			if !reflect.DeepEqual(old, set) {
				return fmt.Errorf("bench-edit: --resume: %s was made with other settings %+v (now %+v)", cfgPath, old, set)
			}
		}
		rows, err := readBenchEditRows(res)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		for _, r := range rows {
			done[fmt.Sprint(r.Index, r.Method)] = true
		}
	} else if err := os.Remove(res); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	b, _ := json.MarshalIndent(set, "", "  ")
	if err := os.WriteFile(cfgPath, append(b, '\n'), 0o644); err != nil {
		return err
	}
	f, err := os.OpenFile(res, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()

	be, closeBE, err := mf.backendOf()
	if err != nil {
		return err
	}
	defer closeBE()
	sd, err := mf.load(be)
	if err != nil {
		return err
	}
	defer sd.Free()
	if sd.VAE != nil || sd.UNet.Config.InChannels != 1 || sd.UNet.Config.SampleSize != 32 {
		return fmt.Errorf("bench-edit: %s is not a 1-channel 32×32 pixel-space model (models/fashion)", mf.model)
	}
	vocab := map[string]bool{}
	for _, c := range sd.Vocabulary() {
		vocab[c] = true
	}
	for _, c := range fashionClasses {
		if !vocab[c] {
			return fmt.Errorf("bench-edit: %s has no class %q in its vocabulary %v", mf.model, c, sd.Vocabulary())
		}
	}
	for _, m := range set.Methods {
		if err := os.MkdirAll(filepath.Join(dst, m), 0o755); err != nil {
			return err
		}
	}
	h, w := images.Dims[1], images.Dims[2]
	start := time.Now()
	for k, idx := range subset {
		label := int(labels[idx])
		tl, _ := fashionEditTarget(set.Map, label)
		px := images.Data[idx*h*w : (idx+1)*h*w]
		src := make([]float64, h*w)
		gray := image.NewGray(image.Rect(0, 0, w+4, h+4))
		for i, p := range px {
			src[i] = float64(p) / 255
			gray.SetGray(i%w+2, i/w+2, color.Gray{p})
		}
		srcFile := filepath.Join("source", fmt.Sprintf("%05d.png", idx))
		if err := writePNG(filepath.Join(dst, srcFile), gray); err != nil {
			return err
		}
		for _, m := range set.Methods {
			if done[fmt.Sprint(idx, m)] {
				continue
			}
			row := benchEditRow{Order: k, Index: idx, Source: fashionClasses[label], Target: fashionClasses[tl],
				Method: m, SrcFile: srcFile, Backend: mf.backend}
			x := be.Upload([]int{1, 1, h + 4, w + 4}, padImage(px, h, w, 2))
			o := samplers.EditImageOptions{
				Image: x, Source: row.Source, Target: row.Target, Method: m, Steps: set.Steps,
				Guidance: float32(set.Guidance), Skip: set.Skip, Seed: set.Seed + uint64(idx),
				CrossReplace: set.CrossReplace, SelfReplace: set.SelfReplace,
			}
			for _, recon := range []bool{false, true} {
				o.ReconstructOnly = recon
				t0 := time.Now()
				img, calls, err := sd.EditImage(be, o)
				if err != nil {
					nn.Free(x)
					return fmt.Errorf("bench-edit: image %d (%s→%s) %s: %w", idx, row.Source, row.Target, m, err)
				}
				v, err := be.Read(img)
				nn.Free(img)
				if err != nil {
					nn.Free(x)
					return err
				}
				ms := float64(time.Since(t0).Microseconds()) / 1000
				got := cropGray(v, h+4, w+4, 2)
				s, err := ssim(src, got, h, w)
				if err != nil {
					return err
				}
				p := psnr(src, got)
				name := fmt.Sprintf("%05d-%s.png", idx, strings.ReplaceAll(row.Target, " ", "-"))
				if recon {
					name = fmt.Sprintf("%05d-recon.png", idx)
					row.ReconSSIM, row.ReconPSNR, row.ReconCall, row.ReconMs = s, p, calls, ms
					row.ReconFile = filepath.Join(m, name)
				} else {
					row.SSIM, row.PSNR, row.Calls, row.Ms = s, p, calls, ms
					row.File = filepath.Join(m, name)
				}
				if err := writePNG(filepath.Join(dst, m, name), grayOf(v, h+4, w+4)); err != nil {
					return err
				}
			}
			nn.Free(x)
			b, _ := json.Marshal(row)
			if _, err := f.Write(append(b, '\n')); err != nil {
				return err
			}
			fmt.Fprintf(out, "%3d/%d #%05d %-10s → %-10s %-7s SSIM %.3f PSNR %5.2f dB  recon %6.2f dB  %3d+%3d calls  %5.0f+%5.0f ms\n",
				k+1, n, idx, row.Source, row.Target, m, row.SSIM, row.PSNR, row.ReconPSNR, row.Calls, row.ReconCall, row.Ms, row.ReconMs)
		}
	}
	fmt.Fprintf(out, "edits done in %.1fs\n", time.Since(start).Seconds())
	return nil
}

// cropGray returns the inner image of v (H×W in [0, 1]) without pad
// pixels on each side.
func cropGray(v []float32, H, W, pad int) []float64 {
	out := make([]float64, 0, (H-2*pad)*(W-2*pad))
	for y := pad; y < H-pad; y++ {
		for x := pad; x < W-pad; x++ {
			out = append(out, float64(v[y*W+x]))
		}
	}
	return out
}

func grayOf(v []float32, h, w int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i, p := range v[:h*w] {
		g.Pix[i] = uint8(math.Max(0, math.Min(255, math.Round(255*float64(p)))))
	}
	return g
}

func readBenchEditRows(path string) ([]benchEditRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []benchEditRow
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r benchEditRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		rows = append(rows, r)
	}
	return rows, sc.Err()
}

// judgeFiles lists the PNGs to classify, relative to dst: every source,
// edit and reconstruction.
func judgeFiles(rows []benchEditRow) []string {
	seen := map[string]bool{}
	var files []string
	for _, r := range rows {
		for _, p := range []string{r.SrcFile, r.File, r.ReconFile} {
			if p != "" && !seen[p] {
				seen[p] = true
				files = append(files, p)
			}
		}
	}
	return files
}

func judgeCommand(python, script, dst string, rows []benchEditRow) []string {
	cmd := []string{python, script, "classify"}
	for _, f := range judgeFiles(rows) {
		cmd = append(cmd, filepath.Join(dst, f))
	}
	return cmd
}

// runJudge classifies the images with `judge.py classify` (one process)
// and returns the class it gives each file (relative to dst).
func runJudge(python, script, dst string, rows []benchEditRow) (map[string]string, error) {
	args := judgeCommand(python, script, dst, rows)
	var stderr bytes.Buffer
	c := exec.Command(args[0], args[1:]...)
	c.Stderr = &stderr
	o, err := c.Output()
	if err != nil {
		return nil, fmt.Errorf("bench-edit: judge %s %s classify: %w: %s", python, script, err, strings.TrimSpace(stderr.String()))
	}
	return parseJudge(o, dst)
}

// parseJudge reads judge.py classify lines "<file> <class> <prob>"
// (class names may contain spaces: "ankle boot").
func parseJudge(o []byte, dst string) (map[string]string, error) {
	out := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(o)), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			return nil, fmt.Errorf("bench-edit: judge output line %q: want <file> <class> <prob>", l)
		}
		if _, err := strconv.ParseFloat(f[len(f)-1], 64); err != nil {
			return nil, fmt.Errorf("bench-edit: judge output line %q: %w", l, err)
		}
		rel, err := filepath.Rel(dst, f[0])
		if err != nil {
			return nil, err
		}
		out[rel] = strings.Join(f[1:len(f)-1], " ")
	}
	return out, nil
}

// benchEditMethod aggregates one method's rows.
type benchEditMethod struct {
	Method string `json:"method"`
	Images int    `json:"images"`
	// Success: the judge gives the target class to the edit (-1 without a judge).
	Success float64 `json:"edit_success"`
	// ReconKept: the judge gives the reconstruction the source class.
	ReconKept  float64 `json:"recon_class_kept"`
	SSIM       float64 `json:"ssim"`
	PSNR       float64 `json:"psnr"`
	ReconPSNR  float64 `json:"recon_psnr"`
	ReconSSIM  float64 `json:"recon_ssim"`
	Calls      float64 `json:"calls"`
	ReconCalls float64 `json:"recon_calls"`
	Ms         float64 `json:"ms"`
	ReconMs    float64 `json:"recon_ms"`
}

type benchEditSummary struct {
	Settings benchEditSettings `json:"settings"`
	Backend  string            `json:"backend"`
	// SourceAccuracy: the judge gives the sources their true class;
	// SourceIsTarget: it already gives them the target class (the
	// success of doing nothing).
	SourceAccuracy float64           `json:"source_accuracy"`
	SourceIsTarget float64           `json:"source_is_target"`
	Methods        []benchEditMethod `json:"methods"`
	// PerPair: edit success per method and source→target pair.
	PerPair map[string]map[string]float64 `json:"per_pair,omitempty"`
}

func summarizeBenchEdit(set benchEditSettings, rows []benchEditRow, verdicts map[string]string) *benchEditSummary {
	s := &benchEditSummary{Settings: set, SourceAccuracy: -1, SourceIsTarget: -1}
	byMethod := map[string][]benchEditRow{}
	var order []string
	srcSeen := map[int]bool{}
	var nSrc, srcOK, srcTgt int
	for _, r := range rows {
		if _, ok := byMethod[r.Method]; !ok {
			order = append(order, r.Method)
		}
		byMethod[r.Method] = append(byMethod[r.Method], r)
		s.Backend = r.Backend
		if !srcSeen[r.Index] && verdicts != nil {
			srcSeen[r.Index] = true
			nSrc++
			if verdicts[r.SrcFile] == r.Source {
				srcOK++
			}
			if verdicts[r.SrcFile] == r.Target {
				srcTgt++
			}
		}
	}
	if verdicts != nil && nSrc > 0 {
		s.SourceAccuracy, s.SourceIsTarget = float64(srcOK)/float64(nSrc), float64(srcTgt)/float64(nSrc)
		s.PerPair = map[string]map[string]float64{}
	}
	for _, m := range order {
		rs := byMethod[m]
		a := benchEditMethod{Method: m, Images: len(rs), Success: -1, ReconKept: -1}
		var ok, kept int
		pair := map[string][2]int{}
		for _, r := range rs {
			a.SSIM += r.SSIM
			a.PSNR += r.PSNR
			a.ReconPSNR += r.ReconPSNR
			a.ReconSSIM += r.ReconSSIM
			a.Calls += float64(r.Calls)
			a.ReconCalls += float64(r.ReconCall)
			a.Ms += r.Ms
			a.ReconMs += r.ReconMs
			if verdicts != nil {
				hit := verdicts[r.File] == r.Target
				if hit {
					ok++
				}
				if verdicts[r.ReconFile] == r.Source {
					kept++
				}
				k := r.Source + "→" + r.Target
				c := pair[k]
				c[1]++
				if hit {
					c[0]++
				}
				pair[k] = c
			}
		}
		n := float64(len(rs))
		a.SSIM /= n
		a.PSNR /= n
		a.ReconPSNR /= n
		a.ReconSSIM /= n
		a.Calls /= n
		a.ReconCalls /= n
		a.Ms /= n
		a.ReconMs /= n
		if verdicts != nil {
			a.Success, a.ReconKept = float64(ok)/n, float64(kept)/n
			pp := map[string]float64{}
			for k, c := range pair {
				pp[k] = float64(c[0]) / float64(c[1])
			}
			s.PerPair[m] = pp
		}
		s.Methods = append(s.Methods, a)
	}
	return s
}

// Markdown renders the per-method table (and, with a judge, the per-pair
// success table).
func (s *benchEditSummary) Markdown() string {
	var b strings.Builder
	pct := func(v float64) string {
		if v < 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f%%", 100*v)
	}
	fmt.Fprintf(&b, "| method | images | edit success | SSIM to source | PSNR to source (dB) | recon PSNR (dB) | recon SSIM | recon keeps class | model calls edit / recon | ms edit / recon (%s) |\n", s.Backend)
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, m := range s.Methods {
		fmt.Fprintf(&b, "| %s | %d | %s | %.3f | %.2f | %.2f | %.4f | %s | %.0f / %.0f | %.0f / %.0f |\n",
			m.Method, m.Images, pct(m.Success), m.SSIM, m.PSNR, m.ReconPSNR, m.ReconSSIM, pct(m.ReconKept), m.Calls, m.ReconCalls, m.Ms, m.ReconMs)
	}
	if s.SourceAccuracy >= 0 {
		fmt.Fprintf(&b, "\nJudge on the unedited sources: %s given their true class, %s already given the target class.\n", pct(s.SourceAccuracy), pct(s.SourceIsTarget))
	}
	if len(s.PerPair) > 0 {
		seen := map[string]bool{}
		var pairs []string
		for _, pp := range s.PerPair {
			for k := range pp {
				if !seen[k] {
					seen[k] = true
					pairs = append(pairs, k)
				}
			}
		}
		sort.Strings(pairs)
		b.WriteString("\n| edit |")
		for _, m := range s.Methods {
			b.WriteString(" " + m.Method + " |")
		}
		b.WriteString("\n| --- |" + strings.Repeat(" --- |", len(s.Methods)) + "\n")
		for _, p := range pairs {
			b.WriteString("| " + p + " |")
			for _, m := range s.Methods {
				v, ok := s.PerPair[m.Method][p]
				if !ok {
					v = -1
				}
				fmt.Fprintf(&b, " %s |", pct(v))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// writeBenchEditSheet tiles the first images of the subset (one per row,
// at most maxRows, in subset order) into <dst>/sheet.png: the source, then
// each method's edit and reconstruction, in the order the methods ran.
func writeBenchEditSheet(dst string, rows []benchEditRow, maxRows int) error {
	type line struct {
		order int
		files []string
	}
	var lines []*line
	byOrder := map[int]*line{}
	for _, r := range rows {
		l := byOrder[r.Order]
		if l == nil {
			if len(byOrder) >= maxRows {
				continue
			}
			l = &line{order: r.Order, files: []string{r.SrcFile}}
			byOrder[r.Order] = l
			lines = append(lines, l)
		}
		l.files = append(l.files, r.File, r.ReconFile)
	}
	if len(lines) == 0 {
		return nil
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].order < lines[j].order })
	const cell, gap = 32, 2
	cols := 0
	for _, l := range lines {
		cols = max(cols, len(l.files))
	}
	sheet := image.NewGray(image.Rect(0, 0, cols*(cell+gap), len(lines)*(cell+gap)))
	for i := range sheet.Pix {
		sheet.Pix[i] = 96
	}
	for y, l := range lines {
		for x, f := range l.files {
			r, err := os.Open(filepath.Join(dst, f))
			if err != nil {
				return err
			}
			im, err := png.Decode(r)
			r.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			draw.Draw(sheet, image.Rect(x*(cell+gap), y*(cell+gap), x*(cell+gap)+cell, y*(cell+gap)+cell), im, im.Bounds().Min, draw.Src)
		}
	}
	return writePNG(filepath.Join(dst, "sheet.png"), sheet)
}
