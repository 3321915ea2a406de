package nn

import "fmt"

func checkGather(table *Tensor, ids []int) error {
	if table.Rank() != 2 {
		return fmt.Errorf("table %v must be [V, D]", table)
	}
	if len(ids) == 0 {
		return fmt.Errorf("no ids")
	}
	for i, id := range ids {
		if id < 0 || id >= table.Dim(0) {
			return fmt.Errorf("id %d at position %d is outside the table's %d rows", id, i, table.Dim(0))
		}
	}
	return nil
}

// Gather implements Backend (reference).
func (c *CPU) Gather(table *Tensor, ids []int) *Tensor {
	if !c.ok("gather", table) {
		return nil
	}
	if err := checkGather(table, ids); err != nil {
		return c.errf("gather", "%v", err)
	}
	d := table.Dim(1)
	out := c.newTensor([]int{len(ids), d}, F32)
	td, od := table.cpuData(), out.cpuData()
	for i, id := range ids {
		copy(od[i*d:(i+1)*d], td[id*d:(id+1)*d])
	}
	return out
}
