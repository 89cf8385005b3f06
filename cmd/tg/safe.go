package main

import (
	"fmt"

	"github.com/dienbao/dienbao/switch/audit"
	"strings"
	"unicode/utf8"
)

// Text that came from someone else (a body, a subject, a certificate's
// name, a reason quoting a request) is printed safe unless --raw: a
// sender's escape sequences must not draw on the recipient's screen, nor
// bidirectional controls reorder what it shows. Control characters, DEL,
// C1 controls and the bidi formatting characters are written as visible
// escapes (\x1b, \u202e); invalid UTF-8 as U+FFFD. A body keeps its line
// breaks and tabs. JSON output is exact (JSON escapes what needs it), and
// so is what tg stores.

// line makes one line of text safe to print.
func (e *env) line(s string) string { return e.safeText(s, false) }

// text makes a body safe to print, keeping line breaks and tabs.
func (e *env) text(s string) string { return e.safeText(s, true) }

func (e *env) safeText(s string, multiline bool) string {
	if e.raw {
		return s
	}
	ok := utf8.ValidString(s)
	for _, r := range s {
		if unsafeRune(r, multiline) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case !unsafeRune(r, multiline):
			b.WriteRune(r)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

func unsafeRune(r rune, multiline bool) bool {
	if multiline && (r == '\n' || r == '\t') {
		return false
	}
	return audit.UnsafeRune(r)
}
