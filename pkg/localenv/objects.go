package localenv

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
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

// DemoAppImage is the demo-app image make node-images builds, for pods on
// a real node.
const DemoAppImage = "docker.io/library/demo-app:local"

// ServingDeployment returns a Deployment of demo-app pods for a real node:
// each serves service's requests on port 8080 (with serve's extra
// arguments, such as --capacity), Ready once it answers, scraped by
// Prometheus (the prometheus.io annotations), placed by kube-scheduler.
func ServingDeployment(namespace, name, service string, replicas int32, annotations map[string]string, extra ...string) *appsv1.Deployment {
	d := Deployment(namespace, name, replicas, annotations)
	t := &d.Spec.Template
	t.Annotations = map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "8080"}
	t.Spec.NodeName = ""
	t.Spec.Containers = []corev1.Container{{
		Name: "web", Image: DemoAppImage, ImagePullPolicy: corev1.PullNever,
		Args:           append([]string{"serve", "--listen", "0.0.0.0:8080", "--service", service}, extra...),
		Ports:          []corev1.ContainerPort{{ContainerPort: 8080}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/metrics", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
	}}
	return d
}

// ServiceFor returns a Service on port 80 in front of a Deployment's pods.
func ServiceFor(d *appsv1.Deployment) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: d.Name, Namespace: d.Namespace},
		Spec: corev1.ServiceSpec{Selector: d.Spec.Selector.MatchLabels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
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
