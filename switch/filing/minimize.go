package filing

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Minimize is an operator's MINIMIZE declaration (ACP 121/127): while it
// is in force, filings below precedence Below from the agencies it covers
// are refused (or, with Defer, accepted and held back until it is lifted),
// so that urgent traffic flows. It covers the agencies listed, else every
// agency of Level, else the whole switch. Telegrams already filed are not
// touched. JSON names are tg minimize's fields.
type Minimize struct {
	Number   uint64              `cbor:"1,keyasint" json:"number"`
	Below    telegram.Precedence `cbor:"2,keyasint" json:"below"`
	Level    string              `cbor:"3,keyasint,omitempty" json:"level,omitempty"`
	Agencies []telegram.Address  `cbor:"4,keyasint,omitempty" json:"agencies,omitempty"`
	Reason   string              `cbor:"5,keyasint" json:"reason"`
	Until    time.Time           `cbor:"6,keyasint,omitzero" json:"until,omitzero"` // zero: until lifted
	Defer    bool                `cbor:"7,keyasint,omitempty" json:"defer,omitempty"`
	By       string              `cbor:"8,keyasint" json:"by"`
	At       time.Time           `cbor:"9,keyasint" json:"at"`
}

// MaxMinimizes bounds the declarations in force at once.
const MaxMinimizes = 64

// Scope says whom m covers, for messages and the audit log.
func (m Minimize) Scope() string {
	switch {
	case len(m.Agencies) > 0:
		return "agencies " + telegram.Join(m.Agencies, ",")
	case m.Level != "":
		return "every " + m.Level
	}
	return "the whole switch"
}

// title names m: its number, threshold and scope.
func (m Minimize) title() string {
	return fmt.Sprintf("MINIMIZE %d below %s for %s", m.Number, m.Below, m.Scope())
}

// String describes m in one line (the audit entry's reason, tg minimize).
func (m Minimize) String() string {
	s := m.title()
	if !m.Until.IsZero() {
		s += " until " + m.Until.UTC().Format(time.RFC3339)
	}
	if m.Defer {
		s += ", deferring"
	} else {
		s += ", refusing"
	}
	return s + ": " + m.Reason
}

// InForce reports whether m applies at now.
func (m Minimize) InForce(now time.Time) bool { return m.Until.IsZero() || now.Before(m.Until) }

// Covers reports whether m applies to filings from agency a.
func (m Minimize) Covers(a directory.Agency) bool {
	switch {
	case len(m.Agencies) > 0:
		return slices.Contains(m.Agencies, a.Address)
	case m.Level != "":
		return a.LevelOf() == m.Level
	}
	return true
}

// Restricts reports whether m applies to a filing of precedence p.
func (m Minimize) Restricts(p telegram.Precedence) bool { return p.Valid() && p < m.Below }

// Minimized returns the declaration in ms that applies to a filing of
// precedence p from agency from at now, if any: one that refuses before
// one that defers, then the earliest declared.
func Minimized(ms []Minimize, from directory.Agency, p telegram.Precedence, now time.Time) (Minimize, bool) {
	var found Minimize
	ok := false
	for _, m := range ms {
		if !m.InForce(now) || !m.Restricts(p) || !m.Covers(from) {
			continue
		}
		if !ok || (found.Defer && !m.Defer) {
			found, ok = m, true
		}
	}
	return found, ok
}

// Refusal is the error a filing refused under m gets: it names the
// declaration and its reason, and says what the sender can do.
func (m Minimize) Refusal(p telegram.Precedence) error {
	return fault.Errorf("file", fault.Minimized, "not filed: %s is in force (%s); %s filings are refused until it is lifted; file again then, or at %s or above if it cannot wait",
		m.title(), m.Reason, p, m.Below)
}

// CheckMinimize checks a declaration an operator makes at now against the
// directory: a precedence that restricts something and is not ROUTINE's,
// a known level or known agencies (not both), a reason, an end in the
// future.
func CheckMinimize(m Minimize, dir *directory.Directory, now time.Time) error {
	const op = "minimize"
	switch {
	case !m.Below.Valid() || m.Below == telegram.Routine:
		return fault.Errorf(op, fault.Invalid, "--below takes PRIORITY, IMMEDIATE or FLASH: nothing is below ROUTINE")
	case m.Level != "" && len(m.Agencies) > 0:
		return fault.Errorf(op, fault.Invalid, "give --level or --agency, not both")
	case m.Level != "" && !slices.Contains(directory.Levels, m.Level):
		return fault.Errorf(op, fault.Invalid, "unknown level %q: use %s", m.Level, strings.Join(directory.Levels, ", "))
	case strings.TrimSpace(m.Reason) == "":
		return fault.Errorf(op, fault.Invalid, "a MINIMIZE needs a --reason: terminals are told it when refused")
	case !utf8.ValidString(m.Reason) || len(m.Reason) > 256 || audit.Clean(m.Reason, 256) != m.Reason:
		return fault.Errorf(op, fault.Invalid, "the reason must be at most 256 bytes of printable UTF-8")
	case !m.Until.IsZero() && !m.Until.After(now):
		return fault.Errorf(op, fault.Invalid, "--until %s has already passed", m.Until.UTC().Format(time.RFC3339))
	case len(m.Agencies) > 64:
		return fault.Errorf(op, fault.Invalid, "at most 64 agencies in one MINIMIZE; use --level, or declare another")
	}
	for _, a := range m.Agencies {
		if !dir.Has(a) {
			return fault.Errorf(op, fault.NotExist, "no agency %s in the directory", a)
		}
	}
	return nil
}
