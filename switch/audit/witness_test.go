package audit

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

// logOf is a log of n entries named by prefix (a fork uses another
// prefix from some index on) and its signer.
func logOf(n int, fork int, prefix string) *testonly.Tree {
	t := testonly.New(Hasher)
	for i := range n {
		e := fmt.Sprintf("entry %d", i)
		if fork >= 0 && i >= fork {
			e = prefix + e
		}
		t.AppendData([]byte(e))
	}
	return t
}

func signAt(t *testing.T, skey string, tr *testonly.Tree, size uint64) []byte {
	t.Helper()
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Sign(s, size, tr.HashAt(size))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A witness cosigns a log's checkpoints as long as each extends the last
// it cosigned, and refuses a fork: a switch that shows one history to one
// auditor and another to a second is caught by the witness both consult.
func TestWitnessCatchesAFork(t *testing.T) {
	skey, vkey, err := NewKey("dienbao/NA-SW")
	if err != nil {
		t.Fatal(err)
	}
	wskey, wvkey, err := NewWitnessKey("witness/HN-SW")
	if err != nil {
		t.Fatal(err)
	}
	honest := logOf(8, -1, "")
	forked := logOf(8, 4, "forged ") // same first four entries, then others

	// First sight: nothing to compare with.
	cos3, last, err := Cosign(signAt(t, skey, honest, 3), vkey, wskey, nil, nil)
	if err != nil || last.Size != 3 {
		t.Fatalf("first cosignature: %v (size %d)", err, last.Size)
	}
	if _, err := Witnessed(cos3, vkey, []string{wvkey}, 1); err != nil {
		t.Fatalf("cosigned checkpoint: %v", err)
	}
	// The honest log grows: consistent, cosigned.
	p, _ := honest.ConsistencyProof(3, 6)
	cos6, last6, err := Cosign(signAt(t, skey, honest, 6), vkey, wskey, &last, p)
	if err != nil || last6.Size != 6 || !strings.Contains(string(cos6), "— witness/HN-SW ") || !strings.Contains(string(cos6), "— dienbao/NA-SW ") {
		t.Fatalf("honest growth: %v\n%s", err, cos6)
	}
	// The fork, shown to another auditor, at a larger size: no proof from
	// the witness's last checkpoint can make it consistent.
	fp, _ := forked.ConsistencyProof(3, 7)
	if _, _, err := Cosign(signAt(t, skey, forked, 7), vkey, wskey, &last6, fp); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("fork at size 7: %v, want ErrInconsistent", err)
	}
	if _, _, err := Cosign(signAt(t, skey, forked, 7), vkey, wskey, &last6, nil); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("fork at size 7 without a proof: %v, want ErrInconsistent", err)
	}
	// The fork at the witness's own size: a different root.
	if _, _, err := Cosign(signAt(t, skey, forked, 6), vkey, wskey, &last6, nil); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("fork at size 6: %v, want ErrInconsistent", err)
	}
	// A log that shrank.
	if _, _, err := Cosign(signAt(t, skey, honest, 5), vkey, wskey, &last6, nil); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("smaller: %v, want ErrInconsistent", err)
	}
	// The same checkpoint again is fine.
	if _, _, err := Cosign(signAt(t, skey, honest, 6), vkey, wskey, &last6, nil); err != nil {
		t.Fatalf("same checkpoint again: %v", err)
	}
	// Another log's checkpoint is not compared with this one's.
	oskey, ovkey, _ := NewKey("dienbao/HN-SW")
	if _, _, err := Cosign(signAt(t, oskey, honest, 7), ovkey, wskey, &last6, nil); err == nil || errors.Is(err, ErrInconsistent) {
		t.Fatalf("other log against this log's last: %v, want an origin error", err)
	}
	// A checkpoint not signed by the log's key is not cosigned.
	if _, _, err := Cosign(signAt(t, oskey, honest, 7), vkey, wskey, &last6, nil); err == nil {
		t.Fatal("a checkpoint signed by another key was cosigned")
	}
}

// The verifier's policy: at least N of these witness keys, each counted
// once.
func TestWitnessedPolicy(t *testing.T) {
	skey, vkey, _ := NewKey("dienbao/NA-SW")
	w1s, w1v, _ := NewWitnessKey("witness/one")
	w2s, w2v, _ := NewWitnessKey("witness/two")
	_, w3v, _ := NewWitnessKey("witness/three")
	tr := logOf(4, -1, "")
	cp := signAt(t, skey, tr, 4)
	one, _, err := Cosign(cp, vkey, w1s, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	both, _, err := Cosign(one, vkey, w2s, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		signed []byte
		keys   []string
		n      int
		ok     bool
	}{
		{"none required", cp, nil, 0, true},
		{"one of one", one, []string{w1v}, 1, true},
		{"uncosigned", cp, []string{w1v}, 1, false},
		{"two of two", both, []string{w1v, w2v}, 2, true},
		{"two of three", both, []string{w1v, w2v, w3v}, 2, true},
		{"three of three", both, []string{w1v, w2v, w3v}, 3, false},
		{"a key listed twice counts once", one, []string{w1v, w1v}, 2, false},
		{"another witness's key", one, []string{w3v}, 1, false},
	} {
		_, err := Witnessed(c.signed, vkey, c.keys, c.n)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if _, err := Witnessed(both, vkey, []string{"not a key"}, 1); err == nil {
		t.Error("a malformed witness key was accepted")
	}
}
