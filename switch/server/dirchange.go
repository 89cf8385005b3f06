package server

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
)

// Directory changes never hide custody. A reload that drops an agency
// with telegrams or delivery reports in custody is refused (audited)
// unless the agency stays listed, moved (moved_to: what waits for it is
// moved to its successor, in the background, by actor "directory") or
// draining (drain: its terminals still receive; nobody files to it). An
// agency absent from the directory that still has custody (the directory
// file was edited while the switch was stopped) shows in tg queues, tg
// list and the metrics flagged unlisted: the store keeps a register of
// every agency the directory has listed (store.RegisterListed).

// custodyOf counts what agency a has in custody: telegrams waiting for it
// in any state (in flight included) and delivery reports waiting for it
// as a sender (up to maxReportsCounted).
func (s *Server) custodyOf(a telegram.Address) (telegrams int64, reports int, err error) {
	st, err := s.store.QueueStats(a)
	if err != nil {
		return 0, 0, err
	}
	for _, q := range st.Queues {
		telegrams += q.Waiting + q.Held + q.Parked + q.Deferred
	}
	_, head, err := s.store.Heads(a)
	if err != nil {
		return 0, 0, err
	}
	rs, err := s.store.ScanReceipts(a, head, maxReportsCounted)
	return telegrams, len(rs), err
}

const maxReportsCounted = 1000

// checkDropped refuses a directory that drops an agency of the one in
// force while it has anything in custody.
func (s *Server) checkDropped(next *directory.Directory) error {
	var held []string
	for _, ag := range s.directory().Agencies() {
		if next.Has(ag.Address) {
			continue
		}
		n, r, err := s.custodyOf(ag.Address)
		if err != nil {
			return err
		}
		if n > 0 || r > 0 {
			held = append(held, fmt.Sprintf("%s (%d telegrams, %d delivery reports)", ag.Address, n, r))
		}
	}
	if len(held) == 0 {
		return nil
	}
	list := strings.Join(held[:min(len(held), 10)], ", ")
	if len(held) > 10 {
		list += fmt.Sprintf(" and %d more", len(held)-10)
	}
	why := fmt.Sprintf("directory reload refused: %d agencies it drops have custody: %s; keep each listed with moved_to = \"NEW.ADDRESS\" (what waits is moved there) or drain = true (delivered, then removable) until nothing waits",
		len(held), list)
	if err := s.store.Record(store.AuditEntry{Actor: "switch", Event: audit.Directory, Reason: why}); err != nil {
		s.log.Error("cannot audit a refused directory reload", zap.Error(err))
	}
	return fault.E("reload", fault.Invalid, why)
}

// putDirectory puts dir in force: registers its agencies, then notes what
// is unlisted.
func (s *Server) putDirectory(dir *directory.Directory) {
	addrs := make([]telegram.Address, 0, len(dir.Agencies()))
	for _, ag := range dir.Agencies() {
		addrs = append(addrs, ag.Address)
	}
	if err := s.store.RegisterListed(addrs); err != nil {
		s.log.Error("cannot register the directory's agencies (agencies that leave it later may not be shown)", zap.Error(err))
	}
	s.dir.Store(dir)
	s.noteUnlisted()
}

// noteUnlisted finds the agencies that were listed once, are not now, and
// have custody, and keeps them for the operators' views.
func (s *Server) noteUnlisted() {
	dir := s.directory()
	if n, err := s.store.ListedCount(); err == nil && n == len(dir.Agencies()) && len(s.unlistedAgencies()) == 0 {
		return // every agency ever listed is listed now (the register holds the directory's)
	}
	all, err := s.store.ListedAgencies()
	if err != nil {
		s.log.Error("cannot read the register of listed agencies", zap.Error(err))
		return
	}
	var out []telegram.Address
	for _, a := range all {
		if dir.Has(a) {
			continue
		}
		n, r, err := s.custodyOf(a)
		if err != nil {
			s.log.Error("cannot read an unlisted agency's custody", zap.Stringer("agency", a), zap.Error(err))
			continue
		}
		if n > 0 || r > 0 {
			out = append(out, a)
		}
	}
	prev := s.unlisted.Load()
	if prev == nil || !slices.Equal(*prev, out) {
		if len(out) > 0 {
			s.log.Warn("agencies not in the directory have telegrams or reports in custody: shown flagged unlisted; list them again (moved_to or drain) to deliver or move them",
				zap.Stringers("agencies", out))
		}
		s.unlisted.Store(&out)
	}
}

// unlistedAgencies is what noteUnlisted found last.
func (s *Server) unlistedAgencies() []telegram.Address {
	if p := s.unlisted.Load(); p != nil {
		return *p
	}
	return nil
}

// moveMoved moves what waits for each agency the directory says moved to
// its successor (actor "directory"), one at a time, in the background; a
// copy in flight when the move ran is moved on a later tick if it comes
// back.
func (s *Server) moveMoved() {
	var todo []directory.Agency
	for _, ag := range s.directory().Agencies() {
		if ag.MovedTo == "" {
			continue
		}
		st, err := s.store.QueueStats(ag.Address)
		if err != nil {
			continue
		}
		for _, q := range st.Queues {
			if q.Waiting > 0 || q.Held > 0 || q.Deferred > 0 {
				todo = append(todo, ag)
				break
			}
		}
	}
	if len(todo) == 0 || !s.moving.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.moving.Store(false)
		for _, ag := range todo {
			if _, err := s.board.MoveQueue(ag.Address, ag.MovedTo, "directory", telegram.TopSecret); err != nil {
				s.log.Error("cannot move a moved agency's queue", zap.Stringer("from", ag.Address), zap.Stringer("to", ag.MovedTo), zap.Error(err))
			}
		}
	}()
}

// operatorAgencies is what operators see: the directory's agencies, then
// the unlisted ones with custody (flagged).
func (s *Server) operatorAgencies() (ags []directory.Agency, unlisted map[telegram.Address]bool) {
	ags = s.directory().Agencies()
	un := s.unlistedAgencies()
	if len(un) == 0 {
		return ags, nil
	}
	unlisted = make(map[telegram.Address]bool, len(un))
	ags = slices.Clone(ags)
	for _, a := range un {
		unlisted[a] = true
		ags = append(ags, directory.Agency{Address: a})
	}
	return ags, unlisted
}
