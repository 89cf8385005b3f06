package server

import (
	"context"
	"fmt"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/group"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
)

// Group is what the switch needs of its group (switch/group.Node).
type Group interface {
	Status() group.Status
	AddMember(ctx context.Context, m group.Member) error
	RemoveMember(ctx context.Context, id uint64) error
}

// handleGroup answers the group's status; operators may add or remove a
// member (audited).
func (sess *session) handleGroup(str *quic.Stream, payload []byte) {
	var req wire.GroupRequest
	if err := wire.Decode(wire.TGroup, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	s := sess.s
	g := s.cfg.Group
	if req.Op != wire.GroupStatusOp {
		if sess.id.Role != certs.Operator || sess.id.Scoped() {
			sess.deny(str, fault.Errorf("group", fault.Permission, "only operators of the whole network change the group's members"))
			return
		}
		if g == nil {
			sess.replyError(str, fault.Errorf("group", fault.Invalid, "this switch is a single node, not a group"))
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var err error
		var what string
		if req.Op == wire.GroupAddOp {
			m := req.Member
			what = fmt.Sprintf("member added: node %d, %s at %s (group %s)", m.ID, m.Name, m.Addr, m.GroupAddr)
			err = g.AddMember(ctx, group.Member{ID: m.ID, Name: m.Name, Addr: m.Addr, Raft: m.GroupAddr})
		} else {
			what = fmt.Sprintf("member removed: node %d", req.ID)
			err = g.RemoveMember(ctx, req.ID)
		}
		if err != nil {
			sess.replyError(str, err)
			return
		}
		if err := s.store.Record(store.AuditEntry{Actor: sess.id.String(), Event: audit.Group, Reason: what}); err != nil {
			sess.replyError(str, err)
			return
		}
	}
	wire.WriteFrame(str, wire.TGroupReply, groupStatus(g, sess.id.Role == certs.Operator))
}

// groupStatus is what a client is told of the group: everyone learns the
// leader and the members' addresses (to follow a leader change);
// operators, Raft's figures too.
func groupStatus(g Group, full bool) wire.GroupStatus {
	if g == nil {
		return wire.GroupStatus{}
	}
	st := g.Status()
	out := wire.GroupStatus{Group: true, Node: st.Node, Leader: st.Leader}
	if full {
		out.State, out.Term, out.Commit, out.Applied, out.LastIndex, out.Snapshot = st.State, st.Term, st.Commit, st.Applied, st.LastIndex, st.Snapshot
	}
	for _, m := range st.Members {
		gm := wire.GroupMember{ID: m.ID, Name: m.Name, Addr: m.Addr, Leader: m.Leader}
		if full {
			gm.GroupAddr, gm.Match, gm.Lag, gm.LastContact = m.Raft, m.Match, m.Lag, m.LastContact
		}
		out.Members = append(out.Members, gm)
	}
	return out
}
