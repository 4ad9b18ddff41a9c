package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
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

// newStatusCommand: what is managed, in which state, its rate against the
// thresholds and the last decision, read from the Deployments and
// StatefulSets and their autoscale.io/status annotation. Installed as
// kubectl-reactive_autoscaler it is also `kubectl reactive-autoscaler status`.
func newStatusCommand() *cobra.Command {
	var kubeconfig, namespace, output string
	var kinds []string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the managed Deployments and StatefulSets (and --kinds): state, replicas, rate against the thresholds, last scale",
		Long: `status lists every workload annotated autoscale.io/reactive=true with its state:
  invalid    the annotations are refused (nothing is managed until they are fixed)
  paused     autoscale.io/paused=true: neither evaluated nor scaled
  conflict   another autoscaler (an HPA) scales it: left alone
  no data    the rate is unusable: replicas are held, never lowered
  dry run    decisions are made and reported, never written
  warning    managed, but some annotation is ignored or the table stops below max-replicas
  ok         managed, data fine
  quiet      no status written yet: not evaluated yet, or never scaled with data fine
RPS is the smoothed rate when the status was last written (its age beside it), THRESHOLDS the
rates that scale down and up from the current replicas. States and thresholds come from the
workload's annotations: controller-wide defaults (chart values) are not visible here.
-o wide adds the last decision, the predictor's error and the state's detail; -o json prints
everything, for scripts.`,
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if !slices.Contains([]string{"", "wide", "json"}, output) {
				return fmt.Errorf("--output %q: must be wide or json (or empty for the table)", output)
			}
			return nil
		},
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
			if len(kinds) > 0 {
				custom, err := resolveKinds(cfg, client, kinds)
				if err != nil {
					return err
				}
				more, err := custom.rows(ctx, namespace)
				if err != nil {
					return err
				}
				rows = append(rows, more...)
			}
			return printStatus(cmd.OutOrStdout(), rows, output, time.Now())
		},
	}
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file; empty = KUBECONFIG or ~/.kube/config")
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "only this namespace; empty = all")
	cmd.Flags().StringVarP(&output, "output", "o", "", "wide (more columns) or json; empty = a table of at most 120 columns")
	cmd.Flags().StringSliceVar(&kinds, "kinds", nil, "also list these kinds with a /scale subresource, as resource.group (as run's --kinds)")
	return cmd
}

// rows reads the opted-in objects of each custom kind: their metadata,
// and their replicas from /scale (spec, and status as the ready count: a
// custom kind reports no readiness of its own there).
func (k *customKinds) rows(ctx context.Context, namespace string) ([]workloadRow, error) {
	var rows []workloadRow
	for _, kind := range k.list {
		list, err := k.meta.Resource(kind.gvr).Namespace(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", kind.gvr.Resource, err)
		}
		for _, item := range list.Items {
			if !scaler.Managed(item.Annotations) {
				continue
			}
			sc, err := k.scales.Scales(item.Namespace).Get(ctx, kind.gvr.GroupResource(), item.Name, metav1.GetOptions{})
			if err != nil {
				return nil, fmt.Errorf("reading the scale of %s %s/%s: %w", kind.kind, item.Namespace, item.Name, err)
			}
			rows = append(rows, workloadRow{kind.kind, item.ObjectMeta, &sc.Spec.Replicas, sc.Status.Replicas})
		}
	}
	return rows, nil
}

// workloadRow is what status reads of a Deployment or a StatefulSet.
type workloadRow struct {
	Kind string
	metav1.ObjectMeta
	Replicas *int32
	Ready    int32
}

// The states status reports, most pressing first.
const (
	stateInvalid  = "invalid"
	statePaused   = "paused"
	stateConflict = "conflict"
	stateNoData   = "no data"
	stateDryRun   = "dry run"
	stateWarning  = "warning"
	stateOK       = "ok"
	stateQuiet    = "quiet"
)

// statusRow is one managed workload as status reports it; its JSON is
// status -o json's.
type statusRow struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Replicas  int32  `json:"replicas"`
	Ready     int32  `json:"readyReplicas"`
	State     string `json:"state"`
	// Detail says why the state is not ok: the refused annotation, the
	// other autoscaler, the missing data, the warnings.
	Detail string `json:"detail,omitempty"`
	// RPS is the smoothed rate when the status was last written.
	RPS       *float64     `json:"rps,omitempty"`
	RPSAt     *metav1.Time `json:"rpsObservedAt,omitempty"`
	DownBelow *float64     `json:"scaleDownBelowRPS,omitempty"`
	UpAbove   *float64     `json:"scaleUpAboveRPS,omitempty"` // absent: the table's last row (inf)
	// Status is the autoscale.io/status annotation as written.
	Status *watch.Status `json:"status,omitempty"`
}

