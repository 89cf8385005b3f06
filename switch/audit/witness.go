package audit

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"

	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/formats/witness"
	"golang.org/x/mod/sumdb/note"
)

// Witnessing (issue 18): a witness, another switch or an auditor, cosigns
// a log's checkpoint only if it is consistent with the last checkpoint of
// that log it cosigned, so a switch cannot show two different histories
// to two auditors without a witness refusing one of them. Cosignatures
// are C2SP tlog-cosignature/v1 (Ed25519, timestamped) lines added to the
// checkpoint's signed note; a verifier's policy is "at least N of these
// witness keys". The decisions here are pure; keeping the last cosigned
// checkpoint, and carrying checkpoints and proofs, is the caller's.

// NewWitnessKey makes a witness key pair named name: the signer key (keep
// it secret) and the cosignature/v1 verifier key (publish it).
func NewWitnessKey(name string) (skey, vkey string, err error) {
	if err := CheckOrigin(name); err != nil {
		return "", "", fmt.Errorf("witness name: %w", err)
	}
	skey, plain, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", err
	}
	vkey, err = fnote.VKeyToCosignatureV1(plain)
	return skey, vkey, err
}

// ErrInconsistent is a checkpoint that does not extend the last one the
// witness cosigned for its log: the log forked, or was rewritten.
var ErrInconsistent = errors.New("not consistent with the last checkpoint cosigned for this log")

// CheckExtends checks that next extends last (the last checkpoint of the
// same log this witness cosigned; nil if none): same origin, no smaller,
// the same root at the same size, and a consistency proof from last's size
// to next's otherwise.
func CheckExtends(last *Checkpoint, next Checkpoint, proof [][]byte) error {
	switch {
	case last == nil:
		return nil
	case last.Origin != next.Origin:
		return fmt.Errorf("checkpoint of %q, the last cosigned was of %q", next.Origin, last.Origin)
	case next.Size < last.Size:
		return fmt.Errorf("%w: size %d after %d (entries were removed)", ErrInconsistent, next.Size, last.Size)
	case next.Size == last.Size:
		if !bytes.Equal(next.Hash, last.Hash) {
			return fmt.Errorf("%w: size %d with a different root", ErrInconsistent, next.Size)
		}
		return nil
	case last.Size == 0:
		return nil
	}
	if err := VerifyConsistency(last.Size, next.Size, proof, last.Hash, next.Hash); err != nil {
		return fmt.Errorf("%w: from size %d to %d: %v", ErrInconsistent, last.Size, next.Size, err)
	}
	return nil
}

// Cosign checks signed, a checkpoint of the log whose key is logVKey,
// against the last checkpoint of that log this witness cosigned (see
// CheckExtends), and returns the note with the witness's cosignature
// added (the log's signature and other cosignatures kept) and the checkpoint, which becomes the
// witness's last. Nothing is cosigned when it does not extend last.
func Cosign(signed []byte, logVKey, witnessSKey string, last *Checkpoint, proof [][]byte) ([]byte, Checkpoint, error) {
	cp, err := OpenCheckpoint(signed, logVKey)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	if err := CheckExtends(last, cp, proof); err != nil {
		return nil, Checkpoint{}, err
	}
	w, err := fnote.NewSignerForCosignatureV1(witnessSKey)
	if err != nil {
		return nil, Checkpoint{}, fmt.Errorf("witness key: %w", err)
	}
	lv, err := note.NewVerifier(logVKey)
	if err != nil {
		return nil, Checkpoint{}, fmt.Errorf("verifier key: %w", err)
	}
	n, err := note.Open(signed, note.VerifierList(lv))
	if err != nil {
		return nil, Checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	// Other witnesses' cosignatures are carried as they are: each verifier
	// checks those it knows.
	out, err := note.Sign(&note.Note{Text: n.Text, Sigs: append(n.Sigs, n.UnverifiedSigs...)}, w)
	return out, cp, err
}

// Witnessed checks that signed, a checkpoint of the log whose key is
// logVKey, carries valid cosignatures of at least n of witnessVKeys (each
// key counted once), and returns the checkpoint.
func Witnessed(signed []byte, logVKey string, witnessVKeys []string, n int) (Checkpoint, error) {
	cp, err := OpenCheckpoint(signed, logVKey)
	if err != nil {
		return Checkpoint{}, err
	}
	if n <= 0 {
		return cp, nil
	}
	// transparency-dev's policy: a group satisfied by n of its witnesses.
	policy := witness.Group{N: n}
	seen := map[string]bool{}
	for _, k := range witnessVKeys {
		if seen[k] {
			continue
		}
		seen[k] = true
		v, err := fnote.NewVerifierForCosignatureV1(k)
		if err != nil {
			return Checkpoint{}, fmt.Errorf("witness key %q: %w", k, err)
		}
		policy.Components = append(policy.Components, witness.Witness{Key: v})
	}
	if !policy.Satisfied(signed) {
		return Checkpoint{}, fmt.Errorf("checkpoint of %s at size %d is not cosigned by %d of the %d witness keys given", cp.Origin, cp.Size, n, len(policy.Components))
	}
	return cp, nil
}
