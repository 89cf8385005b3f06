package monitor

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

// What the console serves, computed from one State for every viewer: a
// summary whose size does not grow with the directory (the problems,
// most urgent first, and counts by level), a paged and searchable list of
// agencies, and one agency's page.

// Summary is the console's first screen.
type Summary struct {
	Switch       string             `json:"switch"`
	Totals       Totals             `json:"totals"`
	Figures      Figures            `json:"figures"`
	Problems     []Problem          `json:"problems"`
	ProblemsMore int                `json:"problems_more"` // problems left out past MaxProblems
	Levels       []LevelCount       `json:"levels"`
	Minimize     []string           `json:"minimize"`
	Admission    string             `json:"admission,omitempty"`
	Group        *GroupState        `json:"group,omitempty"`
	Targets      map[string]float64 `json:"targets"`
	Notices      []Notice           `json:"notices"`
}

// Figures are the network's totals.
type Figures struct {
	Waiting   int64 `json:"waiting"`
	InFlight  int64 `json:"in_flight"`
	Overdue   int64 `json:"overdue"`
	Held      int64 `json:"held"`
	Parked    int64 `json:"parked"`
	Deferred  int64 `json:"deferred"`
	Terminals int   `json:"terminals"` // terminal sessions
	Agencies  int   `json:"agencies"`  // in the directory
}

// Problem is one thing an operator should look at.
type Problem struct {
	// Kind: overdue (a telegram past its target), unattended (urgent
	// telegrams waiting for an agency with no terminal connected), link
	// (a link to a peer switch not up), parked, held, unlisted (custody
	// of an agency no longer in the directory).
	Kind       string      `json:"kind"`
	Agency     string      `json:"agency,omitempty"`
	Name       string      `json:"name,omitempty"`
	Precedence string      `json:"precedence,omitempty"`
	Count      int64       `json:"count,omitempty"`
	ID         telegram.ID `json:"id,omitzero"`
	AgeSeconds float64     `json:"age_seconds,omitempty"`
	Since      time.Time   `json:"since,omitzero"` // offline since (unattended), down since (link)
	Peer       string      `json:"peer,omitempty"`
}

// MaxProblems bounds the summary's problem list.
const MaxProblems = 50

// LevelCount is one level of the network.
type LevelCount struct {
	Level     string `json:"level"`
	Agencies  int    `json:"agencies"`
	Waiting   int    `json:"waiting"`   // agencies with telegrams waiting
	Overdue   int    `json:"overdue"`   // agencies with telegrams overdue
	Connected int    `json:"connected"` // agencies with a terminal connected
	Telegrams int64  `json:"telegrams"` // telegrams waiting
}

// AgencyRow is one agency in the list.
type AgencyRow struct {
	Agency     string   `json:"agency"`
	Name       string   `json:"name"`
	Level      string   `json:"level"`
	ByPrec     [4]int64 `json:"by_precedence"` // waiting: FLASH, IMMEDIATE, PRIORITY, ROUTINE
	Waiting    int64    `json:"waiting"`
	InFlight   int64    `json:"in_flight"`
	Overdue    int64    `json:"overdue"`
	Held       int64    `json:"held"`
	Parked     int64    `json:"parked"`
	Deferred   int64    `json:"deferred"`
	Oldest     float64  `json:"oldest_age_seconds"`
	Terminals  int      `json:"terminals"` // from the sessions
	AgencyHeld bool     `json:"agency_held,omitempty"`
	Unlisted   bool     `json:"unlisted,omitempty"`
	Closing    string   `json:"closing,omitempty"`
}

// AgencyList is one page of the list.
type AgencyList struct {
	Total  int         `json:"total"`
	Offset int         `json:"offset"`
	Rows   []AgencyRow `json:"rows"`
}

// ListQuery asks for a page of agencies.
type ListQuery struct {
	Search string // in the address or the name, any case
	Level  string
	Filter string // "", waiting, overdue, offline (waiting, no terminal)
	Sort   string // problems (default), address, waiting, oldest
	Offset int
	Limit  int // at most 200
}

// AgencyPage is one agency's page.
type AgencyPage struct {
	AgencyRow
	Queues    []QueueRow `json:"queues"`
	Terminals []Session  `json:"terminal_sessions"`
	LastSeen  time.Time  `json:"last_seen,omitzero"`
	Events    []Event    `json:"events"`
}

func precIndex(p telegram.Precedence) int { return int(telegram.Flash - p) } // FLASH 0 ... ROUTINE 3

