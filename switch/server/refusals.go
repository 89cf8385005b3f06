package server

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
)

// Refusals (refused handshakes, denied requests, refused filings) are
// audited aggregated, so that nobody, with or without a certificate, can
// fill the audit log or the disk by being refused. Within an interval the
// first refusal of each kind (who, from where, why) is written at once;
// the same one again is only counted, and one entry at the interval's end
// says how many more there were. A switch-wide budget bounds the entries
// refusals may write per interval; past it, everything goes into one
// summary entry per interval with the count and the number of kinds. The
// interval is Config.RefusalInterval (10 s).
// Each entry is bounded to audit.MaxLeaf, so refusals write at most
// refusalBudget × 4 KiB per interval.
const refusalBudget = 100 // entries per interval, summaries included

type refusalLog struct {
	interval time.Duration
	mu       sync.Mutex
	start    time.Time
	kinds    map[string]*refusalKind
	written  int
	overflow struct{ count, kinds int }
}

// refusalKind is one kind of refusal within the interval: the entry
// written for the first, and how many came after it; or, past the budget,
// nothing written and every one counted in the overflow.
type refusalKind struct {
	entry store.AuditEntry
	more  int
	over  bool
}

// refusal audits one refusal of the given kind (the key: who and why,
// without what varies from one to the next); e is its entry. The first of
// each kind in an interval is also logged; the rest only counted. A refusal
// written at once is durable when this returns, unless async (handshakes:
// recorded with the next commit, the handshake does not wait).
func (s *Server) refusal(key string, e store.AuditEntry, async bool) {
	s.refusals.mu.Lock()
	write, due := s.refusals.note(key, e, time.Now())
	s.refusals.mu.Unlock()
	s.writeRefusals(due)
	if write { // the first of its kind in the interval; the rest are counted
		s.log.Warn("security event", zap.String("actor", audit.Clean(e.Actor, 256)), zap.String("reason", audit.Clean(e.Reason, 512)))
	}
	switch {
	case !write:
	case async:
		s.store.RecordAsync(e)
	default:
		if err := s.store.Record(e); err != nil {
			s.log.Error("cannot audit a refusal", zap.Error(err))
		}
	}
}

// note counts one refusal of kind key at now (mu held): write says e is
// to be written now; due are the summaries of an interval that ended.
func (r *refusalLog) note(key string, e store.AuditEntry, now time.Time) (write bool, due []store.AuditEntry) {
	due = r.roll(now)
	switch k := r.kinds[key]; {
	case k != nil && k.over:
		r.overflow.count++
	case k != nil:
		k.more++
	case r.written < refusalBudget-1: // one left for the overflow summary
		r.kinds[key] = &refusalKind{entry: e}
		r.written++
		write = true
	default:
		r.overflow.count++
		r.overflow.kinds++
		r.kinds[key] = &refusalKind{over: true}
	}
	return write, due
}

// flushRefusals writes the summaries of an interval that has ended (timer
// loop).
func (s *Server) flushRefusals(now time.Time) {
	s.refusals.mu.Lock()
	due := s.refusals.roll(now)
	s.refusals.mu.Unlock()
	s.writeRefusals(due)
}

// roll starts a new interval if the current one has ended, returning the
// summaries owed for it (mu held).
func (r *refusalLog) roll(now time.Time) []store.AuditEntry {
	if r.kinds != nil && now.Sub(r.start) < r.interval {
		return nil
	}
	var due []store.AuditEntry
	keys := make([]string, 0, len(r.kinds))
	for key := range r.kinds {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		k := r.kinds[key]
		if k.more > 0 {
			e := k.entry
			e.Reason = fmt.Sprintf("%d more like this in %s: %s", k.more, r.interval, e.Reason)
			due = append(due, e)
		}
	}
	if r.overflow.count > 0 {
		due = append(due, store.AuditEntry{Actor: "switch", Event: audit.Security, Reason: fmt.Sprintf(
			"%d more refusals of %d other kinds in %s, over the audit budget for refusals (%d entries per %s): counted, not written one by one",
			r.overflow.count, r.overflow.kinds, r.interval, refusalBudget, r.interval)})
	}
	r.start, r.kinds, r.written, r.overflow = now, map[string]*refusalKind{}, 0, struct{ count, kinds int }{}
	return due
}

func (s *Server) writeRefusals(due []store.AuditEntry) {
	for _, e := range due {
		s.store.RecordAsync(e)
	}
}

// deniedKey is the aggregation key of a refusal by who for why.
func deniedKey(kind, who string, from telegram.Address, why string) string {
	if len(why) > 96 {
		why = why[:96]
	}
	return kind + "\x00" + who + "\x00" + string(from) + "\x00" + why
}
