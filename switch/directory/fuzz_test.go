package directory

import (
	"testing"
)

// FuzzParse: no directory file panics the parser; what it accepts
// round-trips through Marshal, and every address in it is valid.
func FuzzParse(f *testing.F) {
	f.Add([]byte("[[agency]]\naddress = \"NA.UBND\"\nname = \"Ủy ban nhân dân tỉnh Nghệ An\"\nlevel = \"province\"\n"))
	f.Add([]byte("[[agency]]\naddress = \"na.ubnd\"\n[[agency]]\naddress = \"NA.UBND\"\n"))
	f.Add([]byte("[[agency]]\naddress = \"A..B\"\n"))
	f.Add([]byte("agency = 3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Parse(data)
		if err != nil {
			return
		}
		b, err := d.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(b)
		if err != nil || len(again.Agencies()) != len(d.Agencies()) {
			t.Fatalf("a parsed directory does not round-trip: %v", err)
		}
		for _, a := range d.Agencies() {
			if !d.Has(a.Address) || a.LevelOf() == "" {
				t.Fatalf("agency %+v", a)
			}
		}
	})
}
