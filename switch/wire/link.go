package wire

import (
	"errors"
	"fmt"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

// A link between two switches (docs/DESIGN.md, "A network of switches")
// uses the same protocol as terminals: the sending switch opens request
// streams to the receiving one, presenting its switch certificate.

// Channels of a link: one per precedence (by rank, FLASH 0), and
// ReportChannel for delivery reports. Each numbers its hand-overs.
const (
	Channels      = 5
	ReportChannel = 4
)

// MaxRelayBatch is the most hand-overs one Relay frame may carry.
const MaxRelayBatch = 256

// LinkOpen starts (or resumes) a link: the receiving switch answers the
// last sequence number it committed from the sender on each channel, so
// the sender numbers on from there.
type LinkOpen struct {
	From string `cbor:"1,keyasint"` // the sending switch's name (its certificate's)
}

// LinkOpened answers LinkOpen.
type LinkOpened struct {
	Name string           `cbor:"1,keyasint"` // the receiving switch's name
	Last [Channels]uint64 `cbor:"2,keyasint"`
}

// Handover is one telegram handed over, with custody of its copies for
// For, or one delivery report (Report set; Header then carries only the
// telegram's ID, sender, precedence and classification).
type Handover struct {
	Seq    uint64             `cbor:"1,keyasint"`
	Header telegram.Header    `cbor:"2,keyasint"`
	For    []telegram.Address `cbor:"3,keyasint,omitempty"`
	// PossibleDuplicate: the sending switch handed this copy out before
	// without an acknowledgement.
	PossibleDuplicate bool              `cbor:"4,keyasint,omitempty"`
	Report            *telegram.Receipt `cbor:"5,keyasint,omitempty"`
}

// RelayRequest carries hand-overs of one channel, in sequence; the
// telegrams' bodies follow the frame in order, each Header.BodyLen bytes.
type RelayRequest struct {
	Channel   int        `cbor:"1,keyasint"`
	Handovers []Handover `cbor:"2,keyasint"`
}

// Validate checks the request's shape.
func (r *RelayRequest) Validate() error {
	if r.Channel < 0 || r.Channel >= Channels {
		return fmt.Errorf("channel %d: a link has channels 0 to %d", r.Channel, Channels-1)
	}
	if n := len(r.Handovers); n == 0 || n > MaxRelayBatch {
		return fmt.Errorf("a relay batch holds 1 to %d hand-overs, not %d", MaxRelayBatch, n)
	}
	for i, h := range r.Handovers {
		switch {
		case (h.Report != nil) != (r.Channel == ReportChannel):
			return errors.New("delivery reports, and only they, go on the report channel")
		case h.Report == nil && h.Header.Precedence.Rank() != r.Channel:
			return fmt.Errorf("a %s telegram on channel %d", h.Header.Precedence, r.Channel)
		case h.Header.BodyLen < 0 || (h.Report != nil && h.Header.BodyLen != 0):
			return fmt.Errorf("hand-over %d: bad body length %d", i, h.Header.BodyLen)
		case i > 0 && h.Seq != r.Handovers[i-1].Seq+1:
			return errors.New("the hand-overs of a batch carry consecutive sequence numbers")
		}
	}
	return nil
}

// Taken answers one hand-over: taken into custody (Held: copies this
// switch already had), or refused with an error the sending switch
// records as the copies' NOT_DELIVERED reason (no route, loop detected,
// unknown addressee).
type Taken struct {
	Held int    `cbor:"1,keyasint,omitempty"`
	Err  *Error `cbor:"2,keyasint,omitempty"`
}

// RelayReply answers a RelayRequest once every hand-over taken is on
// disk, one result per hand-over, in order.
type RelayReply struct {
	Results []Taken `cbor:"1,keyasint"`
}

// LinksRequest asks for the links' states.
type LinksRequest struct{}

// Link is one link as tg links shows it. JSON names are its fields.
type Link struct {
	Peer      string    `cbor:"1,keyasint" json:"peer"`
	Address   string    `cbor:"2,keyasint" json:"address"`
	State     string    `cbor:"3,keyasint" json:"state"` // up, down, held
	Since     time.Time `cbor:"4,keyasint" json:"since"`
	Direction string    `cbor:"5,keyasint" json:"direction"` // out: this switch dials the peer
	// Waiting is the copies waiting for this next hop, per precedence
	// (FLASH first), and Oldest the filing time of the oldest.
	Waiting   [4]int           `cbor:"6,keyasint" json:"waiting"`
	Oldest    time.Time        `cbor:"7,keyasint,omitzero" json:"oldest,omitzero"`
	SentSeq   [Channels]uint64 `cbor:"8,keyasint" json:"sent_seq"`
	RecvSeq   [Channels]uint64 `cbor:"9,keyasint" json:"received_seq"`
	Gaps      uint64           `cbor:"10,keyasint" json:"gaps"`
	RTTMillis float64          `cbor:"11,keyasint" json:"rtt_ms"` // the last batch's round trip, commit included
	BytesOut  float64          `cbor:"12,keyasint" json:"bytes_per_s"`
	Relayed   uint64           `cbor:"13,keyasint" json:"relayed"` // telegram copies handed over in this run
	LastErr   string           `cbor:"14,keyasint,omitempty" json:"last_error,omitempty"`
}

// Links answers a LinksRequest.
type Links struct {
	Self  string `cbor:"1,keyasint" json:"self"`
	Links []Link `cbor:"2,keyasint" json:"links"`
}

// LinkOperate holds (Hold) or releases a link for maintenance.
type LinkOperate struct {
	Peer string `cbor:"1,keyasint"`
	Hold bool   `cbor:"2,keyasint"`
}

// CosignRequest asks a peer switch, as a witness, to cosign a checkpoint
// of this switch's audit log (C2SP tlog-witness's add-checkpoint): the
// signed checkpoint, the log's verifier key, the size of the last
// checkpoint the witness cosigned for this log (Old, 0 for none) and a
// consistency proof from it.
type CosignRequest struct {
	Checkpoint []byte   `cbor:"1,keyasint"`
	LogKey     string   `cbor:"2,keyasint"`
	Old        uint64   `cbor:"3,keyasint,omitempty"`
	Proof      [][]byte `cbor:"4,keyasint,omitempty"`
}

// Cosigned answers a CosignRequest: the checkpoint with the witness's
// cosignature added, or, when Old was not the witness's last size for the
// log, Conflict with that size (ask again with a proof from there).
type Cosigned struct {
	Note       []byte `cbor:"1,keyasint,omitempty"`
	WitnessKey string `cbor:"2,keyasint"`
	Conflict   uint64 `cbor:"3,keyasint,omitempty"`
}

// Cosignature is one witness's cosigned checkpoint of this switch's log,
// as the switch serves them with its checkpoints.
type Cosignature struct {
	Witness string `cbor:"1,keyasint" json:"witness"` // the peer switch's name
	Key     string `cbor:"2,keyasint" json:"key"`     // its witness verifier key
	Size    uint64 `cbor:"3,keyasint" json:"size"`
	Note    []byte `cbor:"4,keyasint" json:"note"`
}
