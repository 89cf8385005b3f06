package store

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Counts are one sub-queue's figures for operators. They are kept exact:
// each commit that adds or removes an entry adjusts them in the same
// transaction, so they need no scan, at start or ever.
type Counts struct {
	Waiting int64 // in the queue (including entries handed out, not yet acknowledged)
	Overdue int64 // of those, past their speed-of-service target
	Held    int64 // taken out of the queue by an operator until released
	Parked  int64 // out of delivery attempts, waiting for an operator
	// Deferred: filed for delivery at a later time, not yet queued.
	Deferred int64
}

func (n *Counts) add(d Counts) {
	n.Waiting += d.Waiting
	n.Overdue += d.Overdue
	n.Held += d.Held
	n.Parked += d.Parked
	n.Deferred += d.Deferred
}

func (n Counts) zero() bool { return n == Counts{} }

// encode writes the figures as big-endian int64s: 32 bytes, or 40 when
// any telegram was ever deferred in the sub-queue (a store written before
// deferral reads as 32).
func (n Counts) encode() []byte {
	vs := []int64{n.Waiting, n.Overdue, n.Held, n.Parked}
	if n.Deferred != 0 {
		vs = append(vs, n.Deferred)
	}
	b := make([]byte, 0, 8*len(vs))
	for _, v := range vs {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	return b
}

func decodeCounts(b []byte) Counts {
	if len(b) != 32 && len(b) != 40 {
		return Counts{}
	}
	v := func(i int) int64 {
		if 8*i >= len(b) {
			return 0
		}
		return int64(binary.BigEndian.Uint64(b[8*i:]))
	}
	return Counts{Waiting: v(0), Overdue: v(1), Held: v(2), Parked: v(3), Deferred: v(4)}
}

// count records a change to q's figures in this commit.
func (c *commitCtx) count(q SubQueue, d Counts) {
	if c.counts == nil {
		c.counts = map[SubQueue]*Counts{}
	}
	n, ok := c.counts[q]
	if !ok {
		n = &Counts{}
		c.counts[q] = n
	}
	n.add(d)
}

// flushCounts writes the figures this commit changed. The commit loop is
// their only writer, so it remembers what it wrote (Store.figures, kept
// once a commit is on disk) rather than read them back at every commit.
func (c *commitCtx) flushCounts() error {
	for q, d := range c.counts {
		if d.zero() {
			continue
		}
		k := c.s.ks.countsKey(q)
		n, ok := c.s.figures[q]
		if !ok {
			v, err := c.s.get(c.txn.Txn, k)
			if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
				return err
			}
			n = decodeCounts(v)
		}
		n.add(*d)
		if err := c.set(k, n.encode()); err != nil {
			return err
		}
		if c.wrote == nil {
			c.wrote = map[SubQueue]Counts{}
		}
		c.wrote[q] = n
	}
	return nil
}

// committed keeps what c wrote once it is on disk (commit loop only).
func (c *commitCtx) committed() {
	if c.s.figures == nil {
		c.s.figures = map[SubQueue]Counts{}
	}
	for q, n := range c.wrote {
		c.s.figures[q] = n
	}
	for _, f := range c.numbered {
		c.s.nums.put(f.id, f.num)
	}
	c.s.registered(c.remotes)
}

// QueueStat is one sub-queue's figures and the age of its oldest entry.
type QueueStat struct {
	Queue SubQueue
	Counts
	Head   uint64    // the persisted head: where the first entry waiting is
	Oldest time.Time // filing time of the first entry waiting; zero if none
}

// AgencyStats are an agency's figures, from one snapshot.
type AgencyStats struct {
	Held   bool        // every delivery to the agency is held
	Queues []QueueStat // the sub-queues that hold anything
}

// QueueStats returns the figures of every sub-queue of agency that holds
// anything, and whether the agency is held, in one snapshot. The oldest
// entry is found with one seek from the sub-queue's persisted head.
func (s *Store) QueueStats(agency telegram.Address) (AgencyStats, error) {
	var out AgencyStats
	err := s.view(func(txn *badger.Txn) error {
		var err error
		if out.Held, err = s.agencyHeld(txn, agency); err != nil {
			return err
		}
		for r := 0; r < 4; r++ {
			for c := telegram.Unclassified; c <= telegram.TopSecret; c++ {
				q := SubQueue{Agency: agency, Prec: telegram.PrecedenceOfRank(r), Class: c}
				v, err := s.get(txn, s.ks.countsKey(q))
				if errors.Is(err, badger.ErrKeyNotFound) {
					continue
				}
				if err != nil {
					return fault.E("store.stats", fault.Integrity, "unreadable queue figures", err)
				}
				st := QueueStat{Queue: q, Counts: decodeCounts(v)}
				if st.Counts.zero() {
					continue
				}
				if st.Waiting > 0 {
					if st.Head, err = s.getU64(txn, s.ks.queueHeadKey(q)); err != nil {
						return err
					}
					prefix := s.ks.queuePrefix(q)
					it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
					if it.Seek(s.ks.queueKey(q, st.Head)); it.Valid() {
						if v, err := s.value(it.Item()); err == nil && len(v) == 16 {
							var id telegram.ID
							copy(id[:], v)
							st.Oldest = id.Time()
						}
					}
					it.Close()
				}
				out.Queues = append(out.Queues, st)
			}
		}
		return nil
	})
	return out, err
}
