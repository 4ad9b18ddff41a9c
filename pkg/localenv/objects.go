package localenv

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Deployment returns a Deployment whose pods are bound to the first kwok
// node (there is no scheduler): they become Running and run nothing.
func Deployment(namespace, name string, replicas int32, annotations map[string]string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{NodeName: NodeName, Containers: []corev1.Container{{Name: name, Image: name + ":kwok"}}},
			},
		},
	}
}

// StatefulSet returns a StatefulSet whose pods are bound to the first kwok
// node and started in parallel (each becomes Running and Ready without
// waiting for the one before).
func StatefulSet(namespace, name string, replicas int32, annotations map[string]string) *appsv1.StatefulSet {
	labels := map[string]string{"app": name}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Annotations: annotations},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            &replicas,
			ServiceName:         name,
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Selector:            &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{NodeName: NodeName, Containers: []corev1.Container{{Name: name, Image: name + ":kwok"}}},
			},
		},
	}
}

// SpikeStack is the environment the demo and the e2e tests run: the control
// plane with the Deployment and StatefulSet controllers, one kwok node, Prometheus scraping
// every second with the spike rules loaded, and Alertmanager sending
// RequestRateSpike to webhookURL with the token in tokenFile.
func SpikeStack(binDir, rules, webhookURL, tokenFile string) Options {
	return Options{
		BinDir:             binDir,
		ControllerManager:  true,
		KwokNodes:          1,
		Prometheus:         &PrometheusOptions{ScrapeInterval: time.Second, RuleFiles: []string{rules}},
		AlertmanagerConfig: WebhookRoute(webhookURL, tokenFile),
	}
}
