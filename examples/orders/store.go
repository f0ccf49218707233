package main

import (
	"cmp"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
)

// errNotFound is returned for an order that does not exist.
var errNotFound = errors.New("orders: not found")

// Order is one order, owned by the user (token sub) who placed it.
type Order struct {
	ID        string    `json:"id"`
	Owner     string    `json:"owner"`
	OwnerName string    `json:"owner_name,omitempty"`
	Item      string    `json:"item"`
	Quantity  int       `json:"quantity"`
	CreatedAt time.Time `json:"created_at"`
}

// store keeps orders in memory, guarded by a mutex.
type store struct {
	now func() time.Time

	mu     sync.Mutex
	orders map[string]entry
	seq    uint64 // creation order, so that lists are stable
}

type entry struct {
	Order
	seq uint64
}

func newStore(now func() time.Time) *store {
	return &store{now: now, orders: make(map[string]entry)}
}

// create stores a new order with a fresh id and returns it.
func (s *store) create(owner, ownerName, item string, quantity int) Order {
	o := Order{
		ID:        "ord_" + strings.ToLower(rand.Text()),
		Owner:     owner,
		OwnerName: ownerName,
		Item:      item,
		Quantity:  quantity,
		CreatedAt: s.now().UTC(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	s.orders[o.ID] = entry{Order: o, seq: s.seq}
	return o
}

// list returns the orders of owner, or every order when owner is empty,
// oldest first.
func (s *store) list(owner string) []Order {
	s.mu.Lock()
	found := make([]entry, 0, len(s.orders))
	for _, e := range s.orders {
		if owner == "" || e.Owner == owner {
			found = append(found, e)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(found, func(a, b entry) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]Order, len(found))
	for i, e := range found {
		out[i] = e.Order
	}
	return out
}

func (s *store) get(id string) (Order, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.orders[id]
	if !ok {
		return Order{}, errNotFound
	}
	return e.Order, nil
}

func (s *store) delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.orders[id]; !ok {
		return errNotFound
	}
	delete(s.orders, id)
	return nil
}
