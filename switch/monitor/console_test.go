package monitor

import (
	"fmt"
	"testing"

	"github.com/dienbao/dienbao/switch/telegram"
)

// The summary does not grow with the directory: 10,000 agencies each
// with FLASH waiting and no terminal give 50 problems and a count of the
// rest; the overdue FLASH comes first, then the unattended FLASH, then
// the ROUTINE overdue; the list pages and searches.
func TestSummaryIsBounded(t *testing.T) {
	st := State{Agencies: map[string]AgencyInfo{}}
	for i := range 10_000 {
		a := telegram.Address(fmt.Sprintf("T%02d.H%03d.UBND", i%63+1, i/63+1))
		st.Agencies[string(a)] = AgencyInfo{Name: fmt.Sprint("huyện ", i), Level: "district"}
		st.Queues = append(st.Queues, QueueRow{Agency: a, Tier: "district", Precedence: telegram.Flash, Waiting: 1, OldestAgeSeconds: float64(i)})
	}
	st.Queues = append(st.Queues, QueueRow{Agency: "T01.H001.UBND", Tier: "district", Precedence: telegram.Routine, Waiting: 1, Overdue: 1})
	st.Overdue = []OverdueRow{{ID: telegram.ID{1}, Agency: "T01.H001.UBND", Precedence: telegram.Routine, AgeSeconds: 9000},
		{ID: telegram.ID{2}, Agency: "T02.H001.UBND", Precedence: telegram.Flash, AgeSeconds: 700}}
	st.Sessions = []Session{{Agency: "T03.H001.UBND", Role: "terminal"}}
	v := newView(st)
	s := v.summary
	if len(s.Problems) != MaxProblems || s.ProblemsMore != 10_000-1+2-MaxProblems {
		t.Fatalf("%d problems, %d more; want %d and %d", len(s.Problems), s.ProblemsMore, MaxProblems, 10_000-1+2-MaxProblems)
	}
	if p := s.Problems[0]; p.Kind != "overdue" || p.Precedence != "FLASH" || p.Agency != "T02.H001.UBND" {
		t.Errorf("first problem %+v, want T02.H001.UBND's overdue FLASH", p)
	}
	if p := s.Problems[1]; p.Kind != "unattended" || p.Precedence != "FLASH" || p.AgeSeconds != 9999 {
		t.Errorf("second problem %+v, want the oldest unattended FLASH", p)
	}
	if f := s.Figures; f.Waiting != 10_001 || f.Overdue != 1 || f.Terminals != 1 || f.Agencies != 10_000 {
		t.Errorf("figures %+v", f)
	}
	if lc := s.Levels[2]; lc.Level != "district" || lc.Agencies != 10_000 || lc.Waiting != 10_000 || lc.Connected != 1 || lc.Overdue != 1 {
		t.Errorf("districts %+v", lc)
	}
	l := v.list(ListQuery{Search: "t05.h1", Sort: "address", Limit: 5})
	if l.Total != 60 || len(l.Rows) != 5 || l.Rows[0].Agency != "T05.H100.UBND" { // province 5 has districts H001-H159
		t.Errorf("search t05.h1: %d, first %v", l.Total, l.Rows)
	}
	l = v.list(ListQuery{Search: "T03.H001.UBND"})
	if l.Total != 1 || l.Rows[0].Terminals != 1 || l.Rows[0].ByPrec[0] != 1 {
		t.Errorf("T03.H001.UBND: %+v", l)
	}
	l = v.list(ListQuery{Filter: "offline", Offset: 9990, Limit: 50})
	if l.Total != 9999 || len(l.Rows) != 9 {
		t.Errorf("offline, last page: total %d, %d rows", l.Total, len(l.Rows))
	}
}

// The plain listener serves the console on loopback only.
func TestConsoleOnPlainHTTP(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:4480": true, "[::1]:4480": true, "localhost:4480": true,
		"0.0.0.0:4480": false, ":4480": false, "10.1.2.3:4480": false, "[::]:4480": false, "switch.example:4480": false, "nonsense": false} {
		if got := loopback(addr); got != want {
			t.Errorf("loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
