package group

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"sync"
	"time"

	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/fault"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// Member is one node of the group.
type Member struct {
	ID   uint64 // Raft's node ID, 1 or more, unique in the group
	Name string // the name on its switch certificate
	Addr string // where terminals, operators and auditors reach it (HOST:PORT, UDP)
	Raft string // where the other nodes reach it (HOST:PORT, UDP)
}

// Config configures a node.
type Config struct {
	ID      uint64
	Members []Member
	Dir     string // the node's group folder: its Raft log (raft/)
	Replica *store.Replica
	Keyring *crypto.Keyring
	TLS     TLS
	Logger  *zap.Logger
	// Tick is Raft's clock tick (default 100 ms); a follower that hears
	// nothing from a leader for 10 to 20 ticks stands for election.
	Tick time.Duration
	// SnapshotEvery is how many applied entries make Raft's log compact
	// (default 2,000); KeepEntries stay behind a snapshot for followers a
	// little behind (default 500).
	SnapshotEvery, KeepEntries uint64
	// ProposeTimeout bounds how long a commit waits for a quorum
	// (default 5 s).
	ProposeTimeout time.Duration
	// Join: this node joins a group that exists (it was added with
	// AddMember) instead of starting one with Members.
	Join bool
}

// Node is one node of a replicated switch: a Raft member that applies the
// group's entries to its records (store.Replica) and, while it leads,
// proposes the entries of the store it serves from.
type Node struct {
	cfg  Config
	log  *zap.Logger
	rn   raft.Node
	ls   *logStore
	tr   *transport
	stop chan struct{}
	done chan struct{}

	snaps chan snapIn // snapshots received, loaded by the run loop
	// failed is closed when the node cannot go on (err says why).
	failed chan struct{}
	err    error
	// logBytes: entry bytes appended since the last compaction (run loop).
	logBytes int

	mu        sync.Mutex
	members   map[uint64]Member
	pending   map[uint64]chan error // proposals waiting to be applied
	applied   uint64
	leadIndex uint64 // this node's first entry as leader (0: not leading)
	serving   bool   // leading with everything applied
	cs        *pb.ConfState
	snapIndex uint64
	// confChanged: the members changed since the last snapshot (run loop).
	confChanged bool
	// isLeader: Raft's state is leader (run loop).
	isLeader bool
	contact  map[uint64]time.Time // last message from each member
	watch    chan struct{}        // closed and replaced when serving changes
}

type snapIn struct {
	msg  *pb.Message
	r    io.Reader
	done chan error
}

// ErrNotLeader: this node does not lead the group now.
var ErrNotLeader = fault.E("group", fault.Unavailable, "this node does not lead its group")

