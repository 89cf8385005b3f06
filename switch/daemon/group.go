package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/group"
	"github.com/dienbao/dienbao/switch/monitor"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// Group is the [group] table: this switchd is one node of a replicated
// switch (docs/DESIGN.md, "A replicated switch"). Absent, the switch is a
// single node, exactly as without it.
//
//	[group]
//	node = 1                                   # this node's ID: one of the members'
//
//	[[group.members]]                          # every member, this one included
//	id         = 1
//	name       = "HN-1"                        # the name on its switch certificate
//	address    = "10.0.0.1:4433"               # where terminals, operators and auditors reach it
//	group_address = "10.0.0.1:4533"            # where the other nodes reach it
type Group struct {
	Node    uint64        `toml:"node"`
	Members []GroupMember `toml:"members"`
	// ProposeTimeout bounds how long a commit waits for a quorum (default 5s).
	ProposeTimeout Duration `toml:"propose_timeout"`
	// Tick is Raft's clock tick (default 100ms): a leader silent for 10 to
	// 20 ticks is replaced.
	Tick Duration `toml:"tick"`
	// SnapshotEvery is how many entries make Raft's log compact (default 2000).
	SnapshotEvery uint64 `toml:"snapshot_every"`
	// KeepEntries stay in the log behind a snapshot, for a follower a
	// little behind (default 500); one further behind is sent a snapshot.
	KeepEntries uint64 `toml:"keep_entries"`
	// Join: this node joins a group that runs already, which an operator
	// told of it first (tg group add); its members list the group as it
	// is now, this node included. Without it, a node's first start
	// founds the group with its members.
	Join bool `toml:"join"`
}

// GroupMember is one [[group.members]] entry.
type GroupMember struct {
	ID           uint64 `toml:"id"`
	Name         string `toml:"name"`
	Address      string `toml:"address"`
	GroupAddress string `toml:"group_address"`
}

func (g Group) enabled() bool { return g.Node != 0 || len(g.Members) > 0 }

func (g Group) members() ([]group.Member, error) {
	const op = "config"
	if g.Node == 0 {
		return nil, fault.E(op, fault.Invalid, "[group] needs this node's ID (node)")
	}
	if len(g.Members) < 3 || len(g.Members)%2 == 0 {
		return nil, fault.Errorf(op, fault.Invalid, "[group] needs an odd number of members, three or more (it has %d): a group of two stops when either stops", len(g.Members))
	}
	seen := map[uint64]bool{}
	var out []group.Member
	self := false
	for _, m := range g.Members {
		if m.ID == 0 || m.Name == "" || m.Address == "" || m.GroupAddress == "" {
			return nil, fault.E(op, fault.Invalid, "[[group.members]] each needs id, name, address and group_address")
		}
		if seen[m.ID] {
			return nil, fault.Errorf(op, fault.Invalid, "[[group.members]] id %d appears twice", m.ID)
		}
		seen[m.ID] = true
		self = self || m.ID == g.Node
		out = append(out, group.Member{ID: m.ID, Name: m.Name, Addr: m.Address, Raft: m.GroupAddress})
	}
	if !self {
		return nil, fault.Errorf(op, fault.Invalid, "[group] node %d is not among its members", g.Node)
	}
	return out, nil
}

// groupRun is what a node's server is started with while it leads.
type groupRun struct {
	node   *group.Node
	rep    *store.Replica
	fenced chan struct{}
	src    *groupSource
}

