package verify_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencies keeps verify importable by any service: no package of
// authd's but verify itself, internal/dpop (a leaf: DPoP proof checks) and
// internal/jws (a leaf: compact JWS), and outside the standard library only
// go-jose and x/sync.
func TestDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out, err := exec.CommandContext(t.Context(), goCmd, "list", "-deps",
		"-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "github.com/authd/authd/verify").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	allowed := []string{"github.com/go-jose/go-jose/v4", "golang.org/x/sync/"}
	var seen []string
	for dep := range strings.FieldsSeq(string(out)) {
		seen = append(seen, dep)
		switch dep {
		case "github.com/authd/authd/verify", "github.com/authd/authd/internal/dpop", "github.com/authd/authd/internal/jws":
			continue
		}
		if strings.HasPrefix(dep, "github.com/authd/authd/") || dep == "github.com/authd/authd" {
			t.Errorf("verify depends on authd package %s", dep)
			continue
		}
		ok := false
		for _, prefix := range allowed {
			if strings.HasPrefix(dep, prefix) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("verify depends on %s; want only the standard library, go-jose/v4 and x/sync", dep)
		}
	}
	if len(seen) == 0 {
		t.Fatal("go list printed no package, not even verify")
	}
}