// Start opens the node's Raft log and joins the group: the first start of
// a member of the initial group bootstraps it with all the members;
// later starts take up the log where it was.
func Start(cfg Config) (*Node, error) {
	if cfg.Tick <= 0 {
		cfg.Tick = 100 * time.Millisecond
	}
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = 2000
	}
	if cfg.KeepEntries == 0 {
		cfg.KeepEntries = 500
	}
	if cfg.ProposeTimeout <= 0 {
		cfg.ProposeTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	n := &Node{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), done: make(chan struct{}),
		snaps: make(chan snapIn), failed: make(chan struct{}), members: map[uint64]Member{}, pending: map[uint64]chan error{},
		contact: map[uint64]time.Time{}, watch: make(chan struct{})}
	for _, m := range cfg.Members {
		n.members[m.ID] = m
	}
	if _, ok := n.members[cfg.ID]; !ok {
		return nil, fault.Errorf("group", fault.Invalid, "node %d is not among the group's members", cfg.ID)
	}
	ls, err := openLog(filepath.Join(cfg.Dir, "raft"), cfg.Keyring)
	if err != nil {
		return nil, fault.E("group", fault.Internal, "cannot open the node's Raft log", err)
	}
	n.ls = ls
	applied, err := cfg.Replica.Applied()
	if err != nil {
		ls.close()
		return nil, fault.E("group", fault.Integrity, "cannot read the node's applied index", err)
	}
	snap, _ := ls.mem.Snapshot()
	n.snapIndex = snap.GetMetadata().GetIndex()
	n.cs = snap.GetMetadata().GetConfState()
	if applied < n.snapIndex {
		ls.close()
		return nil, fault.Errorf("group", fault.Integrity, "this node's records (applied to entry %d) are behind its Raft log's snapshot (entry %d): "+
			"they were lost or restored from an old copy. Remove the node from the group (tg group remove %d), empty its data folder, "+
			"add it back under a new ID (tg group add) and start it with join = true: it is sent the records", applied, n.snapIndex, cfg.ID)
	}
	// Records loaded from a snapshot may be ahead of what this node's log
	// knows to be committed: Raft takes up from the commit index (the
	// entries between are applied again, which changes nothing).
	if hs, _, _ := ls.mem.InitialState(); applied > hs.GetCommit() {
		applied = hs.GetCommit()
	}
	n.applied = applied
	rc := &raft.Config{ID: cfg.ID, ElectionTick: 10, HeartbeatTick: 1, Storage: ls.mem,
		MaxSizePerMsg: 4 << 20, MaxInflightMsgs: 64, CheckQuorum: true, PreVote: true,
		DisableProposalForwarding: true, Applied: applied, Logger: raftLogger{n.log.Sugar()}}
	tr, err := newTransport(n, cfg.TLS)
	if err != nil {
		ls.close()
		return nil, err
	}
	n.tr = tr
	if ls.hasState() || cfg.Join {
		// A node joining an existing group starts with no members: the
		// leader, which was told of it (AddMember), sends it the log or a
		// snapshot, and with it the group's membership.
		n.rn = raft.RestartNode(rc)
	} else {
		var peers []raft.Peer
		for _, m := range cfg.Members {
			peers = append(peers, raft.Peer{ID: m.ID})
		}
		n.rn = raft.StartNode(rc, peers)
	}
	tr.start()
	go n.run()
	return n, nil
}

// run is the node's loop: Raft's ticks and Ready, snapshots received.
func (n *Node) run() {
	defer close(n.done)
	t := time.NewTicker(n.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			n.rn.Stop()
			return
		case <-t.C:
			n.rn.Tick()
		case s := <-n.snaps:
			s.done <- n.loadSnapshot(s)
		case rd := <-n.rn.Ready():
			if err := n.ready(rd); err != nil {
				n.log.Error("the node cannot go on: its Raft log or records could not be written", zap.Error(err))
				n.mu.Lock()
				n.err = err
				n.mu.Unlock()
				n.setServing(false)
				n.failPending(err)
				close(n.failed)
				<-n.stop
				n.rn.Stop()
				return
			}
			n.rn.Advance()
		}
	}
}

func (n *Node) ready(rd raft.Ready) error {
	if rd.SoftState != nil {
		n.softState(rd.SoftState)
		n.isLeader = rd.SoftState.RaftState == raft.StateLeader
	}
	// A leader sends its entries to the followers while it writes them to
	// its own log (Raft thesis, 10.2.1; as etcd does): its own
	// acknowledgement counts only once they are written (Raft holds it
	// until Advance). Others write first, then answer.
	sent := n.isLeader
	if sent {
		n.tr.send(rd.Messages)
	}
	if err := n.ls.save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
		return err
	}
	for _, e := range rd.Entries {
		n.logBytes += len(e.GetData())
	}
	if rd.SoftState != nil && rd.SoftState.RaftState == raft.StateLeader && n.leadIndexUnset() {
		last, _ := n.ls.mem.LastIndex()
		n.mu.Lock()
		n.leadIndex = last
		n.mu.Unlock()
	}
	if rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) {
		n.mu.Lock()
		n.applied = max(n.applied, rd.Snapshot.GetMetadata().GetIndex())
		n.snapIndex = rd.Snapshot.GetMetadata().GetIndex()
		n.cs = rd.Snapshot.GetMetadata().GetConfState()
		n.mu.Unlock()
	}
	if !sent {
		n.tr.send(rd.Messages)
	}
	for _, e := range rd.CommittedEntries {
		if err := n.apply(e); err != nil {
			return err
		}
	}
	n.checkServing()
	return n.maybeCompact()
}

