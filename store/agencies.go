package store

import (
	"slices"
	"sync"

	"github.com/dienbao/dienbao/switch/telegram"
)

// The register of listed agencies: every agency the switch's directory has
// listed (key l, the agency's tag; value, sealed, its address), written
// when a directory is put in force and never shrunk. Queues are keyed by
// tags, which cannot be read back as addresses: the register is how the
// switch finds the queues of an agency that has left the directory, so
// that nothing in custody is hidden from operators.

type listedAgencies struct {
	once  sync.Once
	mu    sync.Mutex
	known map[telegram.Address]bool
	err   error
}

// loadListed reads the register from disk, once.
func (s *Store) loadListed() error {
	r := &s.listed
	r.once.Do(func() {
		known, err := s.readRegister(pListed, "the register of listed agencies")
		r.mu.Lock()
		r.known, r.err = known, err
		r.mu.Unlock()
	})
	return r.err
}

// RegisterListed adds to the register the agencies of as it does not
// hold yet, in one commit (none when it holds them all).
func (s *Store) RegisterListed(as []telegram.Address) error {
	if err := s.loadListed(); err != nil {
		return err
	}
	r := &s.listed
	r.mu.Lock()
	var add []telegram.Address
	for _, a := range as {
		if !r.known[a] {
			add = append(add, a)
		}
	}
	r.mu.Unlock()
	if len(add) == 0 {
		return nil
	}
	err := s.submit(&op{prec: telegram.Flash, apply: func(c *commitCtx) error {
		for _, a := range add {
			v, err := encodeRecord(string(a))
			if err != nil {
				return err
			}
			if err := c.set(c.s.ks.agencyKey(pListed, a), v); err != nil {
				return err
			}
		}
		return nil
	}})
	if err != nil {
		return err
	}
	r.mu.Lock()
	for _, a := range add {
		r.known[a] = true
	}
	r.mu.Unlock()
	return nil
}

// ListedAgencies is every agency the register holds, in address order.
func (s *Store) ListedAgencies() ([]telegram.Address, error) {
	if err := s.loadListed(); err != nil {
		return nil, err
	}
	r := &s.listed
	r.mu.Lock()
	out := make([]telegram.Address, 0, len(r.known))
	for a := range r.known {
		out = append(out, a)
	}
	r.mu.Unlock()
	slices.Sort(out)
	return out, nil
}

// ListedCount is how many agencies the register holds.
func (s *Store) ListedCount() (int, error) {
	if err := s.loadListed(); err != nil {
		return 0, err
	}
	s.listed.mu.Lock()
	defer s.listed.mu.Unlock()
	return len(s.listed.known), nil
}
