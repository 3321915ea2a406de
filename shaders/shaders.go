// Package shaders holds retrace's WGSL compute kernels, one op per file,
// embedded into the binary. Kernels are specialised by prepending WGSL
// constant declarations (see Source); the device caches each specialisation.
package shaders

import (
	"embed"
	"fmt"
	"sort"
	"strings"
)

//go:embed *.wgsl
var files embed.FS

// Source returns the WGSL text of kernel name (the file name without
// ".wgsl"), prefixed with `const K: T = V;` lines for each entry of consts
// (the value is written verbatim, e.g. "64u", "1.0", "true").
func Source(name string, consts map[string]string) (string, error) {
	b, err := files.ReadFile(name + ".wgsl")
	if err != nil {
		return "", fmt.Errorf("shaders: no kernel %q", name)
	}
	if len(consts) == 0 {
		return string(b), nil
	}
	keys := make([]string, 0, len(consts))
	for k := range consts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, "const %s = %s;\n", k, consts[k])
	}
	sb.Write(b)
	return sb.String(), nil
}

// Key returns a cache key for name specialised by consts.
func Key(name string, consts map[string]string) string {
	if len(consts) == 0 {
		return name
	}
	keys := make([]string, 0, len(consts))
	for k := range consts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.WriteString(name)
	for _, k := range keys {
		sb.WriteString("|" + k + "=" + consts[k])
	}
	return sb.String()
}

// Names lists the embedded kernels.
func Names() []string {
	ents, _ := files.ReadDir(".")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".wgsl"))
	}
	return out
}
