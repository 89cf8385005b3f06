package audit

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/dienbao/dienbao/switch/telegram"
)

// MaxLeaf bounds the size of an audit leaf, in bytes. Entries are bounded
// where they are built (Bounded), so that nothing from outside (a
// certificate's name, an SNI, an address list quoted in a refusal) can
// make one entry large: an append-only log cannot take it back.
const MaxLeaf = 4096

// Field bounds, in bytes, before JSON escaping.
const (
	maxEvent   = 32
	maxActor   = 256
	maxAddress = 64
	maxReason  = 2048
)

// Bounded returns e with every text field made safe (Clean) and cut to
// its bound, and the reason cut further until the leaf fits in MaxLeaf.
func Bounded(e Entry) Entry {
	e.Event = Clean(e.Event, maxEvent)
	e.Actor = Clean(e.Actor, maxActor)
	e.From = telegram.Address(Clean(string(e.From), maxAddress))
	e.To = telegram.Address(Clean(string(e.To), maxAddress))
	e.Reason = Clean(e.Reason, maxReason)
	// JSON escapes a character in at most 6 bytes; the other fields take
	// under 400: most entries need no encoding to know they fit.
	if 6*(len(e.Event)+len(e.Actor)+len(e.From)+len(e.To)+len(e.Reason))+400 <= MaxLeaf {
		return e
	}
	for limit := maxReason; ; limit /= 2 {
		l, err := Leaf(e)
		if err != nil || len(l) <= MaxLeaf || limit < 64 {
			return e
		}
		e.Reason = Clean(e.Reason, limit/2)
		e.Actor = Clean(e.Actor, min(maxActor, limit/4))
	}
}

// Clean makes text that came from outside safe to keep and to show on a
// terminal (Escape, on one line), cut at a character boundary to at most
// max bytes, ending with "…(+N bytes)" when something was cut.
func Clean(s string, max int) string {
	out := Escape(s, false)
	if len(out) <= max {
		return out
	}
	cut := max - len("…(+0000000000 bytes)")
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	return out[:cut] + fmt.Sprintf("…(+%d bytes)", len(out)-cut)
}

// Escape makes text safe to show on a terminal: invalid UTF-8 becomes
// U+FFFD, and control characters and bidirectional controls (UnsafeRune)
// are written as visible escapes (\x1b, \u202e), except line breaks and
// tabs when lines is set. Text with nothing to escape is returned as is.
func Escape(s string, lines bool) string {
	unsafe := func(r rune) bool { return UnsafeRune(r) && !(lines && (r == '\n' || r == '\t')) }
	clean := utf8.ValidString(s)
	for _, r := range s {
		if !clean || unsafe(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case !unsafe(r):
			b.WriteRune(r)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// UnsafeRune reports characters that must not reach a terminal as they
// are: C0 and C1 controls, DEL, and the bidirectional formatting
// characters that can reorder what is shown (U+202A–202E, U+2066–2069,
// U+200E, U+200F, U+061C).
func UnsafeRune(r rune) bool {
	switch {
	case r >= 0x20 && r < 0x7f: // printable ASCII, most of every entry
		return false
	case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	}
	return false
}
