package sqlstore

// Scanner is a row to read: pgx.Row and pgx.Rows, *sql.Row and *sql.Rows.
type Scanner interface {
	Scan(dest ...any) error
}

// Rows is a result set to read row by row: pgx.Rows and *sql.Rows. (They
// close differently, so closing is the caller's.)
type Rows interface {
	Scanner
	Next() bool
	Err() error
}

// Collect scans every row with scan. The caller closes rows.
func Collect[T any](rows Rows, scan func(Scanner) (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
