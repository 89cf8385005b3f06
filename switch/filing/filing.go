// Package filing decides whether a filing is acceptable: who may file, to
// whom, at what precedence and classification, with what body. It is pure:
// the sender's identity (from its certificate), the request, the agency
// directory and the limits go in; a header ready to store, or a specific
// error, comes out.
package filing

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/custody"
	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Request is what a terminal asks to file, as the protocol carried it:
// nothing in it is trusted yet.
type Request struct {
	To, Info       []telegram.Address
	Precedence     telegram.Precedence
	Classification telegram.Classification
	Subject, Ref   string
	BodyLen        int64
	ExpiresAt      time.Time // latest delivery time; zero: none
	DeliverAt      time.Time // deferred delivery: not before this time; zero: at once
}

// Limits bound what one filing may carry.
type Limits struct {
	MaxBody       int64 // bytes; default 16 MiB
	MaxSubject    int   // bytes of UTF-8; default 256
	MaxRef        int   // bytes; default 128
	MaxAddressees int   // action + info; default 64
}

// DefaultLimits are the limits when the configuration sets none.
var DefaultLimits = Limits{MaxBody: 16 << 20, MaxSubject: 256, MaxRef: 128, MaxAddressees: 64}

// WithDefaults fills zero fields from DefaultLimits.
func (l Limits) WithDefaults() Limits {
	if l.MaxBody <= 0 {
		l.MaxBody = DefaultLimits.MaxBody
	}
	if l.MaxSubject <= 0 {
		l.MaxSubject = DefaultLimits.MaxSubject
	}
	if l.MaxRef <= 0 {
		l.MaxRef = DefaultLimits.MaxRef
	}
	if l.MaxAddressees <= 0 {
		l.MaxAddressees = DefaultLimits.MaxAddressees
	}
	return l
}

const op = "file"

// MaxAhead bounds a latest delivery time or a delivery time: a year (the
// store keeps times as nanoseconds since 1970, which end in 2262).
const MaxAhead = 366 * 24 * time.Hour

// CheckSize checks only the announced body length, before any body byte
// is read.
func CheckSize(bodyLen int64, lim Limits) error {
	switch {
	case bodyLen <= 0:
		return fault.E(op, fault.Invalid, "the body is empty: a telegram must have text")
	case bodyLen > lim.MaxBody:
		return fault.Errorf(op, fault.TooLarge, "the body is %d bytes; the limit is %d", bodyLen, lim.MaxBody)
	}
	return nil
}

// Check validates f, filed by sender at now, and returns the header to
// store (ID and filing time are the store's to assign).
func Check(sender certs.Identity, f Request, dir *directory.Directory, lim Limits, now time.Time) (telegram.Header, error) {
	return CheckRouted(sender, f, dir, nil, lim, now)
}

