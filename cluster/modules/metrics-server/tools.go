//go:build tools

// The program this module builds; listed so that go.mod and go.sum record every module it needs.
package tools

import _ "sigs.k8s.io/metrics-server/cmd/metrics-server"
