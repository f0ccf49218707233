package main

import (
	"context"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// session is one signed-in browser: its tokens stay here, never in the
// browser.
type session struct {
	id       string
	subject  string
	username string
	csrf     string // the token of this session's forms
	expires  time.Time

	mu    sync.Mutex
	token *oauth2.Token
}

func (s *session) currentToken() *oauth2.Token {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token
}

func (s *session) setToken(t *oauth2.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = t
}

func (s *session) view() view {
	return view{SignedIn: true, Username: s.username, Subject: s.subject, CSRFToken: s.csrf}
}

// sessionStore keeps sessions in memory by their cookie's random value;
// they are lost at restart.
type sessionStore struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*session
}

func newSessionStore(now func() time.Time) *sessionStore {
	return &sessionStore{now: now, m: map[string]*session{}}
}

// create stores s under a fresh random id, returned for the cookie.
func (st *sessionStore) create(s *session) string {
	s.id = randomString()
	s.expires = st.now().Add(sessionTTL)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.m[s.id] = s
	return s.id
}

func (st *sessionStore) get(id string) (*session, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[id]
	if !ok {
		return nil, false
	}
	if !st.now().Before(s.expires) {
		delete(st.m, id)
		return nil, false
	}
	return s, true
}

func (st *sessionStore) delete(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, id)
}

// prune drops expired sessions every interval until ctx ends.
func (st *sessionStore) prune(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := st.now()
			st.mu.Lock()
			for id, s := range st.m {
				if !now.Before(s.expires) {
					delete(st.m, id)
				}
			}
			st.mu.Unlock()
		}
	}
}
