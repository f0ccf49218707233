// Package kubernetes checks the manifests in this folder without a cluster:
// each object is decoded strictly into its k8s.io/api type (an unknown or
// misspelt field fails), then the fields that matter are checked: replicas
// and rolling updates, probes on authd's /readyz and /healthz, the
// PodDisruptionBudget, the Service and Ingress wiring, secrets from a
// Secret, a non-root read-only container, and an environment serve accepts.
//
// It is a module of its own (k8s.io/api stays out of authd's go.mod); run it
// with `make check-deploy`.
package kubernetes

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/authd/authd/config"
)

// kustomization is the part of kustomization.yaml the test reads.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Images []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

type manifests struct {
	kust        kustomization
	deployment  *appsv1.Deployment
	service     *corev1.Service
	pdb         *policyv1.PodDisruptionBudget
	ingress     *networkingv1.Ingress
	serviceAcct *corev1.ServiceAccount
}

// load decodes every object of every resource kustomization.yaml lists.
func load(t *testing.T) manifests {
	t.Helper()
	var m manifests
	b, err := os.ReadFile("kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, &m.kust); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	files, _ := filepath.Glob("*.yaml")
	for _, f := range files {
		if f != "kustomization.yaml" && !slices.Contains(m.kust.Resources, f) {
			t.Errorf("%s is not listed in kustomization.yaml's resources", f)
		}
	}
	for _, f := range m.kust.Resources {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("kustomization.yaml lists %s: %v", f, err)
		}
		for i, doc := range bytes.Split(b, []byte("\n---")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s #%d: %v", f, i+1, err)
			}
			var into any
			switch meta.APIVersion + " " + meta.Kind {
			case "apps/v1 Deployment":
				m.deployment = &appsv1.Deployment{}
				into = m.deployment
			case "v1 Service":
				m.service = &corev1.Service{}
				into = m.service
			case "policy/v1 PodDisruptionBudget":
				m.pdb = &policyv1.PodDisruptionBudget{}
				into = m.pdb
			case "networking.k8s.io/v1 Ingress":
				m.ingress = &networkingv1.Ingress{}
				into = m.ingress
			case "v1 ServiceAccount":
				m.serviceAcct = &corev1.ServiceAccount{}
				into = m.serviceAcct
			default:
				t.Fatalf("%s #%d: unexpected %s %s", f, i+1, meta.APIVersion, meta.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, into); err != nil {
				t.Errorf("%s #%d (%s): %v", f, i+1, meta.Kind, err)
			}
		}
	}
	if m.deployment == nil || m.service == nil || m.pdb == nil || m.ingress == nil || m.serviceAcct == nil {
		t.Fatalf("want a Deployment, a Service, a PodDisruptionBudget, an Ingress and a ServiceAccount")
	}
	return m
}

func authdContainer(t *testing.T, d *appsv1.Deployment) corev1.Container {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "authd" {
			return c
		}
	}
	t.Fatal("the Deployment has no container named authd")
	return corev1.Container{}
}

