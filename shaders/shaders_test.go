package shaders

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"
)

func TestIncludeExpand(t *testing.T) {
	fs := fstest.MapFS{
		"k.wgsl":      {Data: []byte("// kernel\n//#include a_inc\n  //#include b_inc  \nfn main() {}\n")},
		"a_inc.wgsl":  {Data: []byte("//#include c_inc\nfn a() {}")},
		"b_inc.wgsl":  {Data: []byte("//#include c_inc\nfn b() {}\n")},
		"c_inc.wgsl":  {Data: []byte("fn c() {}\n")},
		"cy.wgsl":     {Data: []byte("//#include x_inc\n")},
		"x_inc.wgsl":  {Data: []byte("//#include y_inc\n")},
		"y_inc.wgsl":  {Data: []byte("//#include x_inc\n")},
		"self.wgsl":   {Data: []byte("//#include s_inc\n")},
		"s_inc.wgsl":  {Data: []byte("//#include s_inc\n")},
		"miss.wgsl":   {Data: []byte("//#include nope_inc\n")},
		"plain.wgsl":  {Data: []byte("//#include plain\n")},
		"indent.wgsl": {Data: []byte("fn f() {} //#include c_inc\n")},
	}
	tests := []struct {
		name, want, err string
	}{
		// c_inc is pasted once although a_inc and b_inc both include it.
		{name: "k", want: "// kernel\nfn c() {}\nfn a() {}\nfn b() {}\nfn main() {}\n"},
		{name: "cy", err: "include cycle cy -> x_inc -> y_inc -> x_inc"},
		{name: "self", err: "include cycle self -> s_inc -> s_inc"},
		{name: "miss", err: `miss.wgsl includes "nope_inc": no such snippet`},
		{name: "plain", err: `snippet names end in "_inc"`},
		{name: "absent", err: `no kernel "absent"`},
		// Only a line that starts with the directive includes.
		{name: "indent", want: "fn f() {} //#include c_inc\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := expand(fs, tc.name)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// Every embedded kernel expands: its snippets exist, no cycles, no
// directive is left in the text, and snippets are not kernels.
func TestIncludeEmbedded(t *testing.T) {
	names := Names()
	require.NotEmpty(t, names)
	for _, n := range names {
		require.False(t, strings.HasSuffix(n, incSuffix), n)
		src, err := Source(n, map[string]string{"X": "1u"})
		require.NoError(t, err, n)
		require.True(t, strings.HasPrefix(src, "const X = 1u;\n"), n)
		require.NotContains(t, src, includeDirective, n)
	}
	_, err := Source("conv2d_inc", nil)
	require.ErrorContains(t, err, "include snippet")
}

func TestIncludeKeyUnaffected(t *testing.T) {
	c := map[string]string{"B": "2u", "A": "1u"}
	require.Equal(t, "conv2d_reg|A=1u|B=2u", Key("conv2d_reg", c))
	require.Equal(t, "conv2d_reg", Key("conv2d_reg", nil))
}
