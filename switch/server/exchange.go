package server

import (
	"sync"
	"sync/atomic"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/schedule"
	"github.com/dienbao/dienbao/switch/telegram"
)

// exchange connects the store to the sessions: it keeps scheduling state
// for every agency that has a subscribed session (and only those, so
// memory follows connected agencies, not the backlog), and wakes the
// sessions concerned when a commit queues something for their agency.
type exchange struct {
	s        *Server
	store    *store.Store
	mu       sync.Mutex
	agencies map[telegram.Address]*agencyState
	// recovered holds, per agency that subscribed in this run, a
	// *recovery: what recoverAgency found, once.
	recovered sync.Map
}

// recovery is recoverAgency's result for one agency.
type recovery struct {
	once    sync.Once
	suspect [4][4]uint64
	err     error
}

type agencyState struct {
	addr     telegram.Address
	sched    *schedule.Agency
	sessions map[*session]struct{}
	held     atomic.Bool // an operator holds every delivery to the agency
}

func newExchange(s *Server) *exchange {
	return &exchange{s: s, agencies: map[telegram.Address]*agencyState{}}
}

// attach adds a subscribed session to its agency, loading the agency's
// queue heads if it is the first. An inbox subscription is refused when
// MaxTerminals terminals of the agency already receive.
func (ex *exchange) attach(sess *session, inbox bool) (*agencyState, error) {
	a := sess.id.Agency
	suspect, err := ex.recoverAgency(a)
	if err != nil {
		return nil, err
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if st, ok := ex.agencies[a]; ok {
		if inbox && st.receivers() >= ex.s.cfg.MaxTerminals {
			return nil, fault.Errorf("subscribe", fault.Unavailable,
				"%d terminals of %s are receiving already, the most a switch serves at once; retry when one stops", ex.s.cfg.MaxTerminals, a)
		}
		st.sessions[sess] = struct{}{}
		return st, nil
	}
	heads, rhead, err := ex.store.Heads(a)
	if err != nil {
		return nil, err
	}
	held, err := ex.store.AgencyHeld(a)
	if err != nil {
		return nil, err
	}
	st := &agencyState{addr: a, sessions: map[*session]struct{}{sess: {}}}
	st.held.Store(held)
	st.sched = schedule.NewAgency(ex.loader(a), heads, rhead)
	st.sched.Recover(suspect)
	ex.agencies[a] = st
	return st, nil
}

// receivers counts the agency's sessions subscribed to the inbox.
func (st *agencyState) receivers() int {
	n := 0
	for sess := range st.sessions {
		sess.mu.Lock()
		if sess.sub.Inbox {
			n++
		}
		sess.mu.Unlock()
	}
	return n
}

// recoverAgency marks agency a as receiving (durably, once per run, before
// anything is handed out to it) and returns, after a crash, the bounds
// below which its queued entries may have gone out uncounted: the first
// schedule.Suspects entries of each sub-queue, filed before the latest
// crash, if a terminal of the agency has received (see store/handout.go).
// It runs outside ex.mu: it waits for commits, and the commit loop calls
// onCommit, which takes ex.mu. Agencies recover concurrently (their
// markers share group commits); a failed recovery is tried again by the
// next subscription.
func (ex *exchange) recoverAgency(a telegram.Address) ([4][4]uint64, error) {
	v, _ := ex.recovered.LoadOrStore(a, &recovery{})
	r := v.(*recovery)
	r.once.Do(func() { r.suspect, r.err = ex.findSuspects(a) })
	if r.err != nil {
		ex.recovered.CompareAndDelete(a, r)
	}
	return r.suspect, r.err
}

// findSuspects marks agency a as receiving and computes its bounds
// (recoverAgency).
func (ex *exchange) findSuspects(a telegram.Address) (suspect [4][4]uint64, err error) {
	was, err := ex.store.Receiving(a)
	if err != nil {
		return suspect, err
	}
	if below := ex.store.SuspectBelow(); was && below > 0 {
		heads, _, err := ex.store.Heads(a)
		if err != nil {
			return suspect, err
		}
		n := schedule.Suspects(ex.s.cfg.Window, ex.s.cfg.MaxTerminals)
		for r := range suspect {
			for c := range suspect[r] {
				q := store.SubQueue{Agency: a, Prec: telegram.PrecedenceOfRank(r), Class: telegram.Classification(c + 1)}
				entries, err := ex.store.ScanQueue(q, heads[r][c], n)
				if err != nil {
					return suspect, err
				}
				suspect[r][c] = below
				if len(entries) == n {
					suspect[r][c] = min(below, entries[n-1].Seq+1)
				}
			}
		}
	}
	return suspect, nil
}

// loader reads an agency's queues for the scheduler.
func (ex *exchange) loader(a telegram.Address) schedule.Loader {
	return func(p telegram.Precedence, c telegram.Classification, from uint64, limit int) ([]schedule.Item, error) {
		var entries []store.Entry
		var err error
		if p == 0 {
			entries, err = ex.store.ScanReceipts(a, from, limit)
		} else {
			entries, err = ex.store.ScanQueue(store.SubQueue{Agency: a, Prec: p, Class: c}, from, limit)
		}
		items := make([]schedule.Item, len(entries))
		for i, e := range entries {
			items[i] = schedule.Item{Seq: e.Seq, ID: e.ID, Receipt: e.Receipt}
		}
		return items, err
	}
}

// detach removes a session. The last one out drops the agency's state,
// unless it holds telegrams returned unacknowledged: their
// possible-duplicate marks must reach the next terminal. (Those marks do
// not survive a switch restart; the terminal's store by ID still keeps one
// copy.)
func (ex *exchange) detach(sess *session, st *agencyState) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	delete(st.sessions, sess)
	if len(st.sessions) == 0 && ex.agencies[st.addr] == st && !st.sched.HoldsReturned() {
		delete(ex.agencies, st.addr)
	}
}