func TestDeployment(t *testing.T) {
	m := load(t)
	d := m.deployment
	pod := d.Spec.Template.Spec
	c := authdContainer(t, d)

	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas = %v; want at least 2", d.Spec.Replicas)
	}
	if ru := d.Spec.Strategy.RollingUpdate; d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Errorf("strategy = %+v; want a rolling update that never lowers capacity (maxUnavailable 0)", d.Spec.Strategy)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod labels %v", k, v, d.Spec.Template.Labels)
		}
	}
	if c.Image != m.kust.Images[0].Name {
		t.Errorf("image %q is not the one kustomization.yaml sets (%q)", c.Image, m.kust.Images[0].Name)
	}

	// Probes: readiness on /readyz, liveness on /healthz, on the named port.
	port := containerPort(t, c, "http")
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: want an HTTP GET of %s", name, path)
			return
		}
		if p.HTTPGet.Path != path || (p.HTTPGet.Port != intstr.FromString("http") && p.HTTPGet.Port != intstr.FromInt32(port)) {
			t.Errorf("%s probe: GET %s on %s; want %s on the http port", name, p.HTTPGet.Path, p.HTTPGet.Port.String(), path)
		}
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")
	if c.StartupProbe != nil {
		probe("startup", c.StartupProbe, "/healthz")
	}

	// Non-root, read-only, nothing extra.
	psc, sc := pod.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("pod securityContext: want runAsNonRoot and a non-zero runAsUser")
	}
	if psc != nil && (psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault) {
		t.Error("pod securityContext: want the RuntimeDefault seccomp profile")
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Error("container securityContext: want readOnlyRootFilesystem, no privilege escalation, every capability dropped")
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a service account token; authd does not call the Kubernetes API")
	}
	if pod.ServiceAccountName != m.serviceAcct.Name {
		t.Errorf("serviceAccountName %q; want %q", pod.ServiceAccountName, m.serviceAcct.Name)
	}
	if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Error("want memory requests and limits (argon2id needs 19 MiB per hash in flight)")
	}

	// The environment: secrets only from the Secret, every variable a setting,
	// and the whole a configuration serve accepts.
	env := map[string]string{}
	for _, e := range c.Env {
		if !strings.HasPrefix(e.Name, config.EnvPrefix) {
			t.Errorf("env %s is not an AUTHD_ setting", e.Name)
		}
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != "authd" {
				t.Errorf("env %s reads Secret %q; want the Secret authd", e.Name, ref.Name)
			}
			if ref.Optional == nil || !*ref.Optional {
				env[e.Name] = "from-secret-" + ref.Key // placeholder for the check below
			}
		case e.ValueFrom != nil:
			t.Errorf("env %s comes from something other than a Secret", e.Name)
		default:
			env[e.Name] = e.Value
		}
	}
	for _, name := range []string{"AUTHD_SECRET", "AUTHD_SECRET_OLD", "AUTHD_DATABASE_URL", "AUTHD_REDIS_URL", "AUTHD_KAFKA_SASL_PASSWORD"} {
		for _, e := range c.Env {
			if e.Name == name && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil) {
				t.Errorf("%s is set in the manifest; it must come from the Secret", name)
			}
		}
	}
	for _, must := range []string{"AUTHD_SECRET", "AUTHD_DATABASE_URL"} {
		if _, ok := env[must]; !ok {
			t.Errorf("%s is not set from the Secret (required)", must)
		}
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	for _, u := range config.UnknownEnv(environ) {
		t.Errorf("env %s is unknown to authd (did you mean %q?)", u.Name, u.Suggest)
	}
	env["AUTHD_SECRET"] = strings.Repeat("s", config.MinSecretLen)
	env["AUTHD_DATABASE_URL"] = "postgres://authd@db:5432/authd"
	cfg, err := config.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("the environment does not load: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("serve would refuse the environment: %v", err)
	}
	if cfg.Dev {
		t.Error("dev mode in a production manifest")
	}
	if _, p, _ := strings.Cut(cfg.HTTPAddr, ":"); p != fmt.Sprint(port) {
		t.Errorf("AUTHD_HTTP_ADDR %s does not listen on the container port %d", cfg.HTTPAddr, port)
	}
	grace := int64(30)
	if pod.TerminationGracePeriodSeconds != nil {
		grace = *pod.TerminationGracePeriodSeconds
	}
	if pre := preStopSeconds(c); float64(grace) <= cfg.ShutdownTimeout.Seconds()+float64(pre) {
		t.Errorf("terminationGracePeriodSeconds %d is not above AUTHD_SHUTDOWN_TIMEOUT (%s) plus the preStop pause (%ds)", grace, cfg.ShutdownTimeout, pre)
	}

	// The Ingress serves the issuer's host over TLS and routes to the Service,
	// which routes to the container.
	iss, _ := url.Parse(cfg.Issuer)
	ing := m.ingress.Spec
	if iss.Scheme != "https" || len(ing.TLS) == 0 || !slices.Contains(ing.TLS[0].Hosts, iss.Hostname()) || ing.TLS[0].SecretName == "" {
		t.Errorf("AUTHD_ISSUER %s: want https and an Ingress TLS entry for its host", cfg.Issuer)
	}
	if len(ing.Rules) != 1 || ing.Rules[0].Host != iss.Hostname() || ing.Rules[0].HTTP == nil || len(ing.Rules[0].HTTP.Paths) == 0 {
		t.Fatalf("Ingress rules: want one rule for %s", iss.Hostname())
	}
	be := ing.Rules[0].HTTP.Paths[0].Backend.Service
	if be == nil || be.Name != m.service.Name || !servicePortMatches(m.service, be.Port) {
		t.Errorf("Ingress backend %+v is not the Service %s", be, m.service.Name)
	}
	for k, v := range m.service.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not select the pods", k, v)
		}
	}
	for _, p := range m.service.Spec.Ports {
		if p.TargetPort != intstr.FromString("http") && p.TargetPort != intstr.FromInt32(port) {
			t.Errorf("Service port %s targets %s; want the container's http port", p.Name, p.TargetPort.String())
		}
	}
}

func TestPodDisruptionBudget(t *testing.T) {
	m := load(t)
	pdb, d := m.pdb, m.deployment
	for k, v := range pdb.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("PodDisruptionBudget selector %s=%s does not select authd's pods", k, v)
		}
	}
	if len(pdb.Spec.Selector.MatchLabels) == 0 {
		t.Error("PodDisruptionBudget selects nothing")
	}
	replicas := int(*d.Spec.Replicas)
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		if n := pdb.Spec.MaxUnavailable.IntValue(); n < 1 || n >= replicas {
			t.Errorf("PodDisruptionBudget maxUnavailable %d with %d replicas; want 1..%d", n, replicas, replicas-1)
		}
	case pdb.Spec.MinAvailable != nil:
		if n := pdb.Spec.MinAvailable.IntValue(); n < 1 || n >= replicas {
			t.Errorf("PodDisruptionBudget minAvailable %d with %d replicas blocks drains or protects nothing", n, replicas)
		}
	default:
		t.Error("PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
	}
}

func containerPort(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Fatalf("container %s has no port named %s", c.Name, name)
	return 0
}

func servicePortMatches(s *corev1.Service, p networkingv1.ServiceBackendPort) bool {
	for _, sp := range s.Spec.Ports {
		if (p.Name != "" && sp.Name == p.Name) || (p.Number != 0 && sp.Port == p.Number) {
			return true
		}
	}
	return false
}

func preStopSeconds(c corev1.Container) int64 {
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		return c.Lifecycle.PreStop.Sleep.Seconds
	}
	return 0
}
