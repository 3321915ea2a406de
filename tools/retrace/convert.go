//go:build !js

package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	"retrace/nn"
	"retrace/nn/pack"
)

// cmdConvert writes a pack from a diffusers folder or a .safetensors file.
func cmdConvert(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("convert", flag.ContinueOnError)
	in := fs.String("in", "", "diffusers pipeline or model folder, or a .safetensors file")
	dst := fs.String("out", "", "pack folder to write")
	quant := fs.String("quant", "mixed", "storage: f32, f16, q8, q4 or mixed")
	group := fs.Int("group", 64, "q4 group size (32, 64 or 128)")
	shardMB := fs.Int("shard-mb", 64, "shard size in MiB")
	budget := fs.Float64("budget-mb", 0, "choose q4/q8/f16 per weight by sensitivity so the pack fits N MiB (overrides --quant)")
	sens := fs.String("sensitivity", pack.SensAuto, "budget mode: measure (run the model per weight on the CPU reference), proxy (weight error) or auto (measure models ≤ 20M parameters)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *dst == "" {
		return errors.New("convert: --in and --out are required")
	}
	if *budget < 0 {
		return fmt.Errorf("convert: --budget-mb %g must be positive", *budget)
	}
	if *group != 32 && *group != 64 && *group != 128 {
		return fmt.Errorf("convert: --group %d: want 32, 64 or 128", *group)
	}
	start := time.Now()
	last := time.Time{}
	progress := func(component, name string, done, total int, bytes int64) {
		if time.Since(last) < 200*time.Millisecond && done < total {
			return
		}
		last = time.Now()
		const width = 30
		bar := make([]byte, width)
		for i := range bar {
			bar[i] = '.'
			if i < done*width/total {
				bar[i] = '#'
			}
		}
		fmt.Fprintf(out, "\r%-13s [%s] %5d/%-5d %8.1f MiB", component, bar, done, total, float64(bytes)/(1<<20))
		if done == total {
			fmt.Fprintln(out)
		}
	}
	pol := pack.Policy{Mode: *quant, Group: *group}
	if *budget > 0 {
		pol = pack.Policy{Mode: "mixed", Group: *group, BudgetBytes: int64(*budget * (1 << 20)), Sensitivity: *sens}
		fmt.Fprintf(out, "measuring sensitivity (%s) …\n", *sens)
		plan, ss, st, err := pack.Plan(*in, pol)
		if err != nil {
			return err
		}
		measured := 0
		for _, s := range ss {
			if s.Measured {
				measured++
			}
		}
		fmt.Fprintf(out, "plan: %d weights (%d measured, %d by proxy) in %s: %d q4 g%d, %d q8, %d f16; %.2f MiB of %.2f MiB\n",
			len(ss), measured, len(ss)-measured, time.Since(start).Round(time.Millisecond), st.Count["q4"], *group, st.Count["q8"], st.Count["f16"],
			float64(st.Bytes)/(1<<20), *budget)
		pol.Plan = plan
	}
	m, err := pack.Convert(*in, *dst, pol, int64(*shardMB)<<20, progress)
	if err != nil {
		return err
	}
	s := m.Summarize()
	fmt.Fprintf(out, "wrote %s: %.1f MiB in %d shards (%s)\n", *dst, float64(s.Total)/(1<<20), s.Shards, time.Since(start).Round(time.Millisecond))
	return nil
}

// cmdPackinfo prints a pack's tensors per format and bytes per component.
func cmdPackinfo(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("packinfo", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "machine-readable output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("packinfo: want one pack folder")
	}
	b, err := os.ReadFile(fs.Arg(0) + "/manifest.json")
	if err != nil {
		return err
	}
	m, err := pack.ParseManifest(b)
	if err != nil {
		return err
	}
	s := m.Summarize()
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	comps := make([]string, 0, len(s.Components))
	for c := range s.Components {
		comps = append(comps, c)
	}
	sort.Strings(comps)
	fmt.Fprintf(out, "pack version %d, %d shards of ≤ %.0f MiB, %.2f MiB total\n", m.Version, s.Shards, float64(m.ShardBytes)/(1<<20), float64(s.Total)/(1<<20))
	for _, c := range comps {
		var tot int64
		for _, f := range s.Components[c] {
			tot += f.Bytes
		}
		fmt.Fprintf(out, "%-13s %10.2f MiB\n", c, float64(tot)/(1<<20))
		for _, f := range []string{"f32", "f16", "q8", "q4"} {
			if x, ok := s.Components[c][f]; ok {
				fmt.Fprintf(out, "  %-4s %5d tensors %10.2f MiB\n", f, x.Tensors, float64(x.Bytes)/(1<<20))
			}
		}
	}
	if s.Files > 0 {
		fmt.Fprintf(out, "%-13s %10.2f MiB\n", "files", float64(s.Files)/(1<<20))
	}
	return nil
}

func storageBench(name string) bool {
	for _, n := range pack.StorageBenches {
		if n == name {
			return true
		}
	}
	return false
}

// benchStorage times an SD-1.5 UNet step from pack storage (f32, q8, q4)
// with the storage bindings capped at 128 MiB (pack.BenchSD15UNetStorage).
func benchStorage(be nn.Backend, adapter, name string) (nn.BenchResult, error) {
	r, cold, err := pack.BenchSD15UNetStorage(be, adapter, name, 1, 128<<20)
	if err == nil {
		r.Variant += fmt.Sprintf(", first run %.1f s", cold.Seconds())
	}
	return r, err
}

func init() {
	commands = append(commands,
		command{"convert", "convert a diffusers folder or .safetensors file to a pack (--quant f16|q8|q4|mixed, --budget-mb N)", cmdConvert},
		command{"packinfo", "describe a pack: tensors per format, bytes per component (--json)", cmdPackinfo},
	)
}
