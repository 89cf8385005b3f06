package audit

import (
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is a verified checkpoint: the log's origin, its size and the
// root hash of the tree over its first Size leaves.
type Checkpoint = log.Checkpoint

// NewKey makes a new Ed25519 note key pair for origin: the signer key
// (keep it secret) and the verifier key (publish it).
func NewKey(origin string) (skey, vkey string, err error) {
	if err := CheckOrigin(origin); err != nil {
		return "", "", err
	}
	return note.GenerateKey(rand.Reader, origin)
}

// CheckOrigin refuses an origin that cannot name a note key: it must be
// non-empty, without spaces or '+'.
func CheckOrigin(origin string) error {
	if origin == "" || strings.ContainsAny(origin, " \t\n+") {
		return fmt.Errorf("audit log origin %q: it must be non-empty, without spaces or '+'", origin)
	}
	return nil
}

// OriginFor turns a switch name into an origin: "dienbao/" and the name with
// spaces and '+' replaced by '-'.
func OriginFor(name string) string {
	return "dienbao/" + strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '+' {
			return '-'
		}
		return r
	}, name)
}

// Sign makes the signed note of a checkpoint.
func Sign(signer note.Signer, size uint64, root []byte) ([]byte, error) {
	body := log.Checkpoint{Origin: signer.Name(), Size: size, Hash: root}.Marshal()
	return note.Sign(&note.Note{Text: string(body)}, signer)
}

// OpenCheckpoint checks a signed checkpoint against the verifier key and
// returns what it says. The origin must be the key's name.
func OpenCheckpoint(signed []byte, vkey string) (Checkpoint, error) {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("verifier key: %w", err)
	}
	cp, _, _, err := log.ParseCheckpoint(signed, v.Name(), v)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	if len(cp.Hash) != HashSize {
		return Checkpoint{}, fmt.Errorf("checkpoint: root hash of %d bytes, want %d", len(cp.Hash), HashSize)
	}
	return *cp, nil
}
