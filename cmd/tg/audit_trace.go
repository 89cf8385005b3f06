package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// auditTraceCmd follows a telegram across a network of switches: it asks
// the identity's switch for the telegram's proof bundle, reads from its
// entries which switches the telegram came from and went to (received,
// relayed), asks each of those it has an address for, and so on. Each
// switch's bundle is checked against that switch's signed checkpoint and
// can be written out, to be checked offline with tg audit check-proof.
type auditTraceCmd struct {
	ID       string   `arg:"" help:"Telegram ID."`
	Switches []string `name:"switch" placeholder:"NAME=HOST:PORT" help:"Where a switch of the network listens (repeatable): the trace asks every switch on the telegram's way that it has an address for."`
	Out      string   `type:"path" help:"Write each switch's proof bundle into this folder (ID-SWITCH.json)."`
}

// traceHop is one switch's part of a trace, as --json prints it.
type traceHop struct {
	Switch  string        `json:"switch"` // its name in the network (as its neighbours name it), or its log's origin
	Address string        `json:"address"`
	Origin  string        `json:"origin"` // the log's origin, from its signed checkpoint
	Size    uint64        `json:"log_size"`
	Entries []audit.Entry `json:"entries"`
	From    []string      `json:"from,omitempty"` // switches it received the telegram from
	To      []string      `json:"to,omitempty"`   // switches it relayed it to
	Bundle  string        `json:"bundle,omitempty"`
	Error   string        `json:"error,omitempty"`
}

func (c *auditTraceCmd) Run(e *env) error {
	id, err := telegram.ParseID(c.ID)
	if err != nil {
		return err
	}
	f, err := e.folder()
	if err != nil {
		return err
	}
	addrs := map[string]string{}
	for _, s := range c.Switches {
		name, addr, ok := strings.Cut(s, "=")
		if !ok || name == "" || addr == "" {
			return fault.Errorf("audit", fault.Invalid, "--switch %q: give NAME=HOST:PORT", s)
		}
		addrs[name] = addr
	}
	if c.Out != "" {
		if err := os.MkdirAll(c.Out, 0o755); err != nil {
			return fault.E("audit", fault.Internal, "cannot create "+c.Out, err)
		}
	}
	// The identity's own switch first (named as --switch names its
	// address, else by its log's origin), then every switch its entries
	// name, breadth first.
	start := ""
	for name, a := range addrs {
		if a == f.Switch {
			start = name
		}
	}
	var hops []*traceHop
	seen := map[string]bool{start: true}
	queue := []*traceHop{{Switch: start, Address: f.Switch}}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		hops = append(hops, h)
		if h.Address == "" {
			continue
		}
		c.ask(e, f, id, h)
		for _, next := range slices.Concat(h.From, h.To) {
			if seen[next] {
				continue
			}
			seen[next] = true
			n := &traceHop{Switch: next, Address: addrs[next]}
			if n.Address == "" {
				n.Error = "not asked: give --switch " + next + "=HOST:PORT"
			}
			queue = append(queue, n)
		}
	}
	if e.json {
		for _, h := range hops {
			if err := e.emit(h); err != nil {
				return err
			}
		}
	} else {
		for _, h := range hops {
			if h.Error != "" {
				fmt.Fprintf(e.stdout, "%s: %s\n", h.Switch, e.line(h.Error))
				continue
			}
			fmt.Fprintf(e.stdout, "%s (%s): %d entries, each proven in the log %s of %d entries\n", h.Switch, h.Address, len(h.Entries), h.Origin, h.Size)
			printEntries(e, h.Entries)
			if h.Bundle != "" {
				fmt.Fprintf(e.stdout, "  bundle: %s (tg audit check-proof %s)\n", h.Bundle, h.Bundle)
			}
		}
	}
	failed := 0
	for _, h := range hops {
		if h.Error != "" {
			failed++
		}
	}
	if failed > 0 {
		return fault.Errorf("audit", fault.Unavailable, "%d of the %d switches on the telegram's way were not traced", failed, len(hops))
	}
	return nil
}

// ask fills h from its switch: the proof bundle of the telegram's entries,
// checked against the switch's signed checkpoint, and the switches they
// name (received from, relayed to).
func (c *auditTraceCmd) ask(e *env, f *certs.Folder, id telegram.ID, h *traceHop) {
	g := *f
	g.Switch = h.Address
	cl, err := client.Dial(e.ctx, &g)
	if err != nil {
		h.Error = err.Error()
		return
	}
	defer cl.Close()
	b, err := cl.AuditProof(e.ctx, id)
	if err != nil {
		h.Error = err.Error()
		return
	}
	cp, entries, err := b.Check("")
	if err != nil {
		h.Error = "its proof does not verify: " + err.Error()
		return
	}
	h.Origin, h.Size, h.Entries = cp.Origin, cp.Size, entries
	if h.Switch == "" {
		h.Switch = cp.Origin
	}
	for _, en := range entries {
		switch en.Event {
		case audit.Received:
			if !slices.Contains(h.From, en.Actor) {
				h.From = append(h.From, en.Actor)
			}
		case audit.Relayed:
			if !slices.Contains(h.To, en.Actor) {
				h.To = append(h.To, en.Actor)
			}
		}
	}
	if c.Out != "" {
		data, err := json.MarshalIndent(b, "", "  ")
		if err == nil {
			name := strings.NewReplacer("/", "-", " ", "-").Replace(h.Switch)
			h.Bundle = filepath.Join(c.Out, fmt.Sprintf("%s-%s.json", id, name))
			err = os.WriteFile(h.Bundle, append(data, '\n'), 0o644)
		}
		if err != nil {
			h.Error = "cannot write its bundle: " + err.Error()
		}
	}
}