// runGroup runs one node of a replicated switch: it follows the group,
// and serves while it leads. A follower answers every connection with
// "not leader" and the leader's address (the client follows it).
func runGroup(ctx context.Context, o Options) error {
	cfg := o.Config
	log := o.Logger
	members, err := cfg.Group.members()
	if err != nil {
		return err
	}
	ring, err := OpenKeyring(cfg)
	if err != nil {
		return err
	}
	pair, pool, cas, err := loadSwitchTLS(cfg)
	if err != nil {
		return err
	}
	var revoked func(*x509.Certificate) bool
	if cfg.CRL != "" {
		// Read once at start: a member revoked later is refused from its
		// next start (the terminals' side reloads it: server.ReloadCRL).
		if data, err := os.ReadFile(cfg.CRL); err == nil {
			if crl, err := certs.ParseCRL(data, cas); err == nil {
				revoked = crl.Revoked
			}
		}
	}
	rep, err := store.OpenReplica(StoreDir(cfg), ring)
	if err != nil {
		return err
	}
	defer rep.Close()
	node, err := group.Start(group.Config{ID: cfg.Group.Node, Members: members, Dir: filepath.Join(cfg.Data, "group"), Replica: rep,
		Keyring: ring, Logger: log.Named("group"), TLS: group.TLS{Cert: pair, CAs: pool, Revoked: revoked},
		Tick: time.Duration(cfg.Group.Tick), SnapshotEvery: cfg.Group.SnapshotEvery, KeepEntries: cfg.Group.KeepEntries, ProposeTimeout: time.Duration(cfg.Group.ProposeTimeout),
		Join: cfg.Group.Join})
	if err != nil {
		return err
	}
	defer node.Stop()
	defer node.Settle(5 * time.Second)
	// A node that cannot write its log or records stops: the process
	// exits with why, and its supervisor starts it again.
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	go func() {
		select {
		case <-node.Failed():
			fail(node.Err())
		case <-ctx.Done():
		}
	}()
	self := node.Self()
	log.Info("group node started", zap.Uint64("node", self.ID), zap.String("name", self.Name), zap.String("group_address", self.Raft),
		zap.Int("members", len(members)))
	gr := &groupRun{node: node, rep: rep, fenced: make(chan struct{}, 1), src: newGroupSource(node, cfg.Name, log)}
	if cfg.HTTP != "" {
		// One monitoring listener for the node's life: the group's
		// figures always, the switch's while it leads.
		ml, err := monitor.ListenMonitoring(cfg.HTTP, gr.src, log)
		if err != nil {
			return fault.E("switchd", fault.Unavailable, "cannot listen on "+cfg.HTTP+" for monitoring", err)
		}
		defer ml.Close()
		log.Info("monitoring listener", zap.String("addr", ml.Addr().String()))
	}
	for ctx.Err() == nil {
		serving, changed := node.Serving()
		if !serving {
			red, err := redirect(cfg.Listen, pair, pool, node, log)
			if err != nil {
				log.Warn("cannot answer terminals while following", zap.Error(err))
			}
			gc := time.NewTicker(time.Minute)
		follow:
			for {
				select {
				case <-ctx.Done():
					break follow
				case <-changed:
					break follow
				case <-gc.C:
					rep.CollectGarbage()
				}
			}
			gc.Stop()
			if red != nil {
				red.Close()
			}
			continue
		}
		if err := serveLeading(ctx, o, gr, changed); err != nil && ctx.Err() == nil {
			log.Error("the node could not serve as leader; it waits to lead again", zap.Error(err))
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fault.E("switchd", fault.Internal, "this node stopped following its group", err)
	}
	return nil
}

// serveLeading serves terminals while this node leads; it returns when
// the node stops leading, a commit fails to replicate (the store is then
// fenced: it is opened again from the records), or ctx ends.
func serveLeading(ctx context.Context, o Options, gr *groupRun, changed <-chan struct{}) error {
	select {
	case <-gr.fenced:
	default:
	}
	o.group = gr
	srv, err := Start(o)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gr.src.serve(srv)
	defer gr.src.serve(nil)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx) }()
	select {
	case <-ctx.Done():
	case <-changed:
		o.Logger.Info("this node no longer leads its group; it stops serving")
	case <-gr.fenced:
		o.Logger.Warn("a commit was not replicated; the store is opened again from the records")
	case err := <-done:
		return err
	}
	cancel()
	return <-done
}

// replicate is the store's Replicate on a node: a failure fences the
// store and tells the node's loop to open it again.
func (gr *groupRun) replicate(entry []byte) error {
	err := gr.node.Propose(entry)
	if err != nil {
		select {
		case gr.fenced <- struct{}{}:
		default:
		}
	}
	return err
}

// codeNotLeader closes a connection to a follower: the message names the
// leader (wire.NotLeaderPrefix).
const codeNotLeader = 0x16

// redirect answers every terminal, operator or auditor that reaches a
// follower: after the handshake (a certificate of the network's CA is
// required, so that strangers learn nothing of the group), the
// connection is closed with "not leader" and where the leader is.
func redirect(addr string, pair tls.Certificate, pool *x509.CertPool, node *group.Node, log *zap.Logger) (*quic.Listener, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS13, CurvePreferences: wire.KeyExchanges, Certificates: []tls.Certificate{pair},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, NextProtos: []string{wire.ALPN}}
	ln, err := quic.ListenAddr(addr, conf, &quic.Config{HandshakeIdleTimeout: 5 * time.Second, MaxIdleTimeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			msg := wire.NotLeaderPrefix + "no leader now: this node cannot reach a quorum of its group, retry shortly"
			if m, ok := node.Leader(); ok && m.ID != node.Self().ID {
				msg = fmt.Sprintf("%sthe leader is %s at %s", wire.NotLeaderPrefix, m.Name, m.Addr)
			}
			conn.CloseWithError(codeNotLeader, msg)
		}
	}()
	log.Debug("following: answering terminals with the leader's address", zap.String("addr", addr))
	return ln, nil
}
