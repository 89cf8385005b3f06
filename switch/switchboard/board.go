package switchboard

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/custody"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/schedule"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
)

// Config is what the switchboard needs from the switch's configuration.
type Config struct {
	Window       int           // hand-outs in flight per terminal and precedence
	MaxTerminals int           // terminals of one agency that may receive at once
	MaxAttempts  int           // failed hand-outs before a telegram is parked
	AckTimeout   time.Duration // a written delivery unacknowledged this long ends its session
	// Expired reports whether a telegram is past its latest delivery time
	// on a clock the switch trusts (false while it does not).
	Expired func(telegram.Header) bool
	// Delivered, if set, is told of each acknowledged delivery (metrics).
	Delivered func(p telegram.Precedence, age time.Duration)
	Logger    *zap.Logger
}

// Board is the switchboard of one switch.
type Board struct {
	cfg   Config
	store *store.Store
	log   *zap.Logger

	mu       sync.Mutex
	agencies map[telegram.Address]*agency
	// recovered holds, per agency that subscribed in this run, a
	// *recovery: what recoverAgency found, once.
	recovered sync.Map
}

// agency is the scheduling state of an agency with a terminal attached
// (and only those, so memory follows connected agencies, not the
// backlog).
type agency struct {
	addr  telegram.Address
	sched *schedule.Agency
	seats map[*Seat]struct{}
	held  atomic.Bool // an operator holds every delivery to the agency
	// gate: hand-outs hold it shared; a custody action that must know
	// what is in flight holds it exclusively while its commit runs.
	gate sync.RWMutex
}

// recovery is recoverAgency's result for one agency.
type recovery struct {
	once    sync.Once
	suspect [4][4]uint64
	err     error
}

// New returns the switchboard over st. Give the store's commit events to
// OnCommit.
func New(st *store.Store, cfg Config) *Board {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Expired == nil {
		cfg.Expired = func(telegram.Header) bool { return false }
	}
	return &Board{cfg: cfg, store: st, log: cfg.Logger, agencies: map[telegram.Address]*agency{}}
}

// policy is the custody policy of the configuration.
func (b *Board) policy() custody.Policy { return custody.Policy{MaxAttempts: b.cfg.MaxAttempts} }

// Attach seats a subscribed terminal, loading its agency's queue heads if
// it is the first. An inbox subscription is refused when MaxTerminals
// terminals of the agency already receive. wake is called, without
// blocking, when something may be ready for the seat.
func (b *Board) Attach(who certs.Identity, inbox, receipts bool, wake func()) (*Seat, error) {
	a := who.Agency
	suspect, err := b.recoverAgency(a)
	if err != nil {
		return nil, err
	}
	seat := &Seat{b: b, who: who, terminal: who.String(), inbox: inbox, receipts: receipts, wake: wake,
		log:  b.log.With(zap.String("identity", who.String())),
		tags: map[uint64]schedule.Item{}, sent: map[uint64]time.Time{}}
	seat.ranks.Store(AllRanks)
	seat.window.Store(int32(b.cfg.Window))
	b.mu.Lock()
	defer b.mu.Unlock()
	if ag, ok := b.agencies[a]; ok {
		if inbox && ag.receivers() >= b.cfg.MaxTerminals {
			return nil, fault.Errorf("subscribe", fault.Unavailable,
				"%d terminals of %s are receiving already, the most a switch serves at once; retry when one stops", b.cfg.MaxTerminals, a)
		}
		ag.seats[seat] = struct{}{}
		seat.ag = ag
		return seat, nil
	}
	heads, rhead, err := b.store.Heads(a)
	if err != nil {
		return nil, err
	}
	held, err := b.store.AgencyHeld(a)
	if err != nil {
		return nil, err
	}
	ag := &agency{addr: a, seats: map[*Seat]struct{}{seat: {}}}
	ag.held.Store(held)
	ag.sched = schedule.NewAgency(b.loader(a), heads, rhead)
	ag.sched.Recover(suspect)
	b.agencies[a] = ag
	seat.ag = ag
	return seat, nil
}

// receivers counts the agency's seats subscribed to the inbox (Board.mu
// held).
func (ag *agency) receivers() int {
	n := 0
	for s := range ag.seats {
		if s.inbox {
			n++
		}
	}
	return n
}

// detach removes a seat. The last one out drops the agency's state,
// unless it holds telegrams returned unacknowledged: their
// possible-duplicate marks must reach the next terminal. (Those marks do
// not survive a switch restart; the terminal's store by ID still keeps one
// copy.) The agency's other seats are woken: they may take what came back.
func (b *Board) detach(seat *Seat) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ag := seat.ag
	delete(ag.seats, seat)
	if len(ag.seats) == 0 && b.agencies[ag.addr] == ag && !ag.sched.HoldsReturned() {
		delete(b.agencies, ag.addr)
	}
	for other := range ag.seats {
		other.wake()
	}
}

