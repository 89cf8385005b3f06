package audit

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// appendLeaf writes the canonical leaf of e: exactly what encoding/json
// produces for leaf{V: LeafVersion, Entry: e} with HTML escaping off (the
// tests hold the two equal), without reflection, since one is written for
// every step of every telegram.
func appendLeaf(b []byte, e Entry) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, LeafVersion, 10)
	b = append(b, `,"index":`...)
	b = strconv.AppendUint(b, e.Index, 10)
	b = append(b, `,"at":"`...)
	b = e.At.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","event":`...)
	b = appendString(b, e.Event)
	b = append(b, `,"actor":`...)
	b = appendString(b, e.Actor)
	if !e.ID.IsZero() {
		b = append(b, `,"id":"`...)
		b = append(b, e.ID.String()...)
		b = append(b, '"')
	}
	if e.From != "" {
		b = append(b, `,"from":`...)
		b = appendString(b, string(e.From))
	}
	if e.To != "" {
		b = append(b, `,"to":`...)
		b = appendString(b, string(e.To))
	}
	if e.Precedence != 0 {
		b = append(b, `,"precedence":`...)
		b = appendString(b, e.Precedence.String())
	}
	if e.Classification != 0 {
		b = append(b, `,"classification":`...)
		b = appendString(b, e.Classification.String())
	}
	if e.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, e.Reason)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does with HTML escaping off.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
