//go:build !js

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"retrace/nn/golden"
)

// writeTestPNG writes a smooth w×h RGB picture.
func writeTestPNG(t *testing.T, path string, w, h int, phase float64) {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			f := func(c float64) uint8 {
				return uint8(127.5 + 100*math.Sin(float64(x)/4+c+phase)*math.Cos(float64(y)/5-c))
			}
			img.Set(x, y, color.NRGBA{f(0), f(1), f(2), 255})
		}
	}
	f, err := os.Create(path)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, img))
	require.NoError(t, f.Close())
}

func TestRestoreCLI(t *testing.T) {
	model := filepath.Join(golden.Dir(t), "unet2d_tiny")
	dir := t.TempDir()
	in := filepath.Join(dir, "in.png")
	writeTestPNG(t, in, 20, 16, 0)
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := cmdRestore(append([]string{"--model", model, "--image", in, "--backend", "cpu", "--steps", "2", "--seed", "3"}, args...), &out)
		return out.String(), err
	}
	for _, c := range [][]string{{"inpaint", "ddnm"}, {"sr4", "dds"}, {"deblur", "reddiff"}, {"colorize", "sde"}, {"denoise", "pinv"}} {
		o := filepath.Join(dir, c[0]+".png")
		y := filepath.Join(dir, c[0]+"_y.png")
		msg, err := run("--task", c[0], "--solver", c[1], "--out", o, "--degraded", y)
		require.NoError(t, err, c)
		require.Contains(t, msg, "PSNR vs the input")
		for _, p := range []string{o, y} {
			_, err := os.Stat(p)
			require.NoError(t, err)
		}
	}
	// A user mask: the input's size is required.
	mask := filepath.Join(dir, "mask.png")
	writeTestPNG(t, mask, 20, 16, 1)
	_, err := run("--task", "inpaint", "--mask", mask, "--out", filepath.Join(dir, "m.png"))
	require.NoError(t, err)
	small := filepath.Join(dir, "small.png")
	writeTestPNG(t, small, 10, 8, 1)
	_, err = run("--task", "inpaint", "--mask", small)
	require.ErrorContains(t, err, "mask")
	require.ErrorContains(t, err, "is 10×8, the image is 20×16")
	black := filepath.Join(dir, "black.png")
	f, _ := os.Create(black)
	require.NoError(t, png.Encode(f, image.NewGray(image.Rect(0, 0, 20, 16))))
	f.Close()
	_, err = run("--task", "inpaint", "--mask", black)
	require.ErrorContains(t, err, "empty")
	_, err = run("--task", "deblur", "--solver", "ddnm")
	require.ErrorContains(t, err, "does not support task deblur")
	_, err = run("--task", "deblur", "--blur-sigma", "0")
	require.ErrorContains(t, err, "σ = 0")
	_, err = run("--task", "paint")
	require.ErrorContains(t, err, "unknown task")
}

func TestBenchRestoreCLI(t *testing.T) {
	model := filepath.Join(golden.Dir(t), "unet2d_tiny")
	dir := t.TempDir()
	for i, n := range []string{"a.png", "b.png"} {
		writeTestPNG(t, filepath.Join(dir, n), 16, 16, float64(i))
	}
	var out bytes.Buffer
	err := cmdBenchRestore([]string{"--model", model, "--images", dir, "--backend", "cpu", "--steps", "2", "--json",
		"--tasks", "inpaint,sr2", "--solvers", "pinv,ddnm,dds"}, &out)
	require.NoError(t, err)
	rows := 0
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r benchRow
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		require.Empty(t, r.Error)
		require.Equal(t, 2, r.N)
		require.Greater(t, r.PSNR, 0.0)
		require.LessOrEqual(t, r.SSIM, 1.0)
		if r.Solver == "pinv" {
			require.Zero(t, r.Calls)
		} else {
			require.Equal(t, 2.0, r.Calls)
		}
		rows++
	}
	require.Equal(t, 6, rows)
}
