package telegram

import (
	"strings"

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
		return "", fault.Errorf("address", fault.Invalid, "agency address %q has more than %d segments", s, maxSegments)
	}
	for _, seg := range segs {
		if seg == "" || len(seg) > maxSegmentLen {
			return "", fault.Errorf("address", fault.Invalid, "agency address %q: segments must be 1-%d characters", s, maxSegmentLen)
		}
		for _, c := range seg {
			if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return "", fault.Errorf("address", fault.Invalid, "agency address %q: only A-Z, 0-9 and '.' are allowed", s)
			}
		}
	}
	return Address(s), nil
}

// Tier is the number of segments: 1 for the centre's top level, 2 for a
// province office, and so on.
func (a Address) Tier() int { return strings.Count(string(a), ".") + 1 }

func (a Address) String() string { return string(a) }
