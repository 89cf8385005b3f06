package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

// Events. Each names one step the switch took; the list is the auditor's
// vocabulary and only grows.
const (
	Filed           = "filed"            // a filing was accepted
	Refused         = "refused"          // a filing was refused (Reason says why)
	Queued          = "queued"           // a telegram was queued for one addressee
	Deferred        = "deferred"         // a telegram was filed for one addressee for delivery at a later time (Reason says when)
	Attempt         = "attempt"          // a telegram was handed to a terminal
	Delivered       = "delivered"        // an addressee's terminal acknowledged
	Expired         = "expired"          // withdrawn at its latest delivery time
	Parked          = "parked"           // parked after too many failed attempts
	Cancelled       = "cancelled"        // withdrawn by an operator
	Overdue         = "overdue"          // passed its speed-of-service target while waiting
	ReportQueued    = "report_queued"    // a delivery report is waiting for the sender
	ReportDelivered = "report_delivered" // the sender's terminal acknowledged a report
	Operator        = "operator"         // an operator action (Reason says which)
	Security        = "security"         // a refused handshake or a denied request
	Integrity       = "integrity"        // a stored record failed its integrity check
	KeyRotation     = "key_rotation"     // a data key became current, or was retired
	Storage         = "storage"          // free space crossed a watermark, or the store was migrated to a new format (Reason says what)
	Clock           = "clock"            // the switch's clock became untrusted, or trusted again (Reason says why)
	Retrieved       = "retrieved"        // a copy of a telegram was given from the journal (Actor to whom)
	Resent          = "resent"           // a telegram was sent again to an addressee, flagged possible duplicate
	Purged          = "purged"           // a settled telegram's retention ended: its content was deleted
	Archived        = "archived"         // old audit entries were moved to an archive file (Reason names it)
	Minimize        = "minimize"         // an operator declared or lifted a MINIMIZE, or it ended (Reason says which)
	Admission       = "admission"        // admission control started or stopped limiting filings, or changed level (Reason says why)
	Received        = "received"         // a telegram was taken into custody from another switch for one addressee (Reason names the switch and the link's sequence number)
	Relayed         = "relayed"          // custody of a telegram for one addressee passed to the next switch, which committed it (Reason names it and the link's sequence number)
	Link            = "link"             // a link's sequence numbers showed a gap or a repeat (Reason says which)
	Witness         = "witness"          // this switch, as a witness, refused to cosign a checkpoint of another switch's log (Reason says why: a fork, a rewrite, a changed key)
	Group           = "group"            // a replicated switch's node took the lead, or an operator added or removed a member (Reason says which)
	Rejected        = "rejected"         // an addressee's terminal refused a telegram that failed end-to-end verification (Reason: signature or unreadable, and what failed); it is not delivered
	Moved           = "moved"            // an operator re-addressed one addressee's copy to a successor agency (Reason: "to NEW"); the successor's copy is queued (Reason: "moved from OLD")
	Directory       = "directory"        // a directory reload was refused because it would hide telegrams in custody (Reason says which agencies and how many)
	Notice          = "notice"           // an operator posted or closed an incident notice (Reason: its number, what it affects, until when, its text)
	Revocation      = "revocation"       // the switch signed a fresh CRL or could not, its CRL is past its next-update time, or the CRL or a certificate nears its end (Reason says which)
	Backup          = "backup"           // a backup of the store was taken (Reason: the audit log's size and the queue sequence it holds)
	Restored        = "restored"         // the store was restored from a backup (Reason: when it was taken, the log size it holds; what happened after it is not in this log)
	SwitchStart     = "switch_start"
	SwitchStop      = "switch_stop"
)

// Events lists every event, for validation and documentation.
var Events = []string{Filed, Refused, Queued, Deferred, Attempt, Delivered, Expired, Parked, Cancelled, Overdue,
	ReportQueued, ReportDelivered, Operator, Security, Integrity, KeyRotation, SwitchStart, SwitchStop, Storage, Clock,
	Retrieved, Resent, Purged, Archived, Minimize, Admission, Received, Relayed, Link, Witness, Group, Rejected, Moved, Directory, Notice, Backup, Restored, Revocation}

// ValidEvent reports whether e is one of Events.
func ValidEvent(e string) bool {
	for _, x := range Events {
		if x == e {
			return true
		}
	}
	return false
}

// Entry is one audit record. It never carries a body or a subject.
//
// From is the agency that sent the telegram (or, for an entry without a
// telegram, the agency of the actor when it has one); To is the addressee
// the entry concerns. Actor is whoever acted, as named by its certificate
// ("NA.TU/terminal 1", "operator") or the switch itself ("switch").
type Entry struct {
	Index          uint64                  `json:"index"`
	At             time.Time               `json:"at"`
	Event          string                  `json:"event"`
	Actor          string                  `json:"actor"`
	ID             telegram.ID             `json:"id,omitzero"`
	From           telegram.Address        `json:"from,omitempty"`
	To             telegram.Address        `json:"to,omitempty"`
	Precedence     telegram.Precedence     `json:"precedence,omitzero"`
	Classification telegram.Classification `json:"classification,omitzero"`
	Reason         string                  `json:"reason,omitempty"`
}

// leaf is an Entry as encoded in the log: a format version first.
type leaf struct {
	V int `json:"v"`
	Entry
}

// LeafVersion is the leaf format written.
const LeafVersion = 1

// Leaf returns e's canonical encoding, the exact bytes hashed into the
// tree: compact JSON, fields in declaration order, empty fields left out,
// times in UTC with nanoseconds.
func Leaf(e Entry) ([]byte, error) {
	if !e.Precedence.Valid() && e.Precedence != 0 || !e.Classification.Valid() && e.Classification != 0 {
		return nil, fmt.Errorf("audit entry %d: invalid precedence or classification", e.Index)
	}
	if y := e.At.UTC().Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("audit entry %d: time out of range", e.Index)
	}
	// Text from outside (a certificate's name, an error quoting a
	// client's input) may not be UTF-8; JSON would turn each bad byte into
	// U+FFFD, so do it first, or the leaf would not read back as itself.
	valid := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
	e.Event, e.Actor, e.Reason = valid(e.Event), valid(e.Actor), valid(e.Reason)
	e.From, e.To = telegram.Address(valid(string(e.From))), telegram.Address(valid(string(e.To)))
	return appendLeaf(make([]byte, 0, 256), e), nil
}

// ParseLeaf decodes a leaf. It refuses a leaf that is not exactly the
// canonical encoding of what it decodes to, so two different byte strings
// can never stand for the same entry.
func ParseLeaf(b []byte) (Entry, error) {
	var l leaf
	if err := json.Unmarshal(b, &l); err != nil {
		return Entry{}, fmt.Errorf("audit leaf is not valid JSON: %w", err)
	}
	if l.V != LeafVersion {
		return Entry{}, fmt.Errorf("audit leaf version %d, want %d", l.V, LeafVersion)
	}
	again, err := Leaf(l.Entry)
	if err != nil || !bytes.Equal(again, b) {
		return Entry{}, fmt.Errorf("audit leaf %d is not in canonical form", l.Index)
	}
	return l.Entry, nil
}
