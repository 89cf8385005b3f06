package store

import (
	"errors"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Filing numbers. Each telegram is numbered as it is filed (the store's
// count m"filings", kept with the commit that files it), and its header,
// body and delivery states are keyed by that number, so Badger receives
// them in key order: a million telegrams waiting in a queue sit in tables
// that the new traffic, always numbered higher, never overlaps, and
// compaction leaves them alone. The number is found from the ID through
// N<telegram tag> (sealed), and remembered: a number never changes and is
// never given twice, so a remembered one is always right for its ID.

// numbers remembers the filing numbers of recently used telegrams, in two
// generations of at most numbersKept each.
type numbers struct {
	mu        sync.RWMutex // readers (every hand-out) do not wait for each other
	cur, prev map[telegram.ID]uint64
}

const numbersKept = 1 << 16

func (n *numbers) get(id telegram.ID) (uint64, bool) {
	n.mu.RLock()
	v, ok := n.cur[id]
	n.mu.RUnlock()
	if ok {
		return v, true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if v, ok := n.cur[id]; ok {
		return v, true
	}
	v, ok = n.prev[id]
	if ok {
		n.putLocked(id, v)
	}
	return v, ok
}

func (n *numbers) put(id telegram.ID, num uint64) {
	n.mu.Lock()
	n.putLocked(id, num)
	n.mu.Unlock()
}

func (n *numbers) putLocked(id telegram.ID, num uint64) {
	if n.cur == nil || len(n.cur) >= numbersKept {
		n.prev, n.cur = n.cur, make(map[telegram.ID]uint64, 1024)
	}
	n.cur[id] = num
}

func (n *numbers) forget(id telegram.ID) {
	n.mu.Lock()
	delete(n.cur, id)
	delete(n.prev, id)
	n.mu.Unlock()
}

// number returns telegram id's filing number as txn sees it, or a
// NotExist fault if the store holds no such telegram.
func (s *Store) number(txn *badger.Txn, id telegram.ID) (uint64, error) {
	if num, ok := s.nums.get(id); ok {
		return num, nil
	}
	v, err := s.get(txn, s.ks.numberKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, fault.Errorf("store.number", fault.NotExist, "no telegram %s", id)
	}
	if err == nil && len(v) != 8 {
		err = errors.New("not 8 bytes")
	}
	if err != nil {
		return 0, fault.E("store.number", fault.Integrity, "telegram "+id.String()+": filing number unreadable", err)
	}
	num := u64(v)
	s.nums.put(id, num)
	return num, nil
}

// newNumber numbers telegram id in c's commit and records the number
// (remembered once the commit is on disk: the hand-out comes next).
func (c *commitCtx) newNumber(id telegram.ID) (uint64, error) {
	c.st.filings++
	c.numbered = append(c.numbered, filedNumber{id, c.st.filings})
	return c.st.filings, c.set(c.s.ks.numberKey(id), putU64(c.st.filings))
}

type filedNumber struct {
	id  telegram.ID
	num uint64
}
