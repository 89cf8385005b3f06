package wire

import (
	"fmt"
	"time"
)

// A replicated switch (docs/DESIGN.md, "A replicated switch") is a group
// of nodes; only the leader serves. A follower closes every connection
// with NotLeaderPrefix and where the leader is, and a client configured
// with several addresses follows it (switch/client).

// NotLeaderPrefix starts the reason a follower closes a connection with.
const NotLeaderPrefix = "not leader: "

// Group operations.
const (
	GroupStatusOp = "status"
	GroupAddOp    = "add"
	GroupRemoveOp = "remove"
)

// GroupRequest asks for the group's status, or (operators) changes its
// members.
type GroupRequest struct {
	Op     string      `cbor:"1,keyasint"`
	Member GroupMember `cbor:"2,keyasint,omitzero"`  // add
	ID     uint64      `cbor:"3,keyasint,omitempty"` // remove
}

// Validate checks the operation.
func (r *GroupRequest) Validate() error {
	switch r.Op {
	case GroupStatusOp, GroupAddOp, GroupRemoveOp:
		return nil
	}
	return fmt.Errorf("unknown group operation %q (status, add or remove)", r.Op)
}

// GroupMember is one member of the group, as the node answering sees it.
type GroupMember struct {
	ID        uint64 `cbor:"1,keyasint" json:"id"`
	Name      string `cbor:"2,keyasint" json:"name"`
	Addr      string `cbor:"3,keyasint" json:"address"`
	GroupAddr string `cbor:"4,keyasint,omitempty" json:"group_address,omitempty"`
	Leader    bool   `cbor:"5,keyasint,omitempty" json:"leader"`
	// Match is the last entry the leader knows the member holds, Lag how
	// far behind the leader's last it is; LastContact when the leader last
	// heard from it (operators only).
	Match       uint64    `cbor:"6,keyasint,omitempty" json:"match"`
	Lag         uint64    `cbor:"7,keyasint,omitempty" json:"lag"`
	LastContact time.Time `cbor:"8,keyasint,omitzero" json:"last_contact,omitzero"`
}

// GroupStatus answers GroupRequest. Group is false on a single switch.
type GroupStatus struct {
	Group     bool          `cbor:"1,keyasint" json:"group"`
	Node      uint64        `cbor:"2,keyasint,omitempty" json:"node"`
	State     string        `cbor:"3,keyasint,omitempty" json:"state"`
	Leader    uint64        `cbor:"4,keyasint,omitempty" json:"leader"`
	Term      uint64        `cbor:"5,keyasint,omitempty" json:"term"`
	Commit    uint64        `cbor:"6,keyasint,omitempty" json:"commit"`
	Applied   uint64        `cbor:"7,keyasint,omitempty" json:"applied"`
	LastIndex uint64        `cbor:"8,keyasint,omitempty" json:"last_index"`
	Snapshot  uint64        `cbor:"9,keyasint,omitempty" json:"snapshot"`
	Members   []GroupMember `cbor:"10,keyasint,omitempty" json:"members"`
}
