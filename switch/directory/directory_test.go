package directory

import (
	"testing"

	"github.com/dienbao/dienbao/switch/fault"
)

func TestParse(t *testing.T) {
	d, err := Parse([]byte("[[agency]]\naddress = \"na.tu\"\nname = \"Tỉnh ủy Nghệ An\"\n[[agency]]\naddress = \"HN.UBND\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Has("NA.TU") || !d.Has("HN.UBND") || d.Has("XX") || len(d.Agencies()) != 2 {
		t.Fatalf("directory %+v", d.Agencies())
	}
	b, _ := d.Marshal()
	back, err := Parse(b)
	if err != nil || len(back.Agencies()) != 2 {
		t.Fatalf("marshal round trip: %v", err)
	}
	for name, bad := range map[string]string{
		"duplicate":     "[[agency]]\naddress = \"A\"\n[[agency]]\naddress = \"a\"\n",
		"bad address":   "[[agency]]\naddress = \"A..B\"\n",
		"unknown field": "[[agency]]\naddress = \"A\"\ncolour = \"red\"\n",
		"not TOML":      "[[agency\n",
	} {
		if _, err := Parse([]byte(bad)); fault.KindOf(err) != fault.Invalid {
			t.Errorf("%s: %v, want an Invalid error", name, err)
		}
	}
}
