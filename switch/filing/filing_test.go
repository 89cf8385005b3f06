package filing

import (
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

func TestCheck(t *testing.T) {
	dir, _ := directory.New([]directory.Agency{{Address: "HN.UBND"}, {Address: "NA.TU"}, {Address: "NA.UBND"}})
	term := certs.Identity{Role: certs.Terminal, Agency: "HN.UBND", Clearance: telegram.Secret}
	ok := Request{To: []telegram.Address{"NA.TU"}, Precedence: telegram.Flash, Classification: telegram.Secret, BodyLen: 10}
	lim := DefaultLimits
	now := time.Now()
	with := func(f func(*Request)) Request { c := ok; f(&c); return c }
	cases := []struct {
		name string
		who  certs.Identity
		f    Request
		kind fault.Kind // Other: accepted
	}{
		{"good", term, ok, fault.Other},
		{"lower-case addressee is canonicalised", term, with(func(f *Request) { f.To = []telegram.Address{"na.tu"} }), fault.Other},
		{"operator", certs.Identity{Role: certs.Operator, Clearance: telegram.TopSecret}, ok, fault.Permission},
		{"above clearance", term, with(func(f *Request) { f.Classification = telegram.TopSecret }), fault.Permission},
		{"unknown addressee", term, with(func(f *Request) { f.To = []telegram.Address{"XX.YY"} }), fault.NotExist},
		{"unknown info addressee", term, with(func(f *Request) { f.Info = []telegram.Address{"XX.YY"} }), fault.NotExist},
		{"malformed addressee", term, with(func(f *Request) { f.To = []telegram.Address{"NA..TU"} }), fault.Invalid},
		{"no action addressee", term, with(func(f *Request) { f.To = nil; f.Info = []telegram.Address{"NA.TU"} }), fault.Invalid},
		{"duplicate", term, with(func(f *Request) { f.Info = []telegram.Address{"NA.TU"} }), fault.Invalid},
		{"no precedence", term, with(func(f *Request) { f.Precedence = 0 }), fault.Invalid},
		{"no classification", term, with(func(f *Request) { f.Classification = 0 }), fault.Invalid},
		{"empty body", term, with(func(f *Request) { f.BodyLen = 0 }), fault.Invalid},
		{"oversize body", term, with(func(f *Request) { f.BodyLen = lim.MaxBody + 1 }), fault.TooLarge},
		{"long subject", term, with(func(f *Request) { f.Subject = strings.Repeat("x", lim.MaxSubject+1) }), fault.Invalid},
		{"invalid UTF-8 subject", term, with(func(f *Request) { f.Subject = "\xff" }), fault.Invalid},
		{"control in ref", term, with(func(f *Request) { f.Ref = "a\nb" }), fault.Invalid},
		{"bidi override in subject", term, with(func(f *Request) { f.Subject = "abc\u202edef" }), fault.Invalid},
		{"C1 control in subject", term, with(func(f *Request) { f.Subject = "a\u009bb" }), fault.Invalid},
		{"expiry in 2600", term, with(func(f *Request) { f.ExpiresAt = time.Date(2600, 1, 1, 0, 0, 0, 0, time.UTC) }), fault.Invalid},
		{"deliver-at two years ahead", term, with(func(f *Request) { f.DeliverAt = now.Add(2 * 365 * 24 * time.Hour) }), fault.Invalid},
		{"an agency not in the directory", certs.Identity{Role: certs.Terminal, Agency: "XX.GONE", Clearance: telegram.Secret}, ok, fault.Permission},
		{"Vietnamese subject", term, with(func(f *Request) { f.Subject = "Hỏa tốc: báo cáo lũ" }), fault.Other},
		{"expiry in the past", term, with(func(f *Request) { f.ExpiresAt = now.Add(-time.Second) }), fault.Invalid},
		{"expiry ahead", term, with(func(f *Request) { f.ExpiresAt = now.Add(time.Hour) }), fault.Other},
		{"deliver-at ahead", term, with(func(f *Request) { f.DeliverAt = now.Add(time.Hour) }), fault.Other},
		{"deliver-at now", term, with(func(f *Request) { f.DeliverAt = now }), fault.Other},
		{"deliver-at before filing", term, with(func(f *Request) { f.DeliverAt = now.Add(-time.Second) }), fault.Invalid},
		{"deliver-at after expiry", term, with(func(f *Request) { f.ExpiresAt, f.DeliverAt = now.Add(time.Hour), now.Add(2*time.Hour) }), fault.Invalid},
		{"too many addressees", term, with(func(f *Request) {
			for i := 0; i < lim.MaxAddressees; i++ {
				f.Info = append(f.Info, "NA.UBND")
			}
		}), fault.Invalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := Check(tc.who, tc.f, dir, lim, now)
			if tc.kind == fault.Other {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if h.From != "HN.UBND" || h.To[0] != "NA.TU" {
					t.Fatalf("header %+v", h)
				}
				return
			}
			if fault.KindOf(err) != tc.kind {
				t.Fatalf("got %v (kind %s), want kind %s", err, fault.KindOf(err), tc.kind)
			}
		})
	}
}