func (n *Node) leadIndexUnset() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leadIndex == 0
}

func (n *Node) softState(ss *raft.SoftState) {
	if ss.RaftState != raft.StateLeader {
		n.mu.Lock()
		n.leadIndex = 0
		n.mu.Unlock()
		n.setServing(false)
		n.failPending(ErrNotLeader)
	}
}

// apply applies one committed entry to the node's records.
func (n *Node) apply(e *pb.Entry) error {
	var id uint64
	var data []byte
	switch e.GetType() {
	case pb.EntryType_EntryNormal:
		if d := e.GetData(); len(d) >= 8 {
			id, data = binary.BigEndian.Uint64(d), d[8:]
		}
	case pb.EntryType_EntryConfChange:
		var cc pb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return err
		}
		n.confChange(&cc)
		n.confChanged = true
	}
	if err := n.cfg.Replica.ApplyEntry(e.GetIndex(), data); err != nil {
		return err
	}
	n.mu.Lock()
	n.applied = e.GetIndex()
	ch := n.pending[id]
	delete(n.pending, id)
	n.mu.Unlock()
	if ch != nil {
		ch <- nil
	}
	return nil
}

// maybeCompact compacts Raft's log every SnapshotEvery entries.
func (n *Node) maybeCompact() error {
	n.mu.Lock()
	applied, snapIndex, cs := n.applied, n.snapIndex, n.cs
	n.mu.Unlock()
	// Records loaded from a snapshot may be ahead of the log until Raft
	// has taken the snapshot's message.
	if last, _ := n.ls.mem.LastIndex(); applied > last {
		applied = last
	}
	if applied < snapIndex+n.cfg.SnapshotEvery && n.logBytes < maxLogBytes && !(n.confChanged && applied > snapIndex) {
		return nil
	}
	// After a change of members, at once: a snapshot sent to a new
	// member must name it among the members, or it refuses it.
	n.confChanged = false
	if cs == nil {
		cs = n.confState()
	}
	keep := n.keepFrom(applied)
	// The records are applied without an fsync each: make them durable
	// before the log that could replay them is cut.
	if err := n.cfg.Replica.Sync(); err != nil {
		return err
	}
	if err := n.ls.compact(applied, keep, cs); err != nil {
		return err
	}
	n.mu.Lock()
	n.snapIndex = applied
	n.mu.Unlock()
	n.logBytes = 0
	return nil
}

// Raft's log is held in memory (raft.MemoryStorage) between compactions:
// maxLogBytes of entries make it compact whatever their number, and at
// most keepBytes stay behind a snapshot. Entries are commits, bounded by
// Badger's transaction size; with large bodies a few hundred are
// megabytes each.
const (
	maxLogBytes = 64 << 20
	keepBytes   = 16 << 20
)

// keepFrom is the first entry to keep when compacting at applied: at most
// KeepEntries and keepBytes of them.
func (n *Node) keepFrom(applied uint64) uint64 {
	first, _ := n.ls.mem.FirstIndex()
	keep := max(first, applied+1-min(applied, n.cfg.KeepEntries))
	ents, err := n.ls.mem.Entries(keep, applied+1, math.MaxUint64)
	if err != nil {
		return applied
	}
	size := 0
	for i := len(ents) - 1; i >= 0; i-- {
		if size += len(ents[i].GetData()); size > keepBytes {
			return ents[i].GetIndex() + 1
		}
	}
	return keep
}

func (n *Node) confState() *pb.ConfState {
	st := n.rn.Status()
	cs := &pb.ConfState{}
	for id := range st.Config.Voters.IDs() {
		cs.Voters = append(cs.Voters, id)
	}
	return cs
}

// checkServing marks the node serving once, leading, it has applied its
// own first entry: everything committed before it leads is in its records.
func (n *Node) checkServing() {
	n.mu.Lock()
	ok := n.leadIndex > 0 && n.applied >= n.leadIndex
	n.mu.Unlock()
	if ok {
		n.setServing(true)
	}
}

