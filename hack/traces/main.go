// Command traces writes the synthetic traces of pkg/simulate to
// testdata/traces (go run ./hack/traces): diurnal, a daily ramp, flash crowd, ramp,
// sawtooth, noisy plateau and an outage gap, at 10 s, seeded.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/autoscale-io/reactive-autoscaler/pkg/simulate"
)

func main() {
	dir := "testdata/traces"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	for _, name := range simulate.ShapeNames {
		path := filepath.Join(dir, name+".csv")
		f, err := os.Create(path)
		if err == nil {
			err = simulate.WriteCSV(f, simulate.Shapes[name]())
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "traces:", err)
			os.Exit(1)
		}
		fmt.Println("wrote", path)
	}
}
