//go:build !js

// Command retrace is the native command-line front end: device
// information, op and model benchmarks, generation, editing by inversion,
// restoration, watermarks, pack conversion, and the dev server and site
// builder of the browser product. `retrace help` lists the commands (each
// file registers its own in init); `retrace <command> -h` shows its flags.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"retrace/nn"
	"retrace/nn/gpu"
	"retrace/nn/pack"
)

// command is one subcommand of the CLI.
type command struct {
	name, help string
	run        func(args []string, out io.Writer) error
}

// commands lists the subcommands; files add theirs in init.
var commands = []command{
	{"info", "print the WebGPU adapter, backend, limits and features (--json)", cmdInfo},
	{"bench", "time ops (or --model) on the GPU and the Go reference in one run (--json)", cmdBench},
}

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	name := os.Args[1]
	if name == "help" || name == "-h" || name == "--help" {
		usage(os.Stdout)
		return
	}
	for _, c := range commands {
		if c.name == name {
			if err := c.run(os.Args[2:], os.Stdout); err != nil {
				fmt.Fprintln(os.Stderr, "retrace:", err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "retrace: unknown command %q\n", name)
	usage(os.Stderr)
	os.Exit(2)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: retrace <command> [flags]   (retrace <command> -h for its flags)")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.help)
	}
}

func cmdInfo(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("info", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dev, err := gpu.Open(gpu.Options{})
	if err != nil {
		return err
	}
	defer dev.Close()
	info := dev.Info()
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	fmt.Fprintf(out, "adapter:  %s\n", info.Name)
	fmt.Fprintf(out, "vendor:   %s\n", info.Vendor)
	fmt.Fprintf(out, "driver:   %s\n", info.Driver)
	fmt.Fprintf(out, "type:     %s (cpu adapter: %v)\n", info.AdapterType, info.CPU)
	fmt.Fprintf(out, "backend:  %s\n", info.Backend)
	fmt.Fprintf(out, "shader-f16: %v\n", info.ShaderF16)
	fmt.Fprintf(out, "features: %s\n", strings.Join(info.Features, ", "))
	l := info.Limits
	fmt.Fprintf(out, "limits:\n")
	fmt.Fprintf(out, "  maxBufferSize                     %d (%.0f MiB)\n", l.MaxBufferSize, float64(l.MaxBufferSize)/(1<<20))
	fmt.Fprintf(out, "  maxStorageBufferBindingSize       %d (%.0f MiB)\n", l.MaxStorageBufferBindingSize, float64(l.MaxStorageBufferBindingSize)/(1<<20))
	fmt.Fprintf(out, "  maxStorageBuffersPerShaderStage   %d\n", l.MaxStorageBuffersPerShaderStage)
	fmt.Fprintf(out, "  maxComputeWorkgroupStorageSize    %d\n", l.MaxComputeWorkgroupStorageSize)
	fmt.Fprintf(out, "  maxComputeInvocationsPerWorkgroup %d\n", l.MaxComputeInvocationsPerWorkgroup)
	fmt.Fprintf(out, "  maxComputeWorkgroupSize           %d×%d×%d\n", l.MaxComputeWorkgroupSizeX, l.MaxComputeWorkgroupSizeY, l.MaxComputeWorkgroupSizeZ)
	fmt.Fprintf(out, "  maxComputeWorkgroupsPerDimension  %d\n", l.MaxComputeWorkgroupsPerDimension)
	fmt.Fprintf(out, "  minStorageBufferOffsetAlignment   %d\n", l.MinStorageBufferOffsetAlignment)
	return nil
}

func cmdBench(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "one JSON object per line")
	filter := fs.String("filter", "", "only cases whose op/shape matches this regexp")
	minTime := fs.Duration("time", time.Second, "minimum time per case and backend")
	backends := fs.String("backend", "gpu,cpu", "comma-separated backends to time")
	model := fs.String("model", "", "benchmark a whole model instead of ops: "+strings.Join(append(nn.ModelBenches, pack.StorageBenches...), ", "))
	if err := fs.Parse(args); err != nil {
		return err
	}
	var bes []nn.Backend
	adapter := ""
	for _, b := range strings.Split(*backends, ",") {
		switch strings.TrimSpace(b) {
		case "gpu":
			g, err := nn.OpenGPU(gpu.Options{})
			if err != nil {
				return err
			}
			defer g.Dev.Close()
			g.Autotune()
			adapter = g.Dev.Info().Name
			bes = append(bes, g)
		case "cpu":
			bes = append(bes, nn.NewCPU())
		default:
			return fmt.Errorf("unknown backend %q (want gpu or cpu)", b)
		}
	}
	if len(bes) == 0 {
		return errors.New("no backend selected")
	}
	emit := func(r nn.BenchResult) {
		if *asJSON {
			b, _ := json.Marshal(r)
			fmt.Fprintln(out, string(b))
			return
		}
		if r.Error != "" {
			fmt.Fprintf(out, "%-12s %-28s %-4s error: %s\n", r.Op, r.Shape, r.Backend, r.Error)
			return
		}
		fmt.Fprintf(out, "%-12s %-28s %-4s %10.3f ms %8.2f GFLOP/s  peak %6.1f MiB  %s\n", r.Op, r.Shape, r.Backend, r.Ms, r.GFLOPs, float64(r.PeakBytes)/(1<<20), r.Variant)
	}
	if *model != "" {
		return benchModel(*model, bes, adapter, emit)
	}
	return nn.RunBenches(bes, adapter, *filter, *minTime, emit)
}

// benchModel times a whole model (see nn.BenchModel) on each backend.
func benchModel(name string, bes []nn.Backend, adapter string, emit func(nn.BenchResult)) error {
	for _, be := range bes {
		a := adapter
		if be.Name() == "cpu" {
			a = "go"
		}
		var r nn.BenchResult
		var err error
		if storageBench(name) {
			r, err = benchStorage(be, a, name)
		} else {
			r, err = nn.BenchModel(be, a, name, 1)
		}
		if err != nil {
			r.Error = err.Error()
		}
		emit(r)
	}
	return nil
}
