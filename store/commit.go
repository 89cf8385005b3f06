package store

import (
	"errors"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/failpoint"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
)

// An op is one unit of work for the commit loop. apply must do all its
// reads and checks before its first write, so that a logical refusal
// leaves nothing in the shared transaction; the only error it may return
// after writing is one from Badger (the whole transaction is then retried
// or failed).
type op struct {
	prec telegram.Precedence // answers go out most urgent first
	// lazy: the op need not start a commit of its own (a delivery
	// attempt, an acknowledgement): it rides the next commit made for
	// something else, or goes after lazyWait. Its caller still waits for
	// that commit. Lazy work is applied before new filings.
	lazy  bool
	at    time.Time // when it was submitted (filings: for the queue delay)
	apply func(c *commitCtx) error
	err   error
	done  chan struct{}
}

// commitCtx is what an op sees while it is applied.
type commitCtx struct {
	s      *Store
	txn    wtxn // records its writes on a node of a group (replica.go)
	st     *state
	events *[]Event
	now    int64
	counts map[SubQueue]*Counts // changes to the operators' figures
	// After the commit: the figures it wrote (counts.go) and the filing
	// numbers it gave (number.go), remembered once it is on disk.
	wrote    map[SubQueue]Counts
	numbered []filedNumber
	remotes  []telegram.Address // agencies this commit added to the register of those served elsewhere (remote.go)
}

// EventKind says what an Event announces.
type EventKind uint8

// Event kinds.
const (
	EvQueued  EventKind = 1 // a telegram entered an agency's queue
	EvReceipt EventKind = 2 // a delivery report is waiting for an agency
	// EvReinserted: an operator put an entry back in a queue at its old
	// sequence (released, requeued): a scheduler past it must take it back.
	EvReinserted EventKind = 3
	// EvAgencyHold: deliveries to Queue.Agency were held (Seq 1) or
	// released (Seq 0).
	EvAgencyHold EventKind = 4
)

// Event tells the switch what a commit made durable, so that it can wake
// the sessions concerned.
type Event struct {
	Kind  EventKind
	Queue SubQueue // EvQueued: the sub-queue; EvReceipt: Queue.Agency
	Seq   uint64
	ID    telegram.ID
	// Receipt is the delivery report queued (EvReceipt).
	Receipt telegram.Receipt
}

// submit hands o to the commit loop and waits for its commit.
func (s *Store) submit(o *op) error {
	s.submitAsync(o)
	<-o.done
	return o.err
}

