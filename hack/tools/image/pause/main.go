// Command pause is the sandbox image's process of a local node's pods: it
// holds the pod's namespaces until it is told to stop, as the upstream
// pause container does.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
