package main

import "github.com/dienbao/dienbao/switch/audit"

// Text that came from someone else (a body, a subject, a certificate's
// name, a reason quoting a request) is printed safe unless --raw: a
// sender's escape sequences must not draw on the recipient's screen, nor
// bidirectional controls reorder what it shows. Control characters, DEL,
// C1 controls and the bidi formatting characters are written as visible
// escapes (\x1b, \u202e); invalid UTF-8 as U+FFFD (audit.Escape). A body
// keeps its line breaks and tabs. JSON output is exact (JSON escapes what
// needs it), and so is what tg stores.

// line makes one line of text safe to print.
func (e *env) line(s string) string {
	if e.raw {
		return s
	}
	return audit.Escape(s, false)
}

// text makes a body safe to print, keeping line breaks and tabs.
func (e *env) text(s string) string {
	if e.raw {
		return s
	}
	return audit.Escape(s, true)
}
