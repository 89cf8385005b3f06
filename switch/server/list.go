package server

import (
	"bytes"
	"slices"
	"sort"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// tg list: the telegrams in custody, one row per addressee copy, as
// Postfix's mailq lists its queue. Rows carry header fields only. The
// switch reads the queues' entries (whose IDs carry the filing time) and
// the agencies' held, parked and deferred lists, keeps the page in the
// order asked, and reads the headers of the page's rows alone (of every
// candidate only when the sender is a filter).

func (sess *session) handleList(str *quic.Stream, payload []byte) {
	var req wire.ListRequest
	if err := wire.Decode(wire.TList, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	if req.Agency != "" {
		if err := scopeAgencies(sess.id, "list", req.Agency); err != nil {
			sess.deny(str, err)
			return
		}
	}
	l, err := sess.s.list(req, sess.id.Clearance, sess.id.InScope)
	if err != nil {
		if !fault.Is(fault.NotExist, err) {
			sess.log.Error("cannot list the queues", zap.Error(err))
		}
		sess.replyError(str, err)
		return
	}
	wire.WriteFrame(str, wire.TListed, l)
}

// listing gathers one page.
type listing struct {
	req       wire.ListRequest
	now       time.Time
	clearance telegram.Classification
	out       wire.List
	more      bool // rows were cut past the page
	scanned   int
	unlisted  bool // the agency being read is not in the directory
}

// cmp orders rows as asked: by ID (filing time first), then addressee.
func (l *listing) cmp(a, b wire.ListCursor) int {
	c := bytes.Compare(a.ID[:], b.ID[:])
	if c == 0 {
		c = bytes.Compare([]byte(a.Addressee), []byte(b.Addressee))
	}
	if l.req.Newest {
		return -c
	}
	return c
}

func cursorOf(r wire.ListRow) wire.ListCursor {
	return wire.ListCursor{ID: r.ID, Addressee: r.Addressee}
}

// add keeps r if it comes after the cursor; past twice the page, the
// rows are sorted and cut to the page.
func (l *listing) add(r wire.ListRow) {
	if !l.req.After.IsZero() && l.cmp(cursorOf(r), l.req.After) <= 0 {
		return
	}
	r.Unlisted = l.unlisted
	l.out.Rows = append(l.out.Rows, r)
	if len(l.out.Rows) >= 2*l.req.Limit+64 {
		l.trim()
	}
}

func (l *listing) trim() {
	sort.Slice(l.out.Rows, func(i, j int) bool { return l.cmp(cursorOf(l.out.Rows[i]), cursorOf(l.out.Rows[j])) < 0 })
	if len(l.out.Rows) > l.req.Limit {
		l.out.Rows = l.out.Rows[:l.req.Limit]
		l.more = true
	}
}

// wants says whether a copy in state, overdue or not, is asked for.
func (l *listing) wants(state string, overdue bool) bool {
	switch l.req.State {
	case "":
		return true
	case "overdue":
		return overdue
	}
	return l.req.State == state
}

// matches applies the filters a sub-queue decides.
func (l *listing) matches(prec telegram.Precedence, class telegram.Classification) bool {
	return (l.req.Precedence == 0 || prec == l.req.Precedence) && (l.req.Class == 0 || class == l.req.Class)
}

// header fills r's header fields; false when the telegram is gone (settled
// since it was listed) or another filter leaves it out.
func (l *listing) header(s *Server, r *wire.ListRow) (bool, error) {
	h, err := s.store.Header(r.ID)
	if fault.Is(fault.NotExist, err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r.From, r.BodyLen, r.Sealed = h.From, h.BodyLen, h.Sealed
	r.Precedence, r.Classification = h.Precedence, h.Classification
	return l.req.From == "" || h.From == l.req.From, nil
}

// list answers a ListRequest for an operator cleared to clearance, whose
// scope has the agencies in says.
func (s *Server) list(req wire.ListRequest, clearance telegram.Classification, in func(telegram.Address) bool) (wire.List, error) {
	if req.Limit == 0 {
		req.Limit = wire.DefaultList
	}
	l := &listing{req: req, now: s.clock.Now(), clearance: clearance}
	agencies, unlisted := s.operatorAgencies()
	if req.Agency != "" {
		i := slices.IndexFunc(agencies, func(ag directory.Agency) bool { return ag.Address == req.Agency })
		if i < 0 {
			return l.out, fault.Errorf("operator", fault.NotExist, "unknown agency %s: not in the agency directory, and nothing waits for it", req.Agency)
		}
		agencies = agencies[i : i+1]
	}
	for _, ag := range agencies {
		if !in(ag.Address) {
			continue
		}
		if l.scanned >= wire.MaxListScan {
			l.out.Truncated = true
			break
		}
		l.unlisted = unlisted[ag.Address]
		if err := s.listAgency(l, ag.Address); err != nil {
			return l.out, err
		}
	}
	l.trim()
	if l.more {
		l.out.Next = cursorOf(l.out.Rows[len(l.out.Rows)-1])
	}
	// The page's headers, unless the sender filter read them already; a
	// telegram settled (and purged) since it was read leaves the page.
	if req.From == "" {
		kept := l.out.Rows[:0]
		for _, r := range l.out.Rows {
			ok, err := l.header(s, &r)
			if err != nil {
				return l.out, err
			}
			if ok {
				kept = append(kept, r)
			}
		}
		l.out.Rows = kept
	}
	if l.out.Rows == nil {
		l.out.Rows = []wire.ListRow{}
	}
	return l.out, nil
}

// listAgency adds agency a's copies: its queues' entries, then its held,
// parked and deferred lists.
func (s *Server) listAgency(l *listing, a telegram.Address) error {
	stats, err := s.store.QueueStats(a)
	if err != nil {
		return err
	}
	var held, parked, deferred int64
	for _, st := range stats.Queues {
		held, parked, deferred = held+st.Held, parked+st.Parked, deferred+st.Deferred
		if st.Waiting == 0 || !l.matches(st.Queue.Prec, st.Queue.Class) {
			continue
		}
		if err := s.listQueue(l, st, stats.Held); err != nil {
			return err
		}
	}
	for _, list := range []struct {
		which store.AgencyList
		state string
		n     int64
	}{{store.ListHeld, "held", held}, {store.ListParked, "parked", parked}, {store.ListDeferred, "deferred", deferred}} {
		if list.n == 0 || !l.wants(list.state, false) {
			continue
		}
		entries, err := s.store.Listed(list.which, a, wire.MaxListScan-l.scanned)
		if err != nil {
			return err
		}
		l.scanned += len(entries)
		for _, e := range entries {
			r := wire.ListRow{ID: e.ID, FiledAt: e.ID.Time(), AgeSeconds: l.now.Sub(e.ID.Time()).Seconds(), Addressee: a, State: list.state, AgencyHeld: stats.Held}
			ok, err := l.header(s, &r)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			switch {
			case !l.matches(r.Precedence, r.Classification), time.Duration(r.AgeSeconds*float64(time.Second)) < l.req.OlderThan:
			case r.Classification > l.clearance:
				l.out.Withheld++
			default:
				l.add(r)
			}
		}
	}
	return nil
}

// listQueue adds the entries of one sub-queue: waiting, in flight, or
// held with their agency; overdue past the precedence's target.
func (s *Server) listQueue(l *listing, st store.QueueStat, agencyHeld bool) error {
	target := s.cfg.SpeedTargets[st.Queue.Prec]
	cut, err := s.eachQueued(st, &l.scanned, wire.MaxListScan, func(e store.Entry) error {
		age := l.now.Sub(e.ID.Time())
		if age < l.req.OlderThan {
			return nil
		}
		state := "waiting"
		switch {
		case s.board.InFlight(st.Queue, e.Seq):
			state = "in_flight"
		case agencyHeld:
			state = "held"
		}
		overdue := age >= target
		if !l.wants(state, overdue) {
			return nil
		}
		r := wire.ListRow{ID: e.ID, FiledAt: e.ID.Time(), AgeSeconds: age.Seconds(), Addressee: st.Queue.Agency,
			Precedence: st.Queue.Prec, Classification: st.Queue.Class, State: state, Overdue: overdue, AgencyHeld: agencyHeld}
		if l.req.From != "" {
			ok, err := l.header(s, &r)
			if err != nil || !ok {
				return err
			}
		}
		if st.Queue.Class > l.clearance {
			l.out.Withheld++ // counted with every filter applied, never listed
			return nil
		}
		l.add(r)
		return nil
	})
	l.out.Truncated = l.out.Truncated || cut
	return err
}
