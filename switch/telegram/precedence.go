package telegram

import (
	"strings"
	"unicode"

	"github.com/dienbao/dienbao/switch/fault"
	"golang.org/x/text/unicode/norm"
)

// Precedence orders delivery. The zero value is invalid so that a missing
// field is caught rather than read as some precedence.
type Precedence uint8

// Precedences, lowest first. Higher values are more urgent.
const (
	Routine   Precedence = 1 // Thường
	Priority  Precedence = 2 // Khẩn
	Immediate Precedence = 3 // Thượng khẩn
	Flash     Precedence = 4 // Hỏa tốc
)

// Precedences lists every precedence, most urgent first: the order in
// which queues are served.
var Precedences = [...]Precedence{Flash, Immediate, Priority, Routine}

var precNames = map[Precedence]string{Routine: "ROUTINE", Priority: "PRIORITY", Immediate: "IMMEDIATE", Flash: "FLASH"}

var precAliases = map[string]Precedence{
	"ROUTINE": Routine, "R": Routine, "THUONG": Routine,
	"PRIORITY": Priority, "P": Priority, "KHAN": Priority,
	"IMMEDIATE": Immediate, "O": Immediate, "THUONGKHAN": Immediate,
	"FLASH": Flash, "Z": Flash, "HOATOC": Flash,
}

// ParsePrecedence accepts the English names, the ACP 127 prosigns (Z, O,
// P, R) and the Vietnamese names with or without diacritics and spaces.
func ParsePrecedence(s string) (Precedence, error) {
	k := nameKey(s)
	if p, ok := precAliases[k]; ok {
		return p, nil
	}
	return 0, fault.Errorf("precedence", fault.Invalid,
		"unknown precedence %q: use FLASH (Hỏa tốc), IMMEDIATE (Thượng khẩn), PRIORITY (Khẩn) or ROUTINE (Thường)", s)
}

// Valid reports whether p is one of the four precedences.
func (p Precedence) Valid() bool { return p >= Routine && p <= Flash }

// Rank is 0 for FLASH through 3 for ROUTINE: the order in which keys sort
// and streams are prioritised.
func (p Precedence) Rank() int { return int(Flash - p) }

// PrecedenceOfRank inverts Rank.
func PrecedenceOfRank(r int) Precedence { return Flash - Precedence(r) }

func (p Precedence) String() string {
	if n, ok := precNames[p]; ok {
		return n
	}
	return "INVALID"
}

// MarshalText makes JSON carry the English name.
func (p Precedence) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses any accepted name.
func (p *Precedence) UnmarshalText(b []byte) error {
	v, err := ParsePrecedence(string(b))
	*p = v
	return err
}

// nameKey folds a precedence or classification name for lookup: upper
// case, without spaces, '_' or '-'.
// nameKey is a name as the alias tables hold it: in capitals, without
// spaces, '_', '-' or diacritics, whatever the Unicode normalisation it
// was typed in (NFD, as macOS and some input methods type "Hỏa tốc", or
// NFC): "Hỏa tốc" and "HOA TOC" are both HOATOC.
func nameKey(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '_' || r == '-' {
			return -1
		}
		return unicode.ToUpper(r)
	}, Fold(s))
}

// Fold is text as a search compares it: in lower case, without
// diacritics (đ as d), whatever its Unicode normalisation.
func Fold(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case r == 'đ' || r == 'Đ':
			b.WriteRune('d')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}
