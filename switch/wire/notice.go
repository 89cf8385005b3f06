package wire

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Notice is an incident notice an operator posts for the others: what is
// affected (an address prefix, or a link as "link:PEER"), until when it is
// expected to last, and what happened. It stays until an operator closes
// it.
type Notice struct {
	Number  uint64    `cbor:"1,keyasint" json:"number"`
	Affects string    `cbor:"2,keyasint" json:"affects"`
	Until   time.Time `cbor:"3,keyasint" json:"until"`
	Text    string    `cbor:"4,keyasint" json:"text"`
	By      string    `cbor:"5,keyasint" json:"by"`
	At      time.Time `cbor:"6,keyasint" json:"at"`
}

// MaxNoticeText bounds a notice's text, in bytes.
const MaxNoticeText = 1000

// NoticeRequest posts a notice (Post: its Affects, Until and Text), closes
// one (Close: its number), or, with neither, lists the open ones
// (operators).
type NoticeRequest struct {
	Post  *Notice `cbor:"1,keyasint,omitempty"`
	Close uint64  `cbor:"2,keyasint,omitempty"`
}

// Validate checks a notice posted.
func (r *NoticeRequest) Validate() error {
	if r.Post == nil {
		return nil
	}
	n := r.Post
	switch {
	case r.Close != 0:
		return fmt.Errorf("post or close, not both")
	case n.Affects == "" || len(n.Affects) > 80:
		return fmt.Errorf("a notice says what it affects: an address prefix (NA, HN.UBND) or a link (link:PEER)")
	case n.Until.IsZero():
		return fmt.Errorf("a notice says until when (--until)")
	case strings.TrimSpace(n.Text) == "" || len(n.Text) > MaxNoticeText || !utf8.ValidString(n.Text):
		return fmt.Errorf("a notice's text is 1 to %d bytes of UTF-8", MaxNoticeText)
	case strings.IndexFunc(n.Text, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) >= 0:
		return fmt.Errorf("a notice's text has no control characters")
	}
	return nil
}

// Notices answers a NoticeRequest: the open notices the operator may see,
// and what the request changed.
type Notices struct {
	Open   []Notice `cbor:"1,keyasint" json:"open"`
	Posted uint64   `cbor:"2,keyasint,omitempty" json:"posted,omitempty"`
	Closed uint64   `cbor:"3,keyasint,omitempty" json:"closed,omitempty"`
}
