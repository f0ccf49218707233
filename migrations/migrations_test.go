package migrations_test

import (
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/authd/authd/migrations"
)

// Both dialects have the same migrations, each with an Up and a Down part.
func TestDialectsMatch(t *testing.T) {
	names := func(fsys fs.FS) []string {
		t.Helper()
		files, err := fs.Glob(fsys, "*.sql")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			b, err := fs.ReadFile(fsys, f)
			if err != nil {
				t.Fatal(err)
			}
			up, down := strings.Index(string(b), "-- +goose Up"), strings.Index(string(b), "-- +goose Down")
			if up < 0 || down < up {
				t.Errorf("%s: want a -- +goose Up section followed by a -- +goose Down section", f)
			}
		}
		return files
	}
	pg, lite := names(migrations.Postgres()), names(migrations.SQLite())
	if len(pg) == 0 || !slices.Equal(pg, lite) {
		t.Errorf("postgres migrations %v, sqlite migrations %v; want the same non-empty list", pg, lite)
	}
}
