// Package shaders holds retrace's WGSL compute kernels, one op per file,
// embedded into the binary. Kernels are specialised by prepending WGSL
// constant declarations (see Source); the device caches each specialisation.
//
// Code shared by several kernels lives in snippet files named *_inc.wgsl
// (e.g. conv2d_inc.wgsl). A snippet is not a kernel: Names leaves it out and
// Source refuses to compile it alone. A kernel pulls one in with a line
//
//	//#include conv2d_inc
//
// which Source replaces by the snippet's text (itself expanded the same way)
// before compilation. A snippet is pasted once per kernel (later includes of
// it are dropped) and an include cycle is an error. Snippets are embedded
// files, so a kernel's text is fixed by its name and constants: Key needs no
// knowledge of them.
package shaders

import (
	"embed"
	"fmt"
	"slices"
	"sort"
	"strings"
)

//go:embed *.wgsl
var files embed.FS

// incSuffix ends the name of every snippet file (without ".wgsl").
const incSuffix = "_inc"

// includeDirective starts a line that pastes a snippet.
const includeDirective = "//#include "

// Source returns the WGSL text of kernel name (the file name without
// ".wgsl"), its //#include lines expanded, prefixed with `const K: T = V;`
// lines for each entry of consts (the value is written verbatim, e.g. "64u",
// "1.0", "true").
func Source(name string, consts map[string]string) (string, error) {
	if strings.HasSuffix(name, incSuffix) {
		return "", fmt.Errorf("shaders: %q is an include snippet, not a kernel", name)
	}
	src, err := expand(files, name)
	if err != nil {
		return "", err
	}
	if len(consts) == 0 {
		return src, nil
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
	sb.WriteString(src)
	return sb.String(), nil
}

// fileReader is the part of embed.FS that expand needs (tests pass their own).
type fileReader interface {
	ReadFile(name string) ([]byte, error)
}

// expand returns the text of file name with its //#include lines replaced
// by the (expanded) snippets they name.
func expand(fs fileReader, name string) (string, error) {
	var sb strings.Builder
	done := map[string]bool{}
	if err := expandInto(&sb, fs, name, nil, done); err != nil {
		return "", err
	}
	return sb.String(), nil
}

// expandInto writes file name to sb; stack is the chain of files including
// it (for cycle errors), done the snippets already pasted.
func expandInto(sb *strings.Builder, fs fileReader, name string, stack []string, done map[string]bool) error {
	b, err := fs.ReadFile(name + ".wgsl")
	if err != nil {
		if len(stack) == 0 {
			return fmt.Errorf("shaders: no kernel %q", name)
		}
		return fmt.Errorf("shaders: %s.wgsl includes %q: no such snippet", stack[len(stack)-1], name)
	}
	done[name] = true
	stack = append(stack, name)
	text := string(b)
	for len(text) > 0 {
		line := text
		rest := ""
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			line, rest = text[:i+1], text[i+1:]
		}
		text = rest
		inc, ok := strings.CutPrefix(strings.TrimSpace(line), includeDirective)
		if !ok {
			sb.WriteString(line)
			continue
		}
		inc = strings.TrimSpace(inc)
		if !strings.HasSuffix(inc, incSuffix) {
			return fmt.Errorf("shaders: %s.wgsl includes %q: snippet names end in %q", name, inc, incSuffix)
		}
		if slices.Contains(stack, inc) {
			return fmt.Errorf("shaders: include cycle %s -> %s", strings.Join(stack, " -> "), inc)
		}
		if done[inc] {
			continue
		}
		if err := expandInto(sb, fs, inc, stack, done); err != nil {
			return err
		}
		if !strings.HasSuffix(sb.String(), "\n") {
			sb.WriteByte('\n')
		}
	}
	return nil
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

// Names lists the embedded kernels (not the *_inc snippets).
func Names() []string {
	ents, _ := files.ReadDir(".")
	var out []string
	for _, e := range ents {
		n := strings.TrimSuffix(e.Name(), ".wgsl")
		if !strings.HasSuffix(n, incSuffix) {
			out = append(out, n)
		}
	}
	return out
}