// view is what one State gives every viewer.
type view struct {
	st      State
	rows    map[string]*AgencyRow
	order   []*AgencyRow // every agency, in address order
	summary Summary
}

func newView(st State) *view {
	v := &view{st: st, rows: make(map[string]*AgencyRow, len(st.Agencies))}
	for addr, info := range st.Agencies {
		v.rows[addr] = &AgencyRow{Agency: addr, Name: info.Name, Level: info.Level, Closing: info.Closing}
	}
	for _, r := range st.Queues {
		a := v.rows[string(r.Agency)]
		if a == nil {
			a = &AgencyRow{Agency: string(r.Agency), Level: r.Tier, Unlisted: r.Unlisted}
			v.rows[string(r.Agency)] = a
		}
		a.ByPrec[precIndex(r.Precedence)] += r.Waiting
		a.Waiting += r.Waiting
		a.InFlight += r.InFlight
		a.Overdue += r.Overdue
		a.Held += r.Held
		a.Parked += r.Parked
		a.Deferred += r.Deferred
		a.Oldest = max(a.Oldest, r.OldestAgeSeconds)
		a.AgencyHeld = a.AgencyHeld || r.AgencyHeld
	}
	terminals := 0
	for _, s := range st.Sessions {
		if s.Role != "terminal" {
			continue
		}
		terminals++
		if a := v.rows[string(s.Agency)]; a != nil {
			a.Terminals++
		}
	}
	v.order = make([]*AgencyRow, 0, len(v.rows))
	for _, a := range v.rows {
		v.order = append(v.order, a)
	}
	slices.SortFunc(v.order, func(x, y *AgencyRow) int { return cmp.Compare(x.Agency, y.Agency) })
	v.summary = v.summarize(terminals)
	return v
}

func (v *view) summarize(terminals int) Summary {
	st := v.st
	s := Summary{Switch: st.Switch, Totals: st.Totals, Minimize: st.Minimize, Admission: st.Admission, Group: st.Group,
		Targets: st.Targets, Problems: []Problem{}, Notices: st.Notices}
	if s.Notices == nil {
		s.Notices = []Notice{}
	}
	if s.Minimize == nil {
		s.Minimize = []string{}
	}
	s.Figures.Terminals, s.Figures.Agencies = terminals, len(st.Agencies)
	levels := map[string]*LevelCount{}
	for _, lv := range []string{"centre", "province", "district", "commune"} {
		levels[lv] = &LevelCount{Level: lv}
		s.Levels = append(s.Levels, LevelCount{Level: lv})
	}
	var problems []Problem
	for _, o := range st.Overdue {
		problems = append(problems, Problem{Kind: "overdue", Agency: string(o.Agency), Name: st.Agencies[string(o.Agency)].Name,
			Precedence: o.Precedence.String(), ID: o.ID, AgeSeconds: o.AgeSeconds})
	}
	for _, a := range v.order {
		f := &s.Figures
		f.Waiting, f.InFlight, f.Overdue = f.Waiting+a.Waiting, f.InFlight+a.InFlight, f.Overdue+a.Overdue
		f.Held, f.Parked, f.Deferred = f.Held+a.Held, f.Parked+a.Parked, f.Deferred+a.Deferred
		if lc := levels[a.Level]; lc != nil && !a.Unlisted {
			lc.Agencies++
			lc.Telegrams += a.Waiting
			if a.Waiting > 0 {
				lc.Waiting++
			}
			if a.Overdue > 0 {
				lc.Overdue++
			}
			if a.Terminals > 0 {
				lc.Connected++
			}
		}
		for i, p := range []telegram.Precedence{telegram.Flash, telegram.Immediate} {
			if n := a.ByPrec[i]; n > 0 && a.Terminals == 0 && !a.AgencyHeld {
				problems = append(problems, Problem{Kind: "unattended", Agency: a.Agency, Name: a.Name, Precedence: p.String(),
					Count: n, AgeSeconds: a.Oldest, Since: st.LastSeen[telegram.Address(a.Agency)]})
				break
			}
		}
		if a.Parked > 0 {
			problems = append(problems, Problem{Kind: "parked", Agency: a.Agency, Name: a.Name, Count: a.Parked})
		}
		if a.Held > 0 {
			problems = append(problems, Problem{Kind: "held", Agency: a.Agency, Name: a.Name, Count: a.Held})
		}
		if a.Unlisted {
			problems = append(problems, Problem{Kind: "unlisted", Agency: a.Agency, Count: a.Waiting + a.Held + a.Parked + a.Deferred})
		}
	}
	for _, l := range st.Links {
		if l.State != "up" {
			problems = append(problems, Problem{Kind: "link", Peer: l.Peer, Since: l.Since, Count: int64(l.Waiting[0] + l.Waiting[1] + l.Waiting[2] + l.Waiting[3])})
		}
	}
	for i := range s.Levels {
		s.Levels[i] = *levels[s.Levels[i].Level]
	}
	// The most urgent precedence first (a link down counts as FLASH),
	// then by kind, then the oldest.
	rank := map[string]int{"overdue": 0, "unattended": 1, "link": 2, "parked": 3, "unlisted": 4, "held": 5}
	urgency := func(p Problem) int {
		if p.Kind == "link" {
			return precRank("FLASH")
		}
		return precRank(p.Precedence)
	}
	slices.SortStableFunc(problems, func(x, y Problem) int {
		if c := cmp.Compare(urgency(y), urgency(x)); c != 0 {
			return c
		}
		if c := cmp.Compare(rank[x.Kind], rank[y.Kind]); c != 0 {
			return c
		}
		if c := cmp.Compare(y.AgeSeconds, x.AgeSeconds); c != 0 {
			return c
		}
		return cmp.Compare(y.Count, x.Count)
	})
	if len(problems) > MaxProblems {
		s.ProblemsMore = len(problems) - MaxProblems
		problems = problems[:MaxProblems]
	}
	if problems != nil {
		s.Problems = problems
	}
	return s
}

