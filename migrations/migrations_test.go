package migrations_test

import (
	"io/fs"
	"maps"
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

func TestVersionsAndUpToDate(t *testing.T) {
	for name, fsys := range map[string]fs.FS{"postgres": migrations.Postgres(), "sqlite": migrations.SQLite()} {
		vs, err := migrations.Versions(fsys)
		if err != nil || len(vs) == 0 {
			t.Fatalf("%s: Versions = %v, %v", name, vs, err)
		}
		for i, v := range vs {
			if v != int64(i+1) {
				t.Errorf("%s: versions %v; want 1, 2, 3, ...", name, vs)
				break
			}
		}
		all := map[int64]bool{}
		for _, v := range vs {
			all[v] = true
		}
		newer := maps.Clone(all)
		newer[vs[len(vs)-1]+1] = true
		rolledBack := maps.Clone(all)
		rolledBack[vs[len(vs)-1]] = false
		missing := maps.Clone(all)
		delete(missing, vs[0])
		for _, c := range []struct {
			name    string
			applied map[int64]bool
			want    bool
		}{
			{"all applied", all, true},
			{"a newer release's too", newer, true},
			{"the last rolled back", rolledBack, false},
			{"the first missing", missing, false},
			{"none", map[int64]bool{}, false},
		} {
			if got, err := migrations.UpToDate(fsys, c.applied); err != nil || got != c.want {
				t.Errorf("%s: UpToDate(%s) = %v, %v; want %v", name, c.name, got, err, c.want)
			}
		}
	}
}
