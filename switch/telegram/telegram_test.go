package telegram

import (
	"testing"
	"time"
)

func TestParsePrecedence(t *testing.T) {
	cases := map[string]Precedence{
		"FLASH": Flash, "flash": Flash, "Hỏa tốc": Flash, "HOATOC": Flash, "hoa toc": Flash, "Z": Flash,
		"IMMEDIATE": Immediate, "Thượng khẩn": Immediate, "thuong-khan": Immediate,
		"PRIORITY": Priority, "Khẩn": Priority, "khan": Priority,
		"ROUTINE": Routine, "Thường": Routine, "thuong": Routine,
		// Decomposed (NFD: a base letter, then its combining marks, as
		// macOS types), mixed case, and the Vietnamese D.
		"Ho\u0309a to\u0302\u0301c": Flash, "Thu\u031bo\u031b\u0323ng kha\u0302\u0309n": Immediate, "HỎA TỐC": Flash, "hỏa tốc": Flash,
	}
	for in, want := range cases {
		if got, err := ParsePrecedence(in); err != nil || got != want {
			t.Errorf("ParsePrecedence(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "URGENT", "5", "FLASHY"} {
		if _, err := ParsePrecedence(bad); err == nil {
			t.Errorf("ParsePrecedence(%q) accepted", bad)
		}
	}
	if Flash.Rank() != 0 || Routine.Rank() != 3 || PrecedenceOfRank(1) != Immediate {
		t.Error("rank order is not FLASH first")
	}
}

func TestParseClassification(t *testing.T) {
	cases := map[string]Classification{
		"UNCLASSIFIED": Unclassified, "không mật": Unclassified,
		"CONFIDENTIAL": Confidential, "Mật": Confidential, "mat": Confidential,
		"SECRET": Secret, "Tối mật": Secret, "toi_mat": Secret,
		"TOP SECRET": TopSecret, "top-secret": TopSecret, "TOPSECRET": TopSecret, "Tuyệt mật": TopSecret,
		"Tuye\u0323\u0302t ma\u0323\u0302t": TopSecret, "Kho\u0302ng ma\u0323\u0302t": Unclassified, "TỐI MẬT": Secret,
	}
	for in, want := range cases {
		if got, err := ParseClassification(in); err != nil || got != want {
			t.Errorf("ParseClassification(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "COSMIC", "SECRETS"} {
		if _, err := ParseClassification(bad); err == nil {
			t.Errorf("ParseClassification(%q) accepted", bad)
		}
	}
	if !(Unclassified < Confidential && Confidential < Secret && Secret < TopSecret) {
		t.Error("classifications are not ordered lowest first")
	}
}

func TestParseAddress(t *testing.T) {
	good := map[string]Address{"NA.VINH.UBND": "NA.VINH.UBND", "tw.vptw": "TW.VPTW", " HN.UBND ": "HN.UBND", "CP": "CP"}
	for in, want := range good {
		if got, err := ParseAddress(in); err != nil || got != want {
			t.Errorf("ParseAddress(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", ".", "NA..TU", "NA.TU.", "NA/TU", "NA.TỈNH", "A.B.C.D.E.F.G", "ABCDEFGHIJKLMNOPQ.X", "NA TU"} {
		if _, err := ParseAddress(bad); err == nil {
			t.Errorf("ParseAddress(%q) accepted", bad)
		}
	}
	if Address("NA.VINH.UBND").Tier() != 3 {
		t.Error("tier of a three-segment address")
	}
}

func TestIDsAreOrderedAndParse(t *testing.T) {
	g := NewIDGen()
	now := time.Now()
	prev := g.New(now)
	for i := 0; i < 1000; i++ {
		id := g.New(now)
		if string(id[:]) <= string(prev[:]) {
			t.Fatalf("ID %s not after %s", id, prev)
		}
		prev = id
	}
	back, err := ParseID(prev.String())
	if err != nil || back != prev {
		t.Fatalf("ParseID round trip: %v %v", back, err)
	}
	if _, err := ParseID("not-an-id"); err == nil {
		t.Error("ParseID accepted garbage")
	}
}
