package sqlstore

import (
	"path"

	"github.com/pressly/goose/v3"

	"github.com/authd/authd/storage"
)

// MigrationStates turns goose's status of each migration into storage's.
func MigrationStates(st []*goose.MigrationStatus) []storage.MigrationState {
	out := make([]storage.MigrationState, 0, len(st))
	for _, m := range st {
		ms := storage.MigrationState{
			Version: m.Source.Version,
			Name:    path.Base(m.Source.Path),
			Applied: m.State == goose.StateApplied,
		}
		if ms.Applied && !m.AppliedAt.IsZero() {
			ms.AppliedAt = m.AppliedAt.UTC()
		}
		out = append(out, ms)
	}
	return out
}