func (n *Node) setServing(on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.serving == on {
		return
	}
	n.serving = on
	close(n.watch)
	n.watch = make(chan struct{})
}

// Failed is closed when the node could not write its log or records and
// stopped following the group; Err says why.
func (n *Node) Failed() <-chan struct{} { return n.failed }

// Err is why the node failed (nil until it has).
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

// Serving says whether this node leads with everything applied, and gives
// a channel closed when that changes.
func (n *Node) Serving() (bool, <-chan struct{}) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.serving, n.watch
}

func (n *Node) failPending(err error) {
	n.mu.Lock()
	p := n.pending
	n.pending = map[uint64]chan error{}
	n.mu.Unlock()
	for _, ch := range p {
		ch <- err
	}
}

// Propose replicates one store entry: it returns once a quorum holds it
// durably and this node has applied it (store.Options.Replicate).
func (n *Node) Propose(entry []byte) error {
	var idb [8]byte
	rand.Read(idb[:])
	id := binary.BigEndian.Uint64(idb[:])
	ch := make(chan error, 1)
	n.mu.Lock()
	if !n.serving {
		n.mu.Unlock()
		return ErrNotLeader
	}
	n.pending[id] = ch
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ProposeTimeout)
	defer cancel()
	if err := n.rn.Propose(ctx, append(idb[:], entry...)); err != nil {
		n.forget(id)
		return fault.E("group", fault.Unavailable, "the group did not take the entry", err)
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		n.forget(id)
		return fault.Errorf("group", fault.Unavailable, "no quorum of the group confirmed the entry within %s: this node may be cut off from the others", n.cfg.ProposeTimeout)
	}
}

func (n *Node) forget(id uint64) {
	n.mu.Lock()
	delete(n.pending, id)
	n.mu.Unlock()
}

// Leader returns the member that leads, as this node knows it: one it
// heard from within an election timeout.
func (n *Node) Leader() (Member, bool) {
	lead := n.rn.Status().Lead
	n.mu.Lock()
	defer n.mu.Unlock()
	m, ok := n.members[lead]
	if lead != n.cfg.ID && time.Since(n.contact[lead]) > 10*n.cfg.Tick { // an election timeout
		return m, false
	}
	return m, ok && lead != raft.None
}

// Self is this node.
func (n *Node) Self() Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.members[n.cfg.ID]
}

// Members are the group's members, in ID order.
func (n *Node) Members() []Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	return sortedMembers(n.members)
}

// Settle, on a leader that stopped serving, waits (up to limit) until
// every member holds its last entry and has been told it is committed,
// so that a clean stop leaves every node with the same records.
func (n *Node) Settle(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		st := n.rn.Status()
		if st.RaftState != raft.StateLeader {
			return
		}
		behind := false
		for id, pr := range st.Progress {
			if id != n.cfg.ID && pr.Match < st.GetCommit() {
				behind = true
			}
		}
		if !behind {
			// The commit index goes out with the next heartbeats.
			time.Sleep(3 * n.cfg.Tick)
			return
		}
		time.Sleep(n.cfg.Tick / 2)
	}
}

// Stop leaves the group (the node's log and records stay).
func (n *Node) Stop() {
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	<-n.done
	n.tr.close()
	n.failPending(ErrNotLeader)
	n.ls.close()
}

// loadSnapshot loads a snapshot's records (the run loop: nothing is
// applied meanwhile) and then gives Raft its message.
func (n *Node) loadSnapshot(s snapIn) error {
	if on, _ := n.Serving(); on {
		return fmt.Errorf("a leader does not take a snapshot")
	}
	applied, err := n.cfg.Replica.LoadSnapshot(s.r)
	if err != nil {
		return err
	}
	n.log.Info("snapshot loaded", zap.Uint64("applied", applied), zap.Uint64("snapshot", s.msg.GetSnapshot().GetMetadata().GetIndex()))
	n.mu.Lock()
	n.applied = applied
	n.mu.Unlock()
	return n.rn.Step(context.Background(), s.msg)
}

func (n *Node) heard(from uint64) {
	n.mu.Lock()
	n.contact[from] = time.Now()
	n.mu.Unlock()
}
