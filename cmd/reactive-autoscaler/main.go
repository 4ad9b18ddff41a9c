// Command reactive-autoscaler scales opted-in Deployments on their request
// rate: `run` is the controller, `status` lists what it manages, `version`
// prints the build.
package main

import (
	"fmt"
	"os"
	"runtime"

	"github.com/spf13/cobra"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json
	"k8s.io/klog/v2"

	_ "time/tzdata" // autoscale.io/timezone in a distroless image
)

// Stamped by the build (-ldflags -X).
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	if err := newRootCommand().Execute(); err != nil {
		klog.Flush()
		os.Exit(1)
	}
	klog.Flush()
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "reactive-autoscaler",
		Short:         "Scales Kubernetes Deployments on their request rate, reacting to spikes in under a second",
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.AddCommand(newRunCommand(), newStatusCommand(), newSimulateCommand(), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "reactive-autoscaler %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	})
	return root
}
