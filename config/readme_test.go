package config

import (
	"os"
	"strings"
	"testing"
)

// section returns the text of the README section that starts with heading,
// up to the next heading of the same level.
func section(t *testing.T, readme, heading string) string {
	t.Helper()
	i := strings.Index(readme, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no %q section", heading)
	}
	rest := readme[i+len(heading)+2:]
	level := heading[:strings.IndexByte(heading, ' ')+1]
	if j := strings.Index(rest, "\n"+level); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

// TestREADMEListsEverySetting: the README's configuration table names every
// setting's variable.
func TestREADMEListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	table := section(t, string(b), "## Configuration")
	for _, f := range append(fields(), field{key: "config"}) {
		name := "`" + envName(f.key) + "`"
		if !strings.Contains(table, name) {
			t.Errorf("README's configuration table lacks %s", name)
		}
	}
}
