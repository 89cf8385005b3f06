// Package monitor is the switch's read-only monitoring listener: Prometheus
// metrics at /metrics, /healthz and /readyz, and the operators' web console
// (an embedded page, no build step) with its JSON state at /api/state and a
// server-sent event stream of it at /api/events. It never shows a subject
// or a body: what it shows is what tg queues, tg sessions and the overdue
// list show. It listens on loopback unless told otherwise, and has no
// authentication of its own: put it behind the site's access control if it
// must leave the host.
package monitor

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

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
}

// Source is the running switch, as the monitor sees it.
type Source interface {
	State() (State, error)
	Ready() bool
	Metrics() prometheus.Gatherer
}

//go:embed console.html
var assets embed.FS

// Handler serves the monitoring endpoints for src.
func Handler(src Source, log *zap.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(src.Metrics(), promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(log)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !src.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("GET /api/state", func(w http.ResponseWriter, _ *http.Request) {
		st, err := src.State()
		if err != nil {
			http.Error(w, "cannot read the switch's state", http.StatusInternalServerError)
			log.Error("monitor state", zap.Error(err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("GET /api/events", func(w http.ResponseWriter, r *http.Request) { events(w, r, src, log) })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		http.ServeFileFS(w, r, assets, "console.html")
	})
	return mux
}

// events streams the state once a second as server-sent events.
func events(w http.ResponseWriter, r *http.Request, src Source, log *zap.Logger) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		st, err := src.State()
		if err != nil {
			log.Error("monitor state", zap.Error(err))
		} else {
			b, _ := json.Marshal(st)
			if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
				return
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

// Listener is a running monitoring listener.
type Listener struct {
	srv    *http.Server
	ln     net.Listener
	cancel context.CancelFunc // ends event streams
}

// Listen starts the monitoring listener on addr.
func Listen(addr string, src Source, log *zap.Logger) (*Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{ln: ln, cancel: cancel, srv: &http.Server{Handler: Handler(src, log), ReadHeaderTimeout: 10 * time.Second,
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