// recoverAgency marks agency a as receiving (durably, once per run, before
// anything is handed out to it) and returns, after a crash, the bounds
// below which its queued entries may have gone out uncounted: the first
// schedule.Suspects entries of each sub-queue, filed before the latest
// crash, if a terminal of the agency has received (see store/handout.go).
// It runs outside b.mu: it waits for commits, and the commit loop calls
// OnCommit, which takes b.mu. Agencies recover concurrently (their markers
// share group commits); a failed recovery is tried again by the next
// subscription.
func (b *Board) recoverAgency(a telegram.Address) ([4][4]uint64, error) {
	v, _ := b.recovered.LoadOrStore(a, &recovery{})
	r := v.(*recovery)
	r.once.Do(func() { r.suspect, r.err = b.findSuspects(a) })
	if r.err != nil {
		b.recovered.CompareAndDelete(a, r)
	}
	return r.suspect, r.err
}

// findSuspects marks agency a as receiving and computes its bounds
// (recoverAgency).
func (b *Board) findSuspects(a telegram.Address) (suspect [4][4]uint64, err error) {
	was, err := b.store.Receiving(a)
	if err != nil {
		return suspect, err
	}
	if below := b.store.SuspectBelow(); was && below > 0 {
		heads, _, err := b.store.Heads(a)
		if err != nil {
			return suspect, err
		}
		n := schedule.Suspects(b.cfg.Window, b.cfg.MaxTerminals)
		for r := range suspect {
			for c := range suspect[r] {
				q := store.SubQueue{Agency: a, Prec: telegram.PrecedenceOfRank(r), Class: telegram.Classification(c + 1)}
				entries, err := b.store.ScanQueue(q, heads[r][c], n)
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
	if below := b.store.RestoredBelow(); below > 0 {
		// Restored from a backup: anything queued then may have been
		// delivered after it (store/restore.go).
		for r := range suspect {
			for c := range suspect[r] {
				suspect[r][c] = max(suspect[r][c], below)
			}
		}
	}
	return suspect, nil
}

// loader reads an agency's queues for the scheduler.
func (b *Board) loader(a telegram.Address) schedule.Loader {
	return func(p telegram.Precedence, c telegram.Classification, from uint64, limit int) ([]schedule.Item, error) {
		var entries []store.Entry
		var err error
		if p == 0 {
			entries, err = b.store.ScanReceipts(a, from, limit)
		} else {
			entries, err = b.store.ScanQueue(store.SubQueue{Agency: a, Prec: p, Class: c}, from, limit)
		}
		items := make([]schedule.Item, len(entries))
		for i, e := range entries {
			items[i] = schedule.Item{Seq: e.Seq, ID: e.ID, Receipt: e.Receipt}
		}
		return items, err
	}
}

// OnCommit runs in the store's commit loop after each commit: it tells
// the schedulers what was queued, put back or reported, and wakes the
// seats concerned. It must not block.
func (b *Board) OnCommit(events []store.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var woken map[*agency]bool
	for _, ev := range events {
		ag, ok := b.agencies[ev.Queue.Agency]
		if !ok {
			continue
		}
		if woken == nil {
			woken = map[*agency]bool{}
		}
		switch ev.Kind {
		case store.EvReceipt:
			ag.sched.Notify(schedule.Item{Seq: ev.Seq, ID: ev.ID, Receipt: ev.Receipt})
		case store.EvReinserted:
			ag.sched.Reinsert(schedule.Item{Seq: ev.Seq, ID: ev.ID, Prec: ev.Queue.Prec, Class: ev.Queue.Class})
		case store.EvAgencyHold:
			ag.held.Store(ev.Seq == 1)
		default:
			ag.sched.Notify(schedule.Item{Seq: ev.Seq, ID: ev.ID, Prec: ev.Queue.Prec, Class: ev.Queue.Class})
		}
		woken[ag] = true
	}
	for ag := range woken {
		for s := range ag.seats {
			s.wake()
		}
	}
}

// InFlight reports whether the entry at seq of q is handed out to a
// terminal and not yet acknowledged.
func (b *Board) InFlight(q store.SubQueue, seq uint64) bool {
	b.mu.Lock()
	ag := b.agencies[q.Agency]
	b.mu.Unlock()
	return ag != nil && ag.sched.InFlight(q.Prec, q.Class, seq)
}

// Load is what is in flight, per agency and precedence, and how many
// terminals of each agency are attached.
func (b *Board) Load() (inflight map[telegram.Address][5]int, terminals map[telegram.Address]int) {
	b.mu.Lock()
	var all []*Seat
	terminals = map[telegram.Address]int{}
	for a, ag := range b.agencies {
		for s := range ag.seats {
			all = append(all, s)
			terminals[a]++
		}
	}
	b.mu.Unlock()
	inflight = map[telegram.Address][5]int{}
	for _, s := range all {
		s.mu.Lock()
		n := inflight[s.who.Agency]
		for _, it := range s.tags {
			if it.Prec != 0 {
				n[it.Prec]++
			}
		}
		inflight[s.who.Agency] = n
		s.mu.Unlock()
	}
	return inflight, terminals
}
