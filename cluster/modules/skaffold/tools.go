//go:build tools

// The program this module builds; listed so that go.mod and go.sum record every module it needs.
package tools

import _ "github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold"
