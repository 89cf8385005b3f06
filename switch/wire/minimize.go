package wire

import "github.com/dienbao/dienbao/switch/filing"

// MinimizeRequest declares a MINIMIZE (Declare: its Number, By and At are
// the switch's to set), lifts declarations (Lift, or LiftAll), or, empty,
// lists those in force. Terminals may only list: they see the declarations
// that cover their agency.
type MinimizeRequest struct {
	Declare *filing.Minimize `cbor:"1,keyasint,omitempty"`
	Lift    []uint64         `cbor:"2,keyasint,omitempty"`
	LiftAll bool             `cbor:"3,keyasint,omitempty"`
}

// Minimizes answers a MinimizeRequest: the declarations in force after
// it, and what it changed. JSON names are tg minimize's fields.
type Minimizes struct {
	InForce  []filing.Minimize `cbor:"1,keyasint" json:"in_force"`
	Declared uint64            `cbor:"2,keyasint,omitempty" json:"declared,omitempty"` // the new declaration's number
	Lifted   []uint64          `cbor:"3,keyasint,omitempty" json:"lifted,omitempty"`
	Released int               `cbor:"4,keyasint,omitempty" json:"released,omitempty"` // deferred telegrams queued by the lifting
}