// submitAsync hands o to the commit loop without waiting; o.done is
// closed when it is committed or failed. If the store is closing, o fails
// at once.
func (s *Store) submitAsync(o *op) {
	o.done = make(chan struct{})
	if !o.lazy && o.prec != telegram.Flash {
		o.at = time.Now()
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.shut {
		o.err = fault.E("store", fault.Unavailable, "the switch is shutting down")
		close(o.done)
		return
	}
	switch {
	case o.prec == telegram.Flash:
		s.urgent <- o
	case o.lazy:
		s.lazy <- o
	default:
		s.ops <- o
	}
}

// loop is the commit loop. It takes work from three lanes.
//
// FLASH work (filings, acknowledgements, timers, operator actions) never
// waits for a batch of other work to be applied: a commit that carries
// FLASH work carries only what was applied before it arrived, and when a
// FLASH arrives while a batch is being applied, it takes the place of the
// rest of that batch (which goes into the next commit). So a FLASH waits
// for at most the one commit already syncing.
//
// Lazy work (delivery attempts, routine acknowledgements) does not start a
// commit: it rides the next one, or goes after lazyWait with nothing else.
// At low load one fsync then serves a filing and the previous telegram's
// acknowledgements; under load, acknowledgements go ahead of new filings,
// so deliveries are settled, and their window slots freed, first.
//
// Other work (filings and the rest) is taken at most MaxFilings per
// commit, and a commit holds at most MaxBatch operations.
func (s *Store) loop() {
	defer close(s.done)
	batch := make([]*op, 0, s.opts.MaxBatch)
	var carry []*op // applied in the next commit, before anything newer
	var held []*op  // lazy work taken out while waiting
	urgent, lazy, normal := s.urgent, s.lazy, s.ops
	for urgent != nil || lazy != nil || normal != nil || len(carry) > 0 || len(held) > 0 {
		batch = append(batch[:0], carry...)
		carry = nil
		var first *op
		if len(batch) == 0 {
			first, held = receive(&urgent, &lazy, &normal, held)
			if first == nil && len(held) == 0 {
				continue // a lane closed
			}
		}
		if first != nil && first.prec == telegram.Flash {
			batch = append(batch, first)
			batch = drainInto(batch, urgent, s.opts.MaxBatch)
		} else {
			// Lazy work first: an attempt goes before the acknowledgement
			// that settles it, both before new filings.
			batch = append(batch, held...)
			held = held[:0]
			batch = drainInto(batch, lazy, s.opts.MaxBatch-1)
			if first != nil {
				batch = append(batch, first)
			}
			filings := 0
			for _, o := range batch {
				if !o.lazy {
					filings++
				}
			}
			batch = drainInto(batch, normal, min(s.opts.MaxBatch, len(batch)+s.opts.MaxFilings-filings))
			s.noteDelay(batch)
		}
		done, rest := s.commit(batch, urgent)
		carry = append(carry, rest...)
		if h := s.hooks.Load(); h.onBatch != nil {
			h.onBatch(len(done))
		}
		sort.SliceStable(done, func(i, j int) bool { return done[i].prec > done[j].prec })
		for _, o := range done {
			close(o.done)
		}
	}
}

// commit applies batch in one transaction and returns the ops it settled
// (committed or failed) and those it did not apply. If urgent is not nil
// and FLASH work waits there when an op of batch is about to be applied,
// that work is applied in its place and the rest of batch is returned.
// If the transaction grows too big, it is discarded and the batch split;
// an op too big on its own fails.
func (s *Store) commit(batch []*op, urgent chan *op) (done, rest []*op) {
	if len(batch) == 0 {
		return nil, nil
	}
	if s.alog.IsStale() {
		if err := s.reloadTree(); err != nil {
			s.log.Error("cannot reload the audit tree", zap.Error(err))
			for _, o := range batch {
				o.err = err
			}
			return batch, nil
		}
	}
	if s.fenced {
		for _, o := range batch {
			o.err = ErrFenced
		}
		return batch, nil
	}
	failpoint.Hit("before-write")
	st := s.st
	var events []Event
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	st.at = max(st.at, s.opts.Now().UnixNano())
	var rec *writes
	if s.opts.Replicate != nil {
		rec = &writes{}
	}
	c := &commitCtx{s: s, txn: wtxn{txn, rec}, st: &st, events: &events, now: st.at}
	for i := 0; i < len(batch); i++ {
		if urgent != nil && rest == nil && batch[i].prec != telegram.Flash && len(urgent) > 0 {
			if flash := drainInto(nil, urgent, s.opts.MaxBatch); len(flash) > 0 {
				rest = append([]*op(nil), batch[i:]...)
				batch = append(batch[:i], flash...)
			}
		}
		o := batch[i]
		err := o.apply(c)
		if errors.Is(err, badger.ErrTxnTooBig) {
			txn.Discard()
			s.alog.Stale()
			s.splits.Add(1)
			if i == 0 {
				o.err = fault.E("store.commit", fault.TooLarge, "the request is too large to commit in one transaction")
				d, _ := s.commit(batch[1:], nil)
				return append([]*op{o}, d...), rest
			}
			d1, _ := s.commit(batch[:i], nil)
			d2, _ := s.commit(batch[i:], nil)
			return append(d1, d2...), rest
		}
		o.err = err
	}
	err := c.flushCounts()
	if err == nil {
		err = s.alog.Flush(c.audit())
	}
	if err == nil {
		err = s.putCounters(c.txn, &st)
	}
	if errors.Is(err, badger.ErrTxnTooBig) && len(batch) > 1 {
		// The counters did not fit after the batch: commit it in halves.
		txn.Discard()
		s.alog.Stale()
		s.splits.Add(1)
		d1, _ := s.commit(batch[:len(batch)/2], nil)
		d2, _ := s.commit(batch[len(batch)/2:], nil)
		return append(d1, d2...), rest
	}
	if err == nil {
		failpoint.Hit("before-commit")
		if rec != nil {
			err = s.replicate(rec)
			txn.Discard()
		} else {
			s.writes.RLock()
			err = txn.Commit()
			s.writes.RUnlock()
		}
		if err == nil {
			failpoint.Hit("after-commit")
			s.st = st
			c.committed()
			if h := s.hooks.Load(); h.onCommit != nil && len(events) > 0 {
				h.onCommit(events)
			}
			return batch, rest
		}
	}
	s.alog.Stale()
	s.lostWrites = true
	s.log.Error("commit failed", zap.Error(err), zap.Int("ops", len(batch)))
	for _, o := range batch {
		if o.err == nil && s.fenced {
			o.err = err
		} else if o.err == nil {
			o.err = fault.E("store.commit", fault.Internal, "the store could not commit; nothing was stored")
		}
	}
	return batch, rest
}

func (s *Store) putCounters(txn wtxn, st *state) error {
	if st.qseq != s.st.qseq {
		if err := txn.Set(metaKey("qseq"), s.sealValue(metaKey("qseq"), putU64(st.qseq))); err != nil {
			return err
		}
	}
	if st.filings != s.st.filings {
		if err := txn.Set(metaKey("filings"), s.sealValue(metaKey("filings"), putU64(st.filings))); err != nil {
			return err
		}
	}
	if st.rseq != s.st.rseq {
		if err := txn.Set(metaKey("rseq"), s.sealValue(metaKey("rseq"), putU64(st.rseq))); err != nil {
			return err
		}
	}
	if st.aseq != s.st.aseq {
		return txn.Set(metaKey("aseq"), s.sealValue(metaKey("aseq"), putU64(st.aseq)))
	}
	return nil
}

// reloadTree rebuilds the audit tree from the store after a failed commit.
func (s *Store) reloadTree() error {
	return s.db.View(func(txn *badger.Txn) error { return s.alog.Reload(auditTxn{s, wtxn{Txn: txn}}, s.st.aseq) })
}

// receive waits for work to start the next commit with: it returns the
// first op of the FLASH lane (taken first) or of the normal lane, with the
// lazy work taken out meanwhile (held); or, when lazy work has waited
// lazyWait with nothing else coming, no op and the lazy work. A lane found
// closed is set to nil; once the FLASH and normal lanes are closed, lazy
// work goes at once.
func receive(urgent, lazy, normal *chan *op, held []*op) (*op, []*op) {
	if *urgent != nil {
		select {
		case o, ok := <-*urgent:
			if !ok {
				*urgent = nil
			}
			return o, held
		default:
		}
	}
	var timeout <-chan time.Time
	arm := func() {
		if timeout == nil {
			t := time.NewTimer(lazyWait)
			timeout = t.C
		}
	}
	if len(held) > 0 || len(*lazy) > 0 {
		arm()
	}
	for {
		if *urgent == nil && *normal == nil {
			if *lazy == nil {
				return nil, held
			}
			o, ok := <-*lazy
			if !ok {
				*lazy = nil
				return nil, held
			}
			return nil, append(held, o)
		}
		select {
		case o, ok := <-*urgent:
			if !ok {
				*urgent = nil
				continue
			}
			return o, held
		case o, ok := <-*normal:
			if !ok {
				*normal = nil
				continue
			}
			return o, held
		case o, ok := <-*lazy:
			if !ok {
				*lazy = nil
				continue
			}
			held = append(held, o)
			arm()
		case <-timeout:
			return nil, held
		}
	}
}

// lazyWait is how long lazy work waits for a commit to ride.
const lazyWait = 2 * time.Millisecond

// drainInto appends what is waiting in ch, without blocking, up to max.
func drainInto(batch []*op, ch chan *op, max int) []*op {
	for ch != nil && len(batch) < max {
		select {
		case o, ok := <-ch:
			if !ok {
				return batch
			}
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// noteDelay records how long the oldest filing of batch waited to be
// taken: how far the commit loop is behind.
func (s *Store) noteDelay(batch []*op) {
	now := time.Now()
	var worst time.Duration
	for _, o := range batch {
		if !o.at.IsZero() {
			worst = max(worst, now.Sub(o.at))
		}
	}
	if worst > 0 {
		s.delaySum.Add(int64(worst))
		s.delayN.Add(1)
	}
}

// QueueDelay returns, averaged over the commits since the last call, how
// long the oldest filing (other than a FLASH) of each waited for the
// commit loop to take it: the switch's measure of its own saturation
// (admission control). Zero when nothing was filed.
func (s *Store) QueueDelay() time.Duration {
	n := s.delayN.Swap(0)
	sum := s.delaySum.Swap(0)
	if n == 0 {
		return 0
	}
	return time.Duration(sum / n)
}
