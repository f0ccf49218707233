package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestREADMEListsEveryVerb: every verb of the CLI is in the README's CLI
// section, on a line that starts with its group ("authd users ... set-password").
func TestREADMEListsEveryVerb(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i := strings.Index(readme, "\n## CLI\n")
	if i < 0 {
		t.Fatal("README has no CLI section")
	}
	cli := readme[i+8:]
	if j := strings.Index(cli, "\n## "); j >= 0 {
		cli = cli[:j]
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			if sub.HasSubCommands() {
				walk(sub)
				continue
			}
			group := strings.TrimPrefix(c.CommandPath(), "authd")
			re := regexp.MustCompile(`(?m)^authd` + regexp.QuoteMeta(group) + ` .*\b` + regexp.QuoteMeta(sub.Name()) + `\b`)
			if !re.MatchString(cli) {
				t.Errorf("README's CLI section lacks %q", sub.CommandPath())
			}
		}
	}
	walk(newRootCommand(strings.NewReader(""), nil, nil, lookup(nil)))
	if !strings.Contains(cli, "--version") {
		t.Error("README's CLI section lacks --version")
	}
}
