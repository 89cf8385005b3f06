package server

import (
	"sort"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// Operators watch queues and sessions and act on telegrams; they never see
// a subject or a body. Every action is audited with the operator's
// identity, by the store, in the commit that makes it.

func (sess *session) handleQueues(str *quic.Stream, payload []byte) {
	var req wire.QueuesRequest
	if err := wire.Decode(wire.TQueues, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	q, err := sess.s.queues(req.Overdue, sess.id.Clearance, req.Ages, sess.id.InScope)
	if err != nil {
		sess.log.Error("cannot read the queues", zap.Error(err))
		sess.replyError(str, err)
		return
	}
	q.Notices = sess.s.openNotices(sess.id)
	wire.WriteFrame(str, wire.TQueuesReply, q)
}

// queues gathers the figures of every agency in the directory (those in
// in, if given), per precedence, and up to overdueN overdue telegrams
// classified up to clearance, oldest first; with ages, each row's age
// histogram.
func (s *Server) queues(overdueN int, clearance telegram.Classification, ages bool, in func(telegram.Address) bool) (wire.Queues, error) {
	now := s.clock.Now()
	scanned := 0 // queue entries read for the age histograms
	out := wire.Queues{Totals: s.stats.totals(now), Minimize: s.minimize.Load().In}
	if a := s.admission.current(); a.Level > 0 {
		out.Admission = a.String()
	}
	inflight, terminals := s.board.Load()
	agencies, unlisted := s.operatorAgencies()
	for _, ag := range agencies {
		a := ag.Address
		if in != nil && !in(a) {
			continue
		}
		stats, err := s.store.QueueStats(a)
		if err != nil {
			return out, err
		}
		held := stats.Held
		var rows [5]*wire.QueueRow
		row := func(p telegram.Precedence) *wire.QueueRow {
			if rows[p] == nil {
				rows[p] = &wire.QueueRow{Agency: a, Tier: ag.LevelOf(), Precedence: p, AgencyHeld: held, Connected: terminals[a],
					Unlisted: unlisted[a], MovedTo: ag.MovedTo, Drain: ag.Drain}
			}
			return rows[p]
		}
		for _, st := range stats.Queues {
			r := row(st.Queue.Prec)
			r.Waiting += st.Waiting
			r.Parked += st.Parked
			r.Held += st.Held
			r.Deferred += st.Deferred
			r.Overdue += st.Overdue
			if !st.Oldest.IsZero() {
				r.OldestAgeSeconds = max(r.OldestAgeSeconds, now.Sub(st.Oldest).Seconds())
			}
			if held {
				r.Held += st.Waiting
			}
			if st.Overdue > 0 && overdueN > 0 && st.Queue.Class <= clearance {
				out.Overdue = append(out.Overdue, s.overdueOf(st, now, overdueN)...)
			}
			if ages && st.Queue.Class <= clearance {
				if r.Ages == nil {
					r.Ages = make([]int64, len(wire.AgeBuckets)+1)
				}
				if err := s.ageOf(st, now, r.Ages, &scanned); err != nil {
					return out, err
				}
			}
		}
		for p := telegram.Routine; p <= telegram.Flash; p++ {
			if n := inflight[a][p]; n > 0 {
				row(p).InFlight = int64(n)
			}
		}
		for p := telegram.Flash; p >= telegram.Routine; p-- {
			if rows[p] != nil {
				if ages && rows[p].Ages == nil {
					rows[p].Ages = make([]int64, len(wire.AgeBuckets)+1)
				}
				out.Rows = append(out.Rows, *rows[p])
			}
		}
	}
	out.AgesTruncated = scanned >= maxAgeScan
	sort.Slice(out.Overdue, func(i, j int) bool { return out.Overdue[i].AgeSeconds > out.Overdue[j].AgeSeconds })
	if len(out.Overdue) > overdueN {
		out.Overdue = out.Overdue[:overdueN]
	}
	return out, nil
}

// overdueOf lists the overdue telegrams at the front of one sub-queue
// (filing order is queue order, so they are its first entries).
func (s *Server) overdueOf(st store.QueueStat, now time.Time, limit int) []wire.OverdueRow {
	entries, err := s.store.ScanQueue(st.Queue, st.Head, limit)
	if err != nil {
		return nil
	}
	target := s.cfg.SpeedTargets[st.Queue.Prec]
	var out []wire.OverdueRow
	for _, e := range entries {
		age := now.Sub(e.ID.Time())
		if age < target {
			break
		}
		out = append(out, wire.OverdueRow{ID: e.ID, Agency: st.Queue.Agency, Precedence: st.Queue.Prec, AgeSeconds: age.Seconds()})
	}
	return out
}

func (sess *session) handleSessions(str *quic.Stream, payload []byte) {
	var req wire.SessionsRequest
	if err := wire.Decode(wire.TSessions, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	list := sess.s.sessionList()
	if sess.id.Scoped() { // only terminals of agencies in scope
		kept := list[:0]
		for _, si := range list {
			if si.Agency != "" && sess.id.InScope(si.Agency) {
				kept = append(kept, si)
			}
		}
		list = kept
	}
	wire.WriteFrame(str, wire.TSessionList, wire.Sessions{Sessions: list})
}

// sessionList describes the connected sessions, oldest first.
func (s *Server) sessionList() []wire.SessionInfo {
	s.mu.Lock()
	list := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		list = append(list, sess)
	}
	s.mu.Unlock()
	out := make([]wire.SessionInfo, 0, len(list))
	for _, sess := range list {
		sess.mu.Lock()
		info := wire.SessionInfo{Agency: sess.id.Agency, Terminal: sess.id.String(), Role: string(sess.id.Role),
			Since: sess.since, Remote: sess.remote, Inbox: sess.subscribed, KeyExchange: sess.group}
		seat := sess.seat
		sess.mu.Unlock()
		if seat != nil {
			info.InFlight = seat.InFlight()
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Since.Before(out[j].Since) })
	return out
}

func (sess *session) handleShow(str *quic.Stream, payload []byte) {
	var req wire.ShowRequest
	if err := wire.Decode(wire.TShow, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	h, states, err := sess.s.store.Deliveries(req.ID)
	if err != nil {
		sess.replyError(str, err)
		return
	}
	if err := mayHandle(sess.id, h); err != nil {
		sess.deny(str, err)
		return
	}
	if err := scopeTelegram(sess.id, h, "show"); err != nil {
		sess.deny(str, err)
		return
	}
	h.Subject = "" // never to an operator
	out := wire.Show{Header: h}
	for _, a := range h.Addressees() {
		ds := states[a]
		st := wire.AddresseeState{Addressee: a, Reason: ds.Reason, At: ds.At, Terminal: ds.Terminal, Attempts: ds.Attempts, Overdue: ds.Overdue, Via: ds.Via}
		switch {
		case ds.MovedTo != "":
			st.State, st.MovedTo = "moved", ds.MovedTo
		case ds.Via != "" && ds.Status == 0: // relayed, no report back yet
			st.State = "relayed"
		case ds.Deferred:
			st.State = "deferred"
		case ds.Held:
			st.State = "held"
		case ds.Parked():
			st.State = "parked"
		case ds.Status == telegram.Delivered:
			st.State = "delivered"
		case ds.Status == telegram.NotDelivered:
			st.State = "not_delivered"
		case sess.s.board.InFlight(store.SubQueue{Agency: a, Prec: h.Precedence, Class: h.Classification}, ds.Seq):
			st.State = "in_flight"
		default:
			st.State = "waiting"
		}
		out.Addressees = append(out.Addressees, st)
	}
	wire.WriteFrame(str, wire.TShowReply, out)
}

func (sess *session) handleOperate(str *quic.Stream, payload []byte) {
	var req wire.Operate
	if err := wire.Decode(wire.TOperate, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	board, actor := sess.s.board, sess.id.String()
	var res store.OpResult
	var err error
	if !req.ID.IsZero() {
		h, err := sess.s.store.Header(req.ID)
		if fault.Is(fault.NotExist, err) {
			err = fault.Errorf("operator", fault.NotExist, "no telegram %s", req.ID)
		}
		if err != nil {
			sess.replyError(str, err)
			return
		}
		if err := mayHandle(sess.id, h); err != nil {
			sess.deny(str, err)
			return
		}
		if err := scopeTelegram(sess.id, h, req.Action); err != nil {
			sess.deny(str, err)
			return
		}
	}
	if req.Agency != "" {
		if err := scopeAgencies(sess.id, req.Action, req.Agency); err != nil {
			sess.deny(str, err)
			return
		}
	}
	switch req.Action {
	case wire.ActHold:
		res, err = board.Hold(req.ID, actor)
	case wire.ActRelease:
		res, err = board.Release(req.ID, actor)
	case wire.ActRequeue:
		res, err = board.Requeue(req.ID, actor)
	case wire.ActCancel:
		reason := req.Reason
		if reason == "" {
			reason = "cancelled by an operator"
		}
		res, err = board.Cancel(req.ID, actor, reason)
	case wire.ActHoldAgency, wire.ActReleaseAgency:
		if !sess.s.directory().Has(req.Agency) {
			sess.replyError(str, fault.Errorf("operator", fault.NotExist, "unknown agency %s: not in the agency directory", req.Agency))
			return
		}
		err = board.HoldAgency(req.Agency, actor, req.Action == wire.ActHoldAgency)
		res.Done = []telegram.Address{req.Agency}
	default:
		sess.replyError(str, fault.Errorf("operator", fault.Invalid, "unknown operator action %q", req.Action))
		return
	}
	if err != nil {
		sess.replyError(str, err)
		return
	}
	if len(res.Done) == 0 {
		sess.replyError(str, sess.s.nothingDone(req))
		return
	}
	sess.log.Info("operator action", zap.String("action", req.Action), zap.Stringer("id", req.ID),
		zap.Stringer("agency", req.Agency), zap.Any("done", res.Done), zap.Any("skipped", res.Skipped))
	wire.WriteFrame(str, wire.TOperated, wire.Operated{Done: res.Done, Skipped: res.Skipped})
}

// maxAgeScan bounds the queue entries one age histogram reads; past it
// the histogram counts what it read and Queues says so.
const maxAgeScan = 1_000_000

// ageOf counts the entries of one sub-queue into ages by age since
// filing (their IDs carry the filing time), while fewer than maxAgeScan
// entries have been read in all (scanned).
func (s *Server) ageOf(st store.QueueStat, now time.Time, ages []int64, scanned *int) error {
	if st.Waiting == 0 {
		return nil
	}
	_, err := s.eachQueued(st, scanned, maxAgeScan, func(e store.Entry) error {
		ages[wire.AgeBucket(now.Sub(e.ID.Time()))]++
		return nil
	})
	return err
}

// eachQueued calls fn on the entries of one sub-queue from its head, in
// order, reading them a thousand at a time while fewer than limit
// entries have been read in all (scanned, which it adds to); cut says it
// stopped at limit with entries perhaps left.
func (s *Server) eachQueued(st store.QueueStat, scanned *int, limit int, fn func(store.Entry) error) (cut bool, err error) {
	const chunk = 1024
	for from := st.Head; *scanned < limit; {
		entries, err := s.store.ScanQueue(st.Queue, from, chunk)
		if err != nil {
			return false, err
		}
		*scanned += len(entries)
		for _, e := range entries {
			if err := fn(e); err != nil {
				return false, err
			}
		}
		if len(entries) < chunk {
			return false, nil
		}
		from = entries[len(entries)-1].Seq + 1
	}
	return true, nil
}

// nothingDone says why an action on a telegram changed nothing: it had
// already happened (cancelled or settled for every addressee, held
// already: fault.Done), or it applies to no addressee's state.
func (s *Server) nothingDone(req wire.Operate) error {
	_, states, err := s.store.Deliveries(req.ID)
	if err != nil {
		return err
	}
	pending, held, settled := 0, 0, 0
	for _, ds := range states {
		switch {
		case ds.Pending():
			pending++
			if ds.Held {
				held++
			}
		case !ds.Parked():
			settled++
		}
	}
	switch {
	case req.Action == wire.ActCancel && settled == len(states):
		return fault.Errorf("operator", fault.Done, "telegram %s is settled for every addressee already (cancelled, delivered or not delivered): nothing to cancel", req.ID)
	case req.Action == wire.ActHold && pending > 0 && held == pending:
		return fault.Errorf("operator", fault.Done, "telegram %s is held already for every addressee still waiting", req.ID)
	}
	return fault.Errorf("operator", fault.Invalid, "%s: nothing to do for telegram %s (no addressee in a state it applies to)", req.Action, req.ID)
}