// CheckRouted is Check in a network of switches: an addressee served
// elsewhere (another switch serves it: the routing table relays it) is
// accepted without being in this switch's directory, which lists only
// the agencies it serves; the switch that serves it checks it.
func CheckRouted(sender certs.Identity, f Request, dir *directory.Directory, elsewhere func(telegram.Address) bool, lim Limits, now time.Time) (telegram.Header, error) {
	if sender.Role != certs.Terminal {
		return telegram.Header{}, fault.Errorf(op, fault.Permission, "%s certificates cannot file telegrams; only terminals can", sender.Role)
	}
	if !dir.Has(sender.Agency) {
		return telegram.Header{}, fault.Errorf(op, fault.Permission, "this certificate's agency %s is not in the agency directory; it cannot file", sender.Agency)
	}
	if err := CheckSize(f.BodyLen, lim); err != nil {
		return telegram.Header{}, err
	}
	if !f.Precedence.Valid() {
		return telegram.Header{}, fault.E(op, fault.Invalid, "missing or unknown precedence")
	}
	if !f.Classification.Valid() {
		return telegram.Header{}, fault.E(op, fault.Invalid, "missing or unknown classification")
	}
	if f.Classification > sender.Clearance {
		return telegram.Header{}, fault.Errorf(op, fault.Permission,
			"cannot file a %s telegram: this terminal is cleared to %s", f.Classification, sender.Clearance)
	}
	if len(f.To) == 0 {
		return telegram.Header{}, fault.E(op, fault.Invalid, "no action addressee: give at least one --to")
	}
	if n := len(f.To) + len(f.Info); n > lim.MaxAddressees {
		return telegram.Header{}, fault.Errorf(op, fault.Invalid, "%d addressees; the limit is %d", n, lim.MaxAddressees)
	}
	seen := map[telegram.Address]bool{}
	var unknown []string
	var closing string
	check := func(list []telegram.Address) ([]telegram.Address, error) {
		out := make([]telegram.Address, 0, len(list))
		for _, raw := range list {
			a, err := telegram.ParseAddress(string(raw))
			if err != nil {
				return nil, err
			}
			if seen[a] {
				return nil, fault.Errorf(op, fault.Invalid, "addressee %s is named twice", a)
			}
			seen[a] = true
			if !dir.Has(a) && (elsewhere == nil || !elsewhere(a)) {
				unknown = append(unknown, string(a))
			} else if why := dir.Closed(a); why != "" && closing == "" {
				closing = why
			}
			out = append(out, a)
		}
		return out, nil
	}
	to, err := check(f.To)
	if err != nil {
		return telegram.Header{}, err
	}
	info, err := check(f.Info)
	if err != nil {
		return telegram.Header{}, err
	}
	if len(unknown) > 0 {
		list := strings.Join(unknown[:min(len(unknown), 10)], ", ")
		if len(unknown) > 10 {
			list += fmt.Sprintf(" and %d more", len(unknown)-10)
		}
		return telegram.Header{}, fault.Errorf(op, fault.NotExist, "unknown addressee %s: not in the agency directory", list)
	}
	if closing != "" {
		return telegram.Header{}, fault.E(op, fault.NotExist, closing)
	}
	if err := CheckSubject(f.Subject, lim); err != nil {
		return telegram.Header{}, err
	}
	if len(f.Ref) > lim.MaxRef || !utf8.ValidString(f.Ref) || hasControl(f.Ref) {
		return telegram.Header{}, fault.Errorf(op, fault.Invalid, "the reference must be printable UTF-8, at most %d bytes", lim.MaxRef)
	}
	for _, t := range []struct {
		what string
		at   time.Time
	}{{"latest delivery time", f.ExpiresAt}, {"delivery time", f.DeliverAt}} {
		if !t.at.IsZero() && t.at.After(now.Add(MaxAhead)) {
			return telegram.Header{}, fault.Errorf(op, fault.Invalid, "the %s %s is more than %d days ahead", t.what, t.at.UTC().Format(time.RFC3339), MaxAhead/(24*time.Hour))
		}
	}
	if !f.ExpiresAt.IsZero() && !f.ExpiresAt.After(now) {
		return telegram.Header{}, fault.Errorf(op, fault.Invalid, "the latest delivery time %s is already past", f.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if err := custody.CheckDeliverAt(f.DeliverAt, f.ExpiresAt, now); err != nil {
		return telegram.Header{}, fault.E(op, fault.Invalid, err.Error())
	}
	var expires, deliverAt time.Time
	if !f.ExpiresAt.IsZero() {
		expires = f.ExpiresAt.UTC()
	}
	if f.DeliverAt.After(now) { // one at or before the filing time is delivery at once
		deliverAt = f.DeliverAt.UTC()
	}
	return telegram.Header{
		From: sender.Agency, To: to, Info: info, Precedence: f.Precedence, Classification: f.Classification,
		Subject: f.Subject, Ref: f.Ref, BodyLen: f.BodyLen, ExpiresAt: expires, DeliverAt: deliverAt,
	}, nil
}

// hasControl reports control characters and the bidirectional formatting
// characters that can reorder what a terminal shows (audit.UnsafeRune).
func hasControl(s string) bool {
	for _, r := range s {
		if audit.UnsafeRune(r) {
			return true
		}
	}
	return false
}

// CheckSubject is the rule for a subject. The switch applies it to a
// clear subject; a terminal applies it before sealing one, which the
// switch cannot read.
func CheckSubject(subject string, lim Limits) error {
	lim = lim.WithDefaults()
	if len(subject) > lim.MaxSubject || !utf8.ValidString(subject) || hasControl(subject) {
		return fault.Errorf("file", fault.Invalid, "the subject must be valid UTF-8 without control or bidirectional formatting characters, at most %d bytes", lim.MaxSubject)
	}
	return nil
}
