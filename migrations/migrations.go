// Package migrations embeds authd's SQL schema, one directory per dialect, in
// goose format (-- +goose Up / -- +goose Down). Each file is applied in its own
// transaction, in the order of its numeric prefix.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Postgres returns the PostgreSQL migrations, rooted so that the files are at the top.
func Postgres() fs.FS { return sub("postgres") }

// SQLite returns the SQLite migrations, rooted so that the files are at the top.
func SQLite() fs.FS { return sub("sqlite") }

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		// Unreachable: dir is a constant directory of the embedded tree.
		panic("migrations: " + err.Error())
	}
	return f
}

// Versions lists the versions of the migrations in fsys (the numeric prefix
// of each file name), in order.
func Versions(fsys fs.FS) ([]int64, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	out := make([]int64, 0, len(names))
	for _, n := range names {
		digits := n[:len(n)-len(strings.TrimLeft(n, "0123456789"))]
		v, err := strconv.ParseInt(digits, 10, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migrations: %s: no version prefix", n)
		}
		out = append(out, v)
	}
	return out, nil
}

// UpToDate reports whether every migration in fsys is applied, given what
// goose's version table says of each version it holds: the is_applied of the
// version's newest row (goose deletes the row of a version it rolls back;
// older goose releases added a row with is_applied false). Versions the
// table holds beyond fsys's (a newer release's) do not matter.
func UpToDate(fsys fs.FS, applied map[int64]bool) (bool, error) {
	want, err := Versions(fsys)
	if err != nil {
		return false, err
	}
	for _, v := range want {
		if !applied[v] {
			return false, nil
		}
	}
	return true, nil
}
