package nn

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// IntOrList is a diffusers config field that may be an int, a list of ints
// (one per block) or null.
type IntOrList struct {
	Set  bool
	List []int
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *IntOrList) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*v = IntOrList{}
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*v = IntOrList{Set: true, List: []int{n}}
		return nil
	}
	var l []int
	if err := json.Unmarshal(b, &l); err != nil {
		return fmt.Errorf("want an int or a list of ints, got %s", b)
	}
	*v = IntOrList{Set: true, List: l}
	return nil
}

// Expand returns one value per block (a single int is repeated); it is an
// error when a list has the wrong length.
func (v IntOrList) Expand(n int, name string) ([]int, error) {
	if !v.Set {
		return nil, nil
	}
	if len(v.List) == 1 {
		out := make([]int, n)
		for i := range out {
			out[i] = v.List[0]
		}
		return out, nil
	}
	if len(v.List) != n {
		return nil, fmt.Errorf("config: %s has %d entries for %d blocks", name, len(v.List), n)
	}
	return append([]int(nil), v.List...), nil
}

// readJSON decodes a JSON file, naming it in errors.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return nil
}
