package postgres

import (
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Pool exposes the connection pool to the package's external tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// SetDenylistPollEvery changes how often d reads without a wake-up; set it
// before Run.
func SetDenylistPollEvery(d *Denylist, every time.Duration) { d.pollEvery = every }

// SetDenylistBacklogWarn changes the read size d warns about; set it before Run.
func SetDenylistBacklogWarn(d *Denylist, n int) { d.backlogWarn = n }
