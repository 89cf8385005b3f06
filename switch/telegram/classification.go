package telegram

import (
	"github.com/dienbao/dienbao/switch/fault"
)

// Classification is a security level. The zero value is invalid.
type Classification uint8

// Classifications, lowest first.
const (
	Unclassified Classification = 1
	Confidential Classification = 2 // Mật
	Secret       Classification = 3 // Tối mật
	TopSecret    Classification = 4 // Tuyệt mật
)

// Classifications lists every classification, lowest first.
var Classifications = [...]Classification{Unclassified, Confidential, Secret, TopSecret}

var classNames = map[Classification]string{Unclassified: "UNCLASSIFIED", Confidential: "CONFIDENTIAL", Secret: "SECRET", TopSecret: "TOP SECRET"}

var classAliases = map[string]Classification{
	"UNCLASSIFIED": Unclassified, "U": Unclassified, "KHONGMAT": Unclassified,
	"CONFIDENTIAL": Confidential, "C": Confidential, "MAT": Confidential,
	"SECRET": Secret, "S": Secret, "TOIMAT": Secret,
	"TOPSECRET": TopSecret, "TS": TopSecret, "TUYETMAT": TopSecret,
}

// ParseClassification accepts English and Vietnamese names, with or without
// diacritics, spaces, '_' or '-'.
func ParseClassification(s string) (Classification, error) {
	k := nameKey(s)
	if c, ok := classAliases[k]; ok {
		return c, nil
	}
	return 0, fault.Errorf("classification", fault.Invalid,
		"unknown classification %q: use UNCLASSIFIED, CONFIDENTIAL (Mật), SECRET (Tối mật) or TOP SECRET (Tuyệt mật)", s)
}

// Valid reports whether c is one of the four classifications.
func (c Classification) Valid() bool { return c >= Unclassified && c <= TopSecret }

func (c Classification) String() string {
	if n, ok := classNames[c]; ok {
		return n
	}
	return "INVALID"
}

// MarshalText makes JSON carry the English name.
func (c Classification) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText parses any accepted name.
func (c *Classification) UnmarshalText(b []byte) error {
	v, err := ParseClassification(string(b))
	*c = v
	return err
}
