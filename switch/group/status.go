package group

import (
	"context"
	"encoding/json"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// raftLogger gives Raft the node's logger.
type raftLogger struct{ *zap.SugaredLogger }

func (l raftLogger) Warning(v ...any)                 { l.Warn(v...) }
func (l raftLogger) Warningf(format string, v ...any) { l.Warnf(format, v...) }

// MemberStatus is one member as the node sees it.
type MemberStatus struct {
	Member
	Leader bool `json:"leader"`
	// Match is the last entry the leader knows the member holds; Lag is
	// how far that is behind the leader's last (leader's view only).
	Match uint64 `json:"match,omitempty"`
	Lag   uint64 `json:"lag,omitempty"`
	// LastContact is when this node last heard from the member (zero:
	// never, or itself).
	LastContact time.Time `json:"last_contact,omitzero"`
	Self        bool      `json:"self,omitempty"`
}

// Status is the group as one node sees it.
type Status struct {
	Node      uint64         `json:"node"`
	State     string         `json:"state"` // leader, follower, candidate, pre-candidate
	Leader    uint64         `json:"leader"`
	Term      uint64         `json:"term"`
	Commit    uint64         `json:"commit"`
	Applied   uint64         `json:"applied"`
	LastIndex uint64         `json:"last_index"`
	Snapshot  uint64         `json:"snapshot"`
	Serving   bool           `json:"serving"`
	Members   []MemberStatus `json:"members"`
}

// Status reports the group as this node sees it.
func (n *Node) Status() Status {
	st := n.rn.Status()
	last, _ := n.ls.mem.LastIndex()
	n.mu.Lock()
	s := Status{Node: n.cfg.ID, State: stateName(st.RaftState), Leader: st.Lead, Term: st.GetTerm(), Commit: st.GetCommit(),
		Applied: n.applied, LastIndex: last, Snapshot: n.snapIndex, Serving: n.serving}
	contact := make(map[uint64]time.Time, len(n.contact))
	for k, v := range n.contact {
		contact[k] = v
	}
	members := sortedMembers(n.members)
	n.mu.Unlock()
	for _, m := range members {
		ms := MemberStatus{Member: m, Leader: m.ID == st.Lead, LastContact: contact[m.ID], Self: m.ID == n.cfg.ID}
		if pr, ok := st.Progress[m.ID]; ok {
			ms.Match = pr.Match
			if last > pr.Match {
				ms.Lag = last - pr.Match
			}
		}
		s.Members = append(s.Members, ms)
	}
	return s
}

func stateName(s raft.StateType) string {
	switch s {
	case raft.StateLeader:
		return "leader"
	case raft.StateCandidate:
		return "candidate"
	case raft.StatePreCandidate:
		return "pre-candidate"
	default:
		return "follower"
	}
}

// AddMember proposes a new member (it votes once it has caught up with
// the log or a snapshot); RemoveMember proposes one's removal. Both return
// once the change is applied here. Only the leader changes the group.
func (n *Node) AddMember(ctx context.Context, m Member) error {
	if m.ID == 0 || m.Name == "" || m.Raft == "" {
		return fault.Errorf("group", fault.Invalid, "a member needs an ID, a name and a group address")
	}
	n.mu.Lock()
	_, dup := n.members[m.ID]
	n.mu.Unlock()
	if dup {
		return fault.Errorf("group", fault.Invalid, "node %d is already a member", m.ID)
	}
	ctxb, _ := json.Marshal(m)
	return n.changeConf(ctx, &pb.ConfChange{Type: pb.ConfChangeType_ConfChangeAddNode.Enum(), NodeId: proto.Uint64(m.ID), Context: ctxb}, m.ID, true)
}

// RemoveMember proposes the removal of member id.
func (n *Node) RemoveMember(ctx context.Context, id uint64) error {
	n.mu.Lock()
	_, ok := n.members[id]
	n.mu.Unlock()
	if !ok {
		return fault.Errorf("group", fault.NotExist, "node %d is not a member", id)
	}
	if id == n.cfg.ID {
		return fault.Errorf("group", fault.Invalid, "node %d leads the group: stop it (another takes the lead), then remove it there", id)
	}
	return n.changeConf(ctx, &pb.ConfChange{Type: pb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(id)}, id, false)
}

func (n *Node) changeConf(ctx context.Context, cc *pb.ConfChange, id uint64, present bool) error {
	if on, _ := n.Serving(); !on {
		return ErrNotLeader
	}
	if err := n.rn.ProposeConfChange(ctx, cc); err != nil {
		return fault.E("group", fault.Unavailable, "the change was not proposed", err)
	}
	for {
		n.mu.Lock()
		_, ok := n.members[id]
		n.mu.Unlock()
		if ok == present {
			return nil
		}
		select {
		case <-ctx.Done():
			return fault.E("group", fault.Unavailable, "the change was not applied in time (no quorum?)", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// confChange applies a committed membership change.
func (n *Node) confChange(cc *pb.ConfChange) {
	cs := n.rn.ApplyConfChange(cc)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cs = cs
	switch cc.GetType() {
	case pb.ConfChangeType_ConfChangeAddNode, pb.ConfChangeType_ConfChangeAddLearnerNode:
		var m Member
		if json.Unmarshal(cc.GetContext(), &m) == nil && m.ID == cc.GetNodeId() {
			n.members[m.ID] = m
		}
	case pb.ConfChangeType_ConfChangeRemoveNode:
		delete(n.members, cc.GetNodeId())
	}
}
