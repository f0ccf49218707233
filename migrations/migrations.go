// Package migrations embeds authd's SQL schema, one directory per dialect, in
// goose format (-- +goose Up / -- +goose Down). Each file is applied in its own
// transaction, in the order of its numeric prefix.
package migrations

import (
	"embed"
	"io/fs"
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
