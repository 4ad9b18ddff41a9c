package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
	"github.com/autoscale-io/reactive-autoscaler/pkg/watch"
)

// restConfig finds the cluster as kubectl does: the given kubeconfig file,
// else $KUBECONFIG, else ~/.kube/config, else the in-cluster config of a
// pod's ServiceAccount.
func restConfig(kubeconfig string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("finding the cluster (--kubeconfig, $KUBECONFIG, ~/.kube/config, or in a pod its ServiceAccount): %w", err)
	}
	return cfg, nil
}

// newStatusCommand: what is managed, its replicas and the last decision,
// read from the Deployments and StatefulSets and their autoscale.io/status
// annotation.
func newStatusCommand() *cobra.Command {
	var kubeconfig, namespace string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the managed Deployments and StatefulSets: replicas, data health, last decision, predictor MAPE",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := restConfig(kubeconfig)
			if err != nil {
				return err
			}
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			deployments, err := client.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			var rows []workloadRow
			for _, d := range deployments.Items {
				rows = append(rows, workloadRow{"Deployment", d.ObjectMeta, d.Spec.Replicas, d.Status.ReadyReplicas})
			}
			statefulSets, err := client.AppsV1().StatefulSets(namespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, s := range statefulSets.Items {
				rows = append(rows, workloadRow{"StatefulSet", s.ObjectMeta, s.Spec.Replicas, s.Status.ReadyReplicas})
			}
			return printStatus(cmd.OutOrStdout(), rows, time.Now())
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file; empty = KUBECONFIG or ~/.kube/config")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "only this namespace; empty = all")
	return cmd
}

// workloadRow is what status shows of a Deployment or a StatefulSet.
type workloadRow struct {
	Kind string
	metav1.ObjectMeta
	Replicas *int32
	Ready    int32
}

// printable makes text read from a workload (whoever may edit it may
// have written it) safe for a terminal and a table: control characters
// (newlines, tabs, escape sequences) and invalid UTF-8 become Go escapes.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) && r != ' ' {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func printStatus(w io.Writer, rows []workloadRow, now time.Time) error {
	slices.SortFunc(rows, func(a, b workloadRow) int {
		return strings.Compare(a.Namespace+"/"+a.Name+"/"+a.Kind, b.Namespace+"/"+b.Name+"/"+b.Kind)
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tNAME\tKIND\tREPLICAS\tREADY\tDATA\tLAST SCALE\tLAST DECISION\tPREDICTOR MAPE")
	n := 0
	for _, d := range rows {
		if !scaler.Managed(d.Annotations) {
			continue
		}
		n++
		replicas := int32(1)
		if d.Replicas != nil {
			replicas = *d.Replicas
		}
		st := watch.Status{DataHealth: "-"}
		if raw := d.Annotations[watch.StatusAnnotation]; raw != "" {
			if err := json.Unmarshal([]byte(raw), &st); err != nil {
				st.DataHealth = "unreadable status: " + err.Error()
			}
		}
		last, decision, mape := "never", "-", "-"
		if st.LastScaleTime != nil {
			last = now.Sub(st.LastScaleTime.Time).Round(time.Second).String() + " ago"
		}
		if st.LastDecision != nil {
			decision = fmt.Sprintf("%d->%d %s", st.LastDecision.From, st.LastDecision.To, st.LastDecision.Reason)
		}
		if p := st.Predictor; p != nil && p.MAPEPercent != nil {
			mape = fmt.Sprintf("%.0f%% (%s, %d scored)", *p.MAPEPercent, p.Predictor, p.Scored)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", d.Namespace, d.Name, d.Kind, replicas, d.Ready, printable(st.DataHealth), last, printable(decision), printable(mape))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(w, "No Deployment or StatefulSet is annotated autoscale.io/reactive=true.")
	}
	return nil
}
