package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/autoscale-io/reactive-autoscaler/pkg/scaler"
	"github.com/autoscale-io/reactive-autoscaler/pkg/watch"
)

// newStatusCommand: what is managed, its replicas and the last decision,
// read from the Deployments and their autoscale.io/status annotation.
func newStatusCommand() *cobra.Command {
	var kubeconfig, namespace string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the managed Deployments: replicas, data health, last decision, predictor MAPE",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			rules.ExplicitPath = kubeconfig
			cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
			if err != nil {
				return err
			}
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			list, err := client.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			return printStatus(cmd.OutOrStdout(), list.Items, time.Now())
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file; empty = KUBECONFIG or ~/.kube/config")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "only this namespace; empty = all")
	return cmd
}

func printStatus(w io.Writer, deployments []appsv1.Deployment, now time.Time) error {
	slices.SortFunc(deployments, func(a, b appsv1.Deployment) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tDEPLOYMENT\tREPLICAS\tREADY\tDATA\tLAST SCALE\tLAST DECISION\tPREDICTOR MAPE")
	n := 0
	for _, d := range deployments {
		if !scaler.Managed(d.Annotations) {
			continue
		}
		n++
		replicas := int32(1)
		if d.Spec.Replicas != nil {
			replicas = *d.Spec.Replicas
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
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", d.Namespace, d.Name, replicas, d.Status.ReadyReplicas, st.DataHealth, last, decision, mape)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n == 0 {
		fmt.Fprintln(w, "No Deployment is annotated autoscale.io/reactive=true.")
	}
	return nil
}
