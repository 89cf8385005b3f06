package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
)

// The hub reads the switch's State at most once a second, whoever asks,
// and keeps the last hour of counters for the charts. Viewers of the
// event stream get the summary every RefreshEvery, only when it changed
// (a comment line keeps the connection alive otherwise), and at most
// MaxViewers of them at once.

// Settings of the console's stream.
const (
	RefreshEvery = 2 * time.Second
	MaxViewers   = 32
	sampleEvery  = 10 * time.Second
	history      = 360 // samples: an hour
)

type hub struct {
	src     Source
	log     *zap.Logger
	mu      sync.Mutex
	v       *view
	at      time.Time
	err     error
	viewers atomic.Int32
	// Views for scoped viewers, by scope, read again when older than a
	// second.
	scoped map[string]scopedView
	// The charts' samples, oldest first.
	hmu     sync.Mutex
	samples []sample
}

type scopedView struct {
	v  *view
	at time.Time
}

// viewFor is the view who may see: the whole one, or its scope's.
func (h *hub) viewFor(who Viewer) (*view, error) {
	v, err := h.view()
	if v == nil || who.In == nil {
		return v, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if sv, ok := h.scoped[who.Scope]; ok && !sv.at.Before(h.at) {
		return sv.v, nil
	}
	if h.scoped == nil || len(h.scoped) >= 16 { // a few scopes look at once; past that, start again
		h.scoped = map[string]scopedView{}
	}
	sv := scopedView{v: newView(within(v.st, who)), at: h.at}
	h.scoped[who.Scope] = sv
	return sv.v, nil
}

// within is st limited to who's scope: the agencies in it (their queues,
// overdue telegrams and terminal sessions) and its links; the totals stay
// (they name no agency).
func within(st State, who Viewer) State {
	in := who.In
	out := st
	out.Queues, out.Overdue, out.Sessions, out.Unlisted, out.Links = nil, nil, nil, nil, nil
	for _, l := range st.Links {
		if who.Link != nil && who.Link(l.Peer) {
			out.Links = append(out.Links, l)
		}
	}
	out.Agencies = map[string]AgencyInfo{}
	for a, info := range st.Agencies {
		if in(telegram.Address(a)) {
			out.Agencies[a] = info
		}
	}
	for _, r := range st.Queues {
		if in(r.Agency) {
			out.Queues = append(out.Queues, r)
		}
	}
	for _, o := range st.Overdue {
		if in(o.Agency) {
			out.Overdue = append(out.Overdue, o)
		}
	}
	for _, x := range st.Sessions {
		if x.Agency != "" && in(x.Agency) {
			out.Sessions = append(out.Sessions, x)
		}
	}
	for _, a := range st.Unlisted {
		if in(a) {
			out.Unlisted = append(out.Unlisted, a)
		}
	}
	// A notice for a link, or for a prefix with an agency in scope.
	out.Notices = nil
	for _, n := range st.Notices {
		keep := strings.HasPrefix(n.Affects, "link:")
		for a := range out.Agencies {
			if keep {
				break
			}
			keep = a == n.Affects || strings.HasPrefix(a, n.Affects+".")
		}
		if keep {
			out.Notices = append(out.Notices, n)
		}
	}
	return out
}

type sample struct {
	at time.Time
	t  Totals
}

func newHub(src Source, log *zap.Logger) *hub { return &hub{src: src, log: log} }

// view is the current view, read again when older than a second.
func (h *hub) view() (*view, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.v != nil && time.Since(h.at) < time.Second {
		return h.v, h.err
	}
	st, err := h.src.State()
	h.at, h.err = time.Now(), err
	if err != nil {
		h.log.Error("monitor state", zap.Error(err))
		return h.v, err
	}
	h.v = newView(st)
	return h.v, nil
}

// sample records the counters if the last sample is old enough.
func (h *hub) sample() {
	h.hmu.Lock()
	defer h.hmu.Unlock()
	now := time.Now()
	if n := len(h.samples); n > 0 && now.Sub(h.samples[n-1].at) < sampleEvery-time.Second {
		return
	}
	h.samples = append(h.samples, sample{at: now, t: h.src.Counters()})
	if len(h.samples) > history+1 {
		h.samples = h.samples[len(h.samples)-history-1:]
	}
}

// run samples the counters until ctx ends.
func (h *hub) run(ctx context.Context) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		h.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// events streams the summary to one viewer.
func (h *hub) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	if h.viewers.Add(1) > MaxViewers {
		h.viewers.Add(-1)
		http.Error(w, fmt.Sprintf("too many console viewers (at most %d at once); try again later", MaxViewers), http.StatusServiceUnavailable)
		return
	}
	defer h.viewers.Add(-1)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	t := time.NewTicker(RefreshEvery)
	defer t.Stop()
	var last []byte
	quiet := 0
	who := viewerOf(r)
	for {
		if v, err := h.viewFor(who); err == nil && v != nil {
			b, _ := json.Marshal(v.summary)
			switch {
			case !bytes.Equal(b, last):
				if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
					return
				}
				last, quiet = b, 0
			case quiet >= int(15*time.Second/RefreshEvery):
				if _, err := fmt.Fprint(w, ": still here\n\n"); err != nil {
					return
				}
				quiet = 0
			default:
				quiet++
			}
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}

// chart draws the last hour of one series as SVG: what is "rates"
// (filings and deliveries per second, all precedences) or "latency"
// (mean delivery latency per precedence, seconds).
func (h *hub) chart(what string) ([]byte, bool) {
	h.sample()
	h.hmu.Lock()
	ss := append([]sample(nil), h.samples...)
	h.hmu.Unlock()
	type series struct {
		name, colour string
		pts          []float64
	}
	var lines []series
	colours := map[telegram.Precedence]string{telegram.Flash: "#b42318", telegram.Immediate: "#c4320a", telegram.Priority: "#1f5fbf", telegram.Routine: "#475467"}
	switch what {
	case "rates":
		filed, deliv := series{name: "nhận · filed /s", colour: "#1f5fbf"}, series{name: "giao · delivered /s", colour: "#067647"}
		for i := 1; i < len(ss); i++ {
			dt := ss[i].at.Sub(ss[i-1].at).Seconds()
			var f, d int64
			for p := range ss[i].t.Filed {
				f += ss[i].t.Filed[p] - ss[i-1].t.Filed[p]
				d += ss[i].t.Delivered[p] - ss[i-1].t.Delivered[p]
			}
			filed.pts = append(filed.pts, float64(f)/dt)
			deliv.pts = append(deliv.pts, float64(d)/dt)
		}
		lines = []series{filed, deliv}
	case "latency":
		for p := telegram.Flash; p >= telegram.Routine; p-- {
			s := series{name: p.String() + " s", colour: colours[p]}
			for i := 1; i < len(ss); i++ {
				n := ss[i].t.Delivered[p] - ss[i-1].t.Delivered[p]
				v := 0.0
				if n > 0 {
					v = float64(ss[i].t.LatencyNanos[p]-ss[i-1].t.LatencyNanos[p]) / float64(n) / 1e9
				}
				s.pts = append(s.pts, v)
			}
			lines = append(lines, s)
		}
	default:
		return nil, false
	}
	const w, hgt, left, top, bottom = 640.0, 170.0, 44.0, 8.0, 22.0
	top2 := 1.0
	for _, l := range lines {
		for _, v := range l.pts {
			top2 = max(top2, v)
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="11">`, w, hgt, w, hgt)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="#fff"/><line x1="%g" y1="%g" x2="%g" y2="%g" stroke="#ccc"/>`, left, hgt-bottom, w, hgt-bottom)
	fmt.Fprintf(&b, `<text x="2" y="%g">%.3g</text><text x="2" y="%g">0</text>`, top+8, top2, hgt-bottom)
	fmt.Fprintf(&b, `<text x="%g" y="%g">−60 ph · min</text><text x="%g" y="%g" text-anchor="end">bây giờ · now</text>`, left, hgt-6, w-2, hgt-6)
	for i, l := range lines {
		fmt.Fprintf(&b, `<text x="%g" y="%g" fill="%s">%s</text>`, left+40+float64(i)*130, top+8, l.colour, l.name)
		if len(l.pts) == 0 {
			continue
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="`, l.colour)
		for j, v := range l.pts {
			x := left + (w-left)*float64(history-len(l.pts)+j+1)/float64(history)
			y := hgt - bottom - (hgt-bottom-top)*v/top2
			fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
		}
		b.WriteString(`"/>`)
	}
	b.WriteString(`</svg>`)
	return b.Bytes(), true
}