// describe reads one managed workload's state from its annotations (the
// settings, parsed as the controller parses them) and its status.
func describe(d workloadRow) statusRow {
	r := statusRow{Namespace: d.Namespace, Name: d.Name, Kind: d.Kind, Replicas: 1, Ready: d.Ready, State: stateQuiet}
	if d.Replicas != nil {
		r.Replicas = *d.Replicas
	}
	var st watch.Status
	if raw := d.Annotations[watch.StatusAnnotation]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &st); err != nil {
			r.State, r.Detail = stateWarning, "unreadable status: "+err.Error()
		} else {
			r.Status = &st
		}
	}
	if st.Rate != nil {
		r.RPS, r.RPSAt = &st.Rate.RPS, &st.Rate.At
	}
	spec, err := scaler.Parse(d.Name, d.Annotations, nil)
	if err == nil {
		err = spec.CheckWorkload(d.Namespace, d.Name)
	}
	if err == nil {
		row := spec.Table[min(int(max(r.Replicas, 1)), len(spec.Table))-1]
		r.DownBelow = &row.Down
		if !math.IsInf(row.Up, 1) {
			r.UpAbove = &row.Up
		}
	}
	warnings := st.Warnings
	if err == nil && spec.SizingWarning != "" && !slices.Contains(warnings, spec.SizingWarning) {
		warnings = append(warnings, spec.SizingWarning)
	}
	switch {
	case err != nil:
		r.State, r.Detail = stateInvalid, err.Error()
	case len(st.Warnings) > 0 && strings.HasPrefix(st.Warnings[0], "not managed: "):
		r.State, r.Detail = stateInvalid, strings.TrimPrefix(st.Warnings[0], "not managed: ")
	case spec.Paused:
		r.State = statePaused
	case st.Conflict != "":
		r.State, r.Detail = stateConflict, st.Conflict
	case strings.HasPrefix(st.DataHealth, "no data"):
		r.State, r.Detail = stateNoData, st.DataHealth
		if st.NoDataSince != nil {
			r.Detail += " (since " + st.NoDataSince.UTC().Format(time.RFC3339) + ")"
		}
	case spec.DryRun:
		r.State = stateDryRun
	case len(warnings) > 0:
		r.State, r.Detail = stateWarning, strings.Join(warnings, "; ")
	case r.Detail != "":
	case st.DataHealth != "" && st.DataHealth != "ok":
		r.State, r.Detail = stateWarning, "unknown data health: "+st.DataHealth
	case st.DataHealth == "ok":
		r.State = stateOK
	}
	return r
}

// statusWidth is what the default table fits in.
const statusWidth = 120

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

func printStatus(w io.Writer, rows []workloadRow, output string, now time.Time) error {
	slices.SortFunc(rows, func(a, b workloadRow) int {
		return strings.Compare(a.Namespace+"/"+a.Name+"/"+a.Kind, b.Namespace+"/"+b.Name+"/"+b.Kind)
	})
	out := []statusRow{}
	for _, d := range rows {
		if scaler.Managed(d.Annotations) {
			out = append(out, describe(d))
		}
	}
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"items": out})
	}
	if len(out) == 0 {
		_, err := fmt.Fprintln(w, "No Deployment or StatefulSet is annotated autoscale.io/reactive=true.")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "NAMESPACE\tNAME\tKIND\tREADY\tSTATE\tRPS\tTHRESHOLDS\tLAST SCALE"
	if output == "wide" {
		header += "\tLAST DECISION\tPREDICTOR MAPE\tDETAIL"
	}
	fmt.Fprintln(tw, header)
	for _, r := range out {
		rps, thresholds, last := "-", "-", "never"
		if r.RPS != nil {
			rps = fmt.Sprintf("%s (%s)", rate(*r.RPS), age(now.Sub(r.RPSAt.Time)))
		}
		if r.DownBelow != nil {
			up := "inf"
			if r.UpAbove != nil {
				up = rate(*r.UpAbove)
			}
			thresholds = fmt.Sprintf("<%s >%s", rate(*r.DownBelow), up)
		}
		if r.Status != nil && r.Status.LastScaleTime != nil {
			last = age(now.Sub(r.Status.LastScaleTime.Time)) + " ago"
		}
		cells := []string{r.Namespace, r.Name, r.Kind, fmt.Sprintf("%d/%d", r.Ready, r.Replicas), r.State, rps, thresholds, last}
		if output == "wide" {
			decision, mape := "-", "-"
			if r.Status != nil && r.Status.LastDecision != nil {
				ld := r.Status.LastDecision
				decision = fmt.Sprintf("%d->%d %s", ld.From, ld.To, ld.Reason)
			}
			if r.Status != nil && r.Status.Predictor != nil && r.Status.Predictor.MAPEPercent != nil {
				p := r.Status.Predictor
				mape = fmt.Sprintf("%.0f%% (%s, %d scored)", *p.MAPEPercent, p.Predictor, p.Scored)
			}
			detail := r.Detail
			if detail == "" {
				detail = "-"
			}
			cells = append(cells, decision, mape, detail)
		}
		for i := range cells {
			cells[i] = printable(cells[i])
		}
		if output == "" {
			cells[0], cells[1] = fit(cells[0], 16), fit(cells[1], 24)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// fit shortens s to n runes, marking the cut with '~' (the full text is
// in -o wide and -o json).
func fit(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "~"
}

// rate prints requests per second in at most 7 characters below 10^7.
func rate(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// age is d in the largest whole unit, as kubectl prints ages.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
