package sqlstore

import (
	"strings"
	"time"

	"github.com/authd/authd/storage"
)

// NewUser is u as a store creates it: the username lowercased, CreatedAt
// defaulting to now() and UpdatedAt to CreatedAt.
func NewUser(u storage.User, now func() time.Time) storage.User {
	u.Username = strings.ToLower(u.Username)
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now()
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	return u
}

// UpdatedUser is u, changed by an update of the user id, as the store
// writes it at now: the id kept, the username lowercased, UpdatedAt now in
// UTC.
func UpdatedUser(u storage.User, id string, now time.Time) storage.User {
	u.ID = id
	u.Username = strings.ToLower(u.Username)
	u.UpdatedAt = now.UTC()
	return u
}