// onCommit runs in the store's commit loop after each commit: it must not
// block.
func (ex *exchange) onCommit(events []store.Event) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	var woken map[*agencyState]bool
	for _, ev := range events {
		st, ok := ex.agencies[ev.Queue.Agency]
		if !ok {
			continue
		}
		if woken == nil {
			woken = map[*agencyState]bool{}
		}
		switch ev.Kind {
		case store.EvReceipt:
			st.sched.Notify(schedule.Item{Seq: ev.Seq, ID: ev.ID, Receipt: ev.Receipt})
		case store.EvReinserted:
			st.sched.Reinsert(schedule.Item{Seq: ev.Seq, ID: ev.ID, Prec: ev.Queue.Prec, Class: ev.Queue.Class})
		case store.EvAgencyHold:
			st.held.Store(ev.Seq == 1)
		default:
			st.sched.Notify(schedule.Item{Seq: ev.Seq, ID: ev.ID, Prec: ev.Queue.Prec, Class: ev.Queue.Class})
		}
		woken[st] = true
	}
	for st := range woken {
		for sess := range st.sessions {
			sess.poke()
		}
	}
}

// inFlight reports whether the entry at seq of q is handed out to a
// terminal and not yet acknowledged.
func (ex *exchange) inFlight(q store.SubQueue, seq uint64) bool {
	ex.mu.Lock()
	st := ex.agencies[q.Agency]
	ex.mu.Unlock()
	return st != nil && st.sched.InFlight(q.Prec, q.Class, seq)
}

// inflight counts, per agency and precedence, the telegrams handed out and
// not yet acknowledged, and the subscribed terminals per agency.
func (ex *exchange) inflight() (map[telegram.Address][5]int, map[telegram.Address]int) {
	ex.mu.Lock()
	var all []*session
	terminals := map[telegram.Address]int{}
	for a, st := range ex.agencies {
		for sess := range st.sessions {
			all = append(all, sess)
			terminals[a]++
		}
	}
	ex.mu.Unlock()
	out := map[telegram.Address][5]int{}
	for _, sess := range all {
		sess.mu.Lock()
		n := out[sess.id.Agency]
		for _, it := range sess.tags {
			if it.Prec != 0 {
				n[it.Prec]++
			}
		}
		out[sess.id.Agency] = n
		sess.mu.Unlock()
	}
	return out, terminals
}
