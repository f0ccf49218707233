package sqlstore

import (
	"strings"

	"github.com/authd/authd/storage"
)

// UserColumns are the columns of users that a backend's scan of a user
// reads, in order.
const UserColumns = `id, username, email, password_hash, roles, disabled, failed_logins, pending_logins, locked_until,
created_at, updated_at`

// selectQuery is a SELECT under construction: its conditions joined by AND,
// its arguments in the order the placeholders number them.
type selectQuery struct {
	d     Dialect
	sb    strings.Builder
	args  []any
	where bool
}

func (d Dialect) selectFrom(head string) *selectQuery {
	q := &selectQuery{d: d}
	q.sb.WriteString(head)
	return q
}

// and adds the condition cond, in which each ? stands for the next of args.
func (q *selectQuery) and(cond string, args ...any) {
	if q.where {
		q.sb.WriteString(` AND `)
	} else {
		q.sb.WriteString(` WHERE `)
		q.where = true
	}
	q.d.bind(&q.sb, cond, len(q.args))
	q.args = append(q.args, args...)
}

// end appends tail, in which each ? stands for the next of args, and returns
// the statement and its arguments.
func (q *selectQuery) end(tail string, args ...any) (string, []any) {
	q.d.bind(&q.sb, tail, len(q.args))
	return q.sb.String(), append(q.args, args...)
}

// UserPage is the query of a page of users, ordered by id, with its
// arguments: it reads UserColumns.
type UserPage struct {
	Query string
	Args  []any
	size  int
}

// UserPage returns the query of the page q asks for: the users after
// q.Cursor whose username or email contains q.Query, at most q.Limit
// (default and above 1000: 100), and one more, which tells whether a next
// page exists (see Cut).
func (d Dialect) UserPage(q storage.UserQuery) UserPage {
	size := limit(q.Limit, 100, 1000)
	s := d.selectFrom(`SELECT ` + UserColumns + ` FROM users`)
	if q.Cursor != "" {
		s.and(`id > ?`, q.Cursor)
	}
	if q.Query != "" {
		search := q.Query
		if d.FoldSearch {
			search = strings.ToLower(search)
		}
		args := make([]any, strings.Count(d.UserSearch, "?"))
		for i := range args {
			args[i] = LikePattern(search)
		}
		s.and(`(`+d.UserSearch+`)`, args...)
	}
	query, args := s.end(` ORDER BY id LIMIT ?`, size+1)
	return UserPage{Query: query, Args: args, size: size}
}

// Cut trims users, the rows p's query read, to the page and returns the
// cursor of the next page, empty on the last one.
func (p UserPage) Cut(users []storage.User) ([]storage.User, string) {
	if len(users) <= p.size {
		return users, ""
	}
	users = users[:p.size]
	return users, users[p.size-1].ID
}

// AuditQuery returns the query of the audit entries f selects, newest
// first, at most f.Limit (default 100), and its arguments. It reads id,
// time, type, user_id, client_id, ip and data.
func (d Dialect) AuditQuery(f storage.AuditFilter) (string, []any) {
	s := d.selectFrom(`SELECT id, time, type, user_id, client_id, ip, data FROM audit`)
	if f.UserID != "" {
		s.and(`user_id = ?`, f.UserID)
	}
	if f.Type != "" {
		s.and(`type = ?`, f.Type)
	}
	if !f.Since.IsZero() {
		s.and(`time >= ?`, d.Time(f.Since))
	}
	return s.end(` ORDER BY time DESC, id DESC LIMIT ?`, limit(f.Limit, 100, 0))
}
