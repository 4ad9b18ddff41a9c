// Command stages prints kwok's "fast" node and pod stages as one multi-document
// YAML, the config that makes kwok's fake nodes Ready and their pods Running
// (kwok refuses to start without stages).
package main

import (
	"fmt"
	"strings"

	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
)

func main() {
	docs := []string{nodefast.DefaultNodeInit, podfast.DefaultPodReady, podfast.DefaultPodComplete, podfast.DefaultPodDelete}
	for i, d := range docs {
		docs[i] = strings.TrimSpace(d)
	}
	fmt.Println(strings.Join(docs, "\n---\n"))
}
