package server

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
)

// Incident notices (tg notice): an operator tells the others of what
// affects the network, what part (an address prefix, or a link), and
// until when it is expected to last. A notice stays until an operator
// closes it; every operator whose scope it touches sees it in tg notice,
// tg top and the console. Posting and closing are audited (notice); the
// open ones are a setting of the store, so they outlive a restart.

const noticeSetting = "notices"

type noticeState struct {
	Next uint64
	Open []wire.Notice
}

type notices struct {
	mu sync.Mutex
	st noticeState
}

func (s *Server) loadNotices() error {
	_, err := s.store.Setting(noticeSetting, &s.notices.st)
	return err
}

// touches says whether notice n concerns an operator of id's scope: a
// link, or a prefix in scope or above it.
func touches(id certs.Identity, n wire.Notice) bool {
	if !id.Scoped() || strings.HasPrefix(n.Affects, "link:") {
		return true
	}
	a := telegram.Address(n.Affects)
	if id.InScope(a) {
		return true
	}
	for _, p := range id.Scope {
		if strings.HasPrefix(string(p), n.Affects+".") {
			return true
		}
	}
	return false
}

// openNotices lists the open notices id may see (all for an unscoped
// identity), oldest first.
func (s *Server) openNotices(id certs.Identity) []wire.Notice {
	s.notices.mu.Lock()
	defer s.notices.mu.Unlock()
	var out []wire.Notice
	for _, n := range s.notices.st.Open {
		if touches(id, n) {
			out = append(out, n)
		}
	}
	return out
}

func (sess *session) handleNotice(str *quic.Stream, payload []byte) {
	var req wire.NoticeRequest
	if err := wire.Decode(wire.TNotice, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	s := sess.s
	var out wire.Notices
	switch {
	case req.Post != nil:
		n := *req.Post
		if !strings.HasPrefix(n.Affects, "link:") {
			a, err := telegram.ParseAddress(n.Affects)
			if err != nil {
				sess.replyError(str, fault.Errorf("notice", fault.Invalid, "--affects %q: an address prefix (NA, HN.UBND) or link:PEER", n.Affects))
				return
			}
			if err := scopeAgencies(sess.id, "notice", a); err != nil {
				sess.deny(str, err)
				return
			}
		} else if peer := strings.TrimPrefix(n.Affects, "link:"); !sess.id.InLink(peer) {
			sess.deny(str, fault.Errorf("notice", fault.Permission, "the link to %s is outside this operator's scope (%s)", peer, scopeList(sess.id)))
			return
		}
		now := s.clock.Now()
		if !n.Until.After(now) {
			sess.replyError(str, fault.Errorf("notice", fault.Invalid, "--until %s is already past", n.Until.UTC().Format("2006-01-02 15:04")))
			return
		}
		n.By, n.At = sess.id.String(), now
		err := s.changeNotices(func(st *noticeState) store.AuditEntry {
			st.Next++
			n.Number = st.Next
			st.Open = append(st.Open, n)
			out.Posted = n.Number
			return store.AuditEntry{Actor: sess.id.String(), Event: audit.Notice,
				Reason: fmt.Sprintf("posted %d: affects %s until %s: %s", n.Number, n.Affects, n.Until.UTC().Format("2006-01-02T15:04Z"), n.Text)}
		})
		if err != nil {
			sess.replyError(str, err)
			return
		}
	case req.Close != 0:
		s.notices.mu.Lock()
		i := slices.IndexFunc(s.notices.st.Open, func(n wire.Notice) bool { return n.Number == req.Close })
		var n wire.Notice
		if i >= 0 {
			n = s.notices.st.Open[i]
		}
		s.notices.mu.Unlock()
		if i < 0 {
			sess.replyError(str, fault.Errorf("notice", fault.NotExist, "no open notice %d", req.Close))
			return
		}
		if !touches(sess.id, n) || (sess.id.Scoped() && n.By != sess.id.String() && !sess.id.InScope(telegram.Address(n.Affects))) {
			sess.deny(str, outOfScope(sess.id, fmt.Sprintf("close notice %d", n.Number), []telegram.Address{telegram.Address(n.Affects)}))
			return
		}
		err := s.changeNotices(func(st *noticeState) store.AuditEntry {
			st.Open = slices.DeleteFunc(st.Open, func(o wire.Notice) bool { return o.Number == req.Close })
			out.Closed = req.Close
			return store.AuditEntry{Actor: sess.id.String(), Event: audit.Notice, Reason: fmt.Sprintf("closed %d (affects %s)", n.Number, n.Affects)}
		})
		if err != nil {
			sess.replyError(str, err)
			return
		}
	}
	out.Open = s.openNotices(sess.id)
	if out.Open == nil {
		out.Open = []wire.Notice{}
	}
	wire.WriteFrame(str, wire.TNotices, out)
}

// changeNotices applies change and keeps the result, with its audit
// entry, in one commit.
func (s *Server) changeNotices(change func(st *noticeState) store.AuditEntry) error {
	s.notices.mu.Lock()
	defer s.notices.mu.Unlock()
	st := noticeState{Next: s.notices.st.Next, Open: slices.Clone(s.notices.st.Open)}
	e := change(&st)
	if err := s.store.PutSetting(noticeSetting, st, e); err != nil {
		return err
	}
	s.notices.st = st
	return nil
}
