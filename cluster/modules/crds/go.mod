// The upstream CustomResourceDefinitions the e2e suite installs (ServiceMonitor, PrometheusRule, ScaledObject),
// taken from the operators' own modules so that go.sum pins their content. Nothing here is compiled.
module flask-svc.local/cluster/crds

go 1.24.0

require (
	github.com/kedacore/keda/v2 v2.18.2
	github.com/prometheus-operator/prometheus-operator v0.85.0
)
