// Package monitor is the switch's read-only monitoring listener: Prometheus
// metrics at /metrics, /healthz and /readyz, and the operators' web console
// (an embedded page, no build step), built for a national directory: a
// bounded summary (the problems, most urgent first, and counts by level)
// at /api/state and as a server-sent event stream at /api/events, a paged,
// searchable agency list, one agency's page, and charts of the last hour
// (console.go derives them from one State for every viewer; hub.go reads
// the State at most once a second, caps the viewers and samples the
// counters). It never shows a subject or a body. It listens on loopback
// unless told otherwise, and has no authentication of its own: put it
// behind the site's access control if it must leave the host.
package monitor

import (
	"context"
	"crypto/tls"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// State is what the console shows.
type State struct {
	Switch    string                `json:"switch"`
	Queues    []QueueRow            `json:"queues"`
	Overdue   []OverdueRow          `json:"overdue"`
	Sessions  []Session             `json:"sessions"`
	Totals    Totals                `json:"totals"`
	Targets   map[string]float64    `json:"targets"` // speed-of-service target per precedence, seconds
	Agencies  map[string]AgencyInfo `json:"agencies"`
	Minimize  []string              `json:"minimize"`            // the MINIMIZE declarations in force, one line each
	Admission string                `json:"admission,omitempty"` // what admission control limits, if anything
	// Group is the replicated switch's group, if it is one: the node
	// answering, its role and the members as it sees them.
	Group *GroupState `json:"group,omitempty"`
	// Unlisted: agencies no longer in the directory with custody.
	Unlisted []telegram.Address `json:"unlisted,omitempty"`
	// LastSeen: when a terminal of an agency last disconnected (this run).
	LastSeen map[telegram.Address]time.Time `json:"-"`
	// Links: a network's links to peer switches.
	Links []Link `json:"links,omitempty"`
	// Notices: the open incident notices.
	Notices []Notice `json:"notices,omitempty"`
}

// Notice is an open incident notice (tg notice).
type Notice struct {
	Number  uint64    `json:"number"`
	Affects string    `json:"affects"` // an address prefix, or link:PEER
	Until   time.Time `json:"until"`
	Text    string    `json:"text"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
}

// Link is one link to a peer switch.
type Link struct {
	Peer    string    `json:"peer"`
	State   string    `json:"state"` // up, down, held
	Since   time.Time `json:"since"`
	Waiting [4]int    `json:"waiting"` // FLASH first
}

// GroupState is a replicated switch's group, as one node sees it.
type GroupState struct {
	Node    uint64        `json:"node"`
	State   string        `json:"state"`
	Leader  uint64        `json:"leader"`
	Term    uint64        `json:"term"`
	Commit  uint64        `json:"commit"`
	Applied uint64        `json:"applied"`
	Members []GroupMember `json:"members"`
}

// GroupMember is one member of the group.
type GroupMember struct {
	ID          uint64  `json:"id"`
	Name        string  `json:"name"`
	Address     string  `json:"address"`
	Leader      bool    `json:"leader"`
	Lag         uint64  `json:"lag"`
	LastContact float64 `json:"last_contact_seconds"` // -1: never heard from (or itself)
}

// AgencyInfo is one agency of the directory.
type AgencyInfo struct {
	Name  string `json:"name"`
	Level string `json:"level"`
	// Closing: "draining" or "moved to ADDR", as the directory says.
	Closing string `json:"closing,omitempty"`
}

// Source is the running switch, as the monitor sees it.
type Source interface {
	// State is a snapshot of every agency's figures and the sessions:
	// the monitor computes what it serves from it, once for all viewers.
	State() (State, error)
	// Counters are the cheap running totals, sampled for the charts.
	Counters() Totals
	Ready() bool
	Metrics() prometheus.Gatherer
}

// EventSource is a Source that can also list an agency's recent audit
// entries, as an operator may see them (the agency page).
type EventSource interface {
	AgencyEvents(a telegram.Address, n int) ([]Event, error)
}

// Event is one audit entry on an agency's page: never a subject or body;
// other agencies of a telegram are not named.
type Event struct {
	Index uint64      `json:"index"`
	At    time.Time   `json:"at"`
	Event string      `json:"event"`
	Actor string      `json:"actor"`
	ID    telegram.ID `json:"id,omitzero"`
	Role  string      `json:"role"` // the agency is the telegram's "sender" or "addressee"
}

//go:embed console.html
var assets embed.FS

// Options say what a listener serves and to whom.
type Options struct {
	Metrics bool // /metrics, /healthz, /readyz
	Console bool // the console and its API
	// TLS, if set, makes the listener HTTPS.
	TLS *tls.Config
	// Authorize, if set, lets a request in or says why not (403); it
	// returns who is let in, and what of the network they may see.
	Authorize func(*http.Request) (Viewer, error)
	// Hosts, if set, are the Host header values answered (421 otherwise:
	// no DNS rebinding).
	Hosts []string
}

// Handler serves the monitoring endpoints and the console for src.
func Handler(src Source, log *zap.Logger) http.Handler {
	h, _ := handler(src, log, Options{Metrics: true, Console: true})
	return h
}

func handler(src Source, log *zap.Logger, o Options) (http.Handler, *hub) {
	hb := newHub(src, log)
	mux := http.NewServeMux()
	if o.Metrics {
		mux.Handle("GET /metrics", promhttp.HandlerFor(src.Metrics(), promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(log)}))
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			if !src.Ready() {
				http.Error(w, "not ready", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ready")
		})
	}
	if !o.Console {
		return guard(mux, o, log), hb
	}
	withView := func(fn func(w http.ResponseWriter, r *http.Request, v *view)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			v, err := hb.viewFor(viewerOf(r))
			if v == nil {
				http.Error(w, "cannot read the switch's state", http.StatusInternalServerError)
				log.Error("monitor state", zap.Error(err))
				return
			}
			fn(w, r, v)
		}
	}
	mux.HandleFunc("GET /api/state", withView(func(w http.ResponseWriter, _ *http.Request, v *view) { writeJSON(w, v.summary) }))
	mux.HandleFunc("GET /api/agencies", withView(func(w http.ResponseWriter, r *http.Request, v *view) {
		q := r.URL.Query()
		offset, _ := strconv.Atoi(q.Get("offset"))
		limit, _ := strconv.Atoi(q.Get("limit"))
		writeJSON(w, v.list(ListQuery{Search: q.Get("q"), Level: q.Get("level"), Filter: q.Get("filter"), Sort: q.Get("sort"), Offset: offset, Limit: limit}))
	}))
	mux.HandleFunc("GET /api/agency/{addr}", withView(func(w http.ResponseWriter, r *http.Request, v *view) {
		p, ok := v.page(r.PathValue("addr"))
		if !ok {
			http.Error(w, "no such agency", http.StatusNotFound)
			return
		}
		if es, ok := src.(EventSource); ok {
			if evs, err := es.AgencyEvents(telegram.Address(p.Agency), 20); err == nil {
				p.Events = append(p.Events, evs...)
			} else {
				log.Error("agency events", zap.Error(err))
			}
		}
		writeJSON(w, p)
	}))
	mux.HandleFunc("GET /api/chart/{what}", func(w http.ResponseWriter, r *http.Request) {
		svg, ok := hb.chart(strings.TrimSuffix(r.PathValue("what"), ".svg"))
		if !ok {
			http.Error(w, "no such chart (rates.svg, latency.svg)", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(svg)
	})
	mux.HandleFunc("GET /api/events", hb.events)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Frame-Options", "DENY")
		http.ServeFileFS(w, r, assets, "console.html")
	})
	return guard(mux, o, log), hb
}

// guard answers only the hosts allowed, only reads, and only whom
// Authorize lets in.
func guard(h http.Handler, o Options, log *zap.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if len(o.Hosts) > 0 {
			host := r.Host
			if hp, _, err := net.SplitHostPort(host); err == nil {
				host = hp
			}
			if !slices.Contains(o.Hosts, strings.Trim(host, "[]")) {
				http.Error(w, "this console answers to "+strings.Join(o.Hosts, ", ")+", not "+r.Host, http.StatusMisdirectedRequest)
				return
			}
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "the console is read-only", http.StatusMethodNotAllowed)
			return
		}
		if o.Authorize != nil {
			who, err := o.Authorize(r)
			if err != nil {
				http.Error(w, "refused: "+err.Error(), http.StatusForbidden)
				return
			}
			log.Debug("console request", zap.String("who", who.Name), zap.String("path", r.URL.Path))
			r = r.WithContext(context.WithValue(r.Context(), viewerKey{}, who))
		}
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// Listener is a running monitoring listener.
type Listener struct {
	srv    *http.Server
	ln     net.Listener
	cancel context.CancelFunc // ends event streams
}

// Listen starts the monitoring listener on addr: metrics, health and the
// console over plain HTTP (dev mode, tests: on loopback).
func Listen(addr string, src Source, log *zap.Logger) (*Listener, error) {
	return ListenWith(addr, src, log, Options{Metrics: true, Console: true})
}

// ListenMonitoring starts the plain HTTP monitoring listener of a
// production switch: metrics and health always, the console only when
// addr is a loopback address (elsewhere the console is HTTPS with client
// certificates: ListenWith).
func ListenMonitoring(addr string, src Source, log *zap.Logger) (*Listener, error) {
	return ListenWith(addr, src, log, Options{Metrics: true, Console: loopback(addr)})
}

// loopback says whether addr (HOST:PORT) is on loopback only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// ListenWith starts a listener on addr serving what o says.
func ListenWith(addr string, src Source, log *zap.Logger, o Options) (*Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if o.TLS != nil {
		ln = tls.NewListener(ln, o.TLS)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h, hb := handler(src, log, o)
	go hb.run(ctx)
	l := &Listener{ln: ln, cancel: cancel, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}}
	go func() {
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("monitoring listener stopped", zap.Error(err))
		}
	}()
	return l, nil
}

// Addr is the address it listens on.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Close stops it.
func (l *Listener) Close() error {
	l.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return l.srv.Shutdown(ctx)
}

// Viewer is who looks at the console: a name for the log, and, for an
// operator limited to part of the network, its scope (a key naming it,
// and which agencies are in it).
type Viewer struct {
	Name  string
	Scope string
	In    func(telegram.Address) bool // nil: the whole network
	// Link says whether a link to a peer switch is in scope (with In).
	Link func(peer string) bool
}

type viewerKey struct{}

func viewerOf(r *http.Request) Viewer {
	v, _ := r.Context().Value(viewerKey{}).(Viewer)
	return v
}