func precRank(p string) int {
	switch p {
	case "FLASH":
		return 4
	case "IMMEDIATE":
		return 3
	case "PRIORITY":
		return 2
	case "ROUTINE":
		return 1
	}
	return 0
}

// list answers a ListQuery.
func (v *view) list(q ListQuery) AgencyList {
	search := strings.ToLower(strings.TrimSpace(q.Search))
	var hit []*AgencyRow
	for _, a := range v.order {
		switch {
		case q.Level != "" && a.Level != q.Level:
		case search != "" && !strings.Contains(strings.ToLower(a.Agency), search) && !strings.Contains(strings.ToLower(a.Name), search):
		case q.Filter == "waiting" && a.Waiting == 0:
		case q.Filter == "overdue" && a.Overdue == 0:
		case q.Filter == "offline" && (a.Waiting == 0 || a.Terminals > 0):
		default:
			hit = append(hit, a)
		}
	}
	switch q.Sort {
	case "address":
	case "waiting":
		slices.SortStableFunc(hit, func(x, y *AgencyRow) int { return cmp.Compare(y.Waiting, x.Waiting) })
	case "oldest":
		slices.SortStableFunc(hit, func(x, y *AgencyRow) int { return cmp.Compare(y.Oldest, x.Oldest) })
	default: // problems first: overdue, then urgent waiting, then waiting
		slices.SortStableFunc(hit, func(x, y *AgencyRow) int {
			if c := cmp.Compare(y.Overdue, x.Overdue); c != 0 {
				return c
			}
			if c := cmp.Compare(y.ByPrec[0]+y.ByPrec[1], x.ByPrec[0]+x.ByPrec[1]); c != 0 {
				return c
			}
			return cmp.Compare(y.Waiting, x.Waiting)
		})
	}
	limit := q.Limit
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	out := AgencyList{Total: len(hit), Offset: min(max(q.Offset, 0), len(hit)), Rows: []AgencyRow{}}
	for _, a := range hit[out.Offset:min(out.Offset+limit, len(hit))] {
		out.Rows = append(out.Rows, *a)
	}
	return out
}

// page is one agency's page, without its events; false when unknown.
func (v *view) page(addr string) (AgencyPage, bool) {
	a := v.rows[addr]
	if a == nil {
		return AgencyPage{}, false
	}
	p := AgencyPage{AgencyRow: *a, Queues: []QueueRow{}, Terminals: []Session{}, Events: []Event{}, LastSeen: v.st.LastSeen[telegram.Address(addr)]}
	for _, r := range v.st.Queues {
		if string(r.Agency) == addr {
			p.Queues = append(p.Queues, r)
		}
	}
	for _, s := range v.st.Sessions {
		if string(s.Agency) == addr && s.Role == "terminal" {
			p.Terminals = append(p.Terminals, s)
		}
	}
	return p, true
}
