package crypto

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/dienbao/dienbao/switch/golden"
)

// The layout of a sealed record, with a fixed key and nonce: every record
// in every store is in this format, so it must not change by accident.
func TestSealedRecordGolden(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, 32)
	var nonce [24]byte
	for i := range nonce {
		nonce[i] = byte(i)
	}
	sealed := sealNonce(nil, newAEAD(key), 7, nonce, []byte("h\x01record-key"), []byte("a telegram header"))
	golden.Check(t, "sealed-record.hex", []byte(hex.EncodeToString(sealed)+"\n"))
	if got, err := openAEAD(nil, newAEAD(key), []byte("h\x01record-key"), sealed); err != nil || string(got) != "a telegram header" {
		t.Fatalf("the golden record does not open: %q %v", got, err)
	}
}
