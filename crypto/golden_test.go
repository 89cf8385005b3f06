package crypto

import (
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got with testdata/golden/name, or rewrites it with
// -update. A change to a stored format shows as a changed golden file.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s changed: a stored format must not change by accident (run with -update if it is meant to)\n got %s\nwant %s", path, got, want)
	}
}

// The layout of a sealed record, with a fixed key and nonce: every record
// in every store is in this format, so it must not change by accident.
func TestSealedRecordGolden(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, 32)
	var nonce [24]byte
	for i := range nonce {
		nonce[i] = byte(i)
	}
	sealed := sealNonce(nil, newAEAD(key), 7, nonce, []byte("h\x01record-key"), []byte("a telegram header"))
	golden(t, "sealed-record.hex", []byte(hex.EncodeToString(sealed)+"\n"))
	if got, err := openAEAD(nil, newAEAD(key), []byte("h\x01record-key"), sealed); err != nil || string(got) != "a telegram header" {
		t.Fatalf("the golden record does not open: %q %v", got, err)
	}
}
