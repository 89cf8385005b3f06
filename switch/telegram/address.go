package telegram

import (
	"strings"
	"unicode/utf8"

	"github.com/dienbao/dienbao/switch/fault"
)

// Address is an agency address: dot-separated upper-case segments, most
// significant first (centre, province, district, commune), e.g. "NA.VINH.UBND".
type Address string

// Limits on addresses. Segments are A-Z and 0-9, at most 16 characters each;
// at most 6 segments.
const (
	maxSegments   = 6
	maxSegmentLen = 16
)

// ParseAddress validates s as an agency address. Lower case is folded to
// upper case; anything else outside A-Z, 0-9 and '.' is refused.
func ParseAddress(s string) (Address, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" {
		return "", fault.E("address", fault.Invalid, "empty agency address")
	}
	segs := strings.Split(s, ".")
	if len(segs) > maxSegments {
		return "", fault.Errorf("address", fault.Invalid, "agency address %q has more than %d segments", short(s), maxSegments)
	}
	for _, seg := range segs {
		if seg == "" || len(seg) > maxSegmentLen {
			return "", fault.Errorf("address", fault.Invalid, "agency address %q: segments must be 1-%d characters", short(s), maxSegmentLen)
		}
		for _, c := range seg {
			if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return "", fault.Errorf("address", fault.Invalid, "agency address %q: only A-Z, 0-9 and '.' are allowed", short(s))
			}
		}
	}
	return Address(s), nil
}

// Tier is the number of segments: 1 for the centre's top level, 2 for a
// province office, and so on.
func (a Address) Tier() int { return strings.Count(string(a), ".") + 1 }

func (a Address) String() string { return string(a) }

// Join joins addresses with sep, for messages and output.
func Join(as []Address, sep string) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, sep)
}

// short is at most the first 64 bytes of s, for quoting input in an error:
// an error must not grow with what the client sent.
func short(s string) string {
	if len(s) <= 64 {
		return s
	}
	cut := 64
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
