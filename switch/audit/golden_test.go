package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/golden"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

// goldenSigner is a fixed Ed25519 key (signatures are deterministic).
func goldenSigner(t *testing.T) (note.Signer, string) {
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)), "dienbao/golden")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s, vkey
}

// goldenEntries are four audit entries of one telegram's life.
func goldenEntries(t *testing.T) (telegram.ID, [][]byte) {
	id, err := telegram.ParseID("01M8P0BKPQ0CBJ74TKXWK7SBRK")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	es := []Entry{
		{Index: 0, At: at, Event: Filed, Actor: "HN.UBND/terminal 1", ID: id, From: "HN.UBND", Precedence: telegram.Flash, Classification: telegram.Confidential},
		{Index: 1, At: at, Event: Queued, Actor: "switch", ID: id, From: "HN.UBND", To: "NA.TU", Precedence: telegram.Flash, Classification: telegram.Confidential},
		{Index: 2, At: at.Add(time.Second), Event: Attempt, Actor: "NA.TU/terminal 1", ID: id, From: "HN.UBND", To: "NA.TU", Precedence: telegram.Flash, Classification: telegram.Confidential},
		{Index: 3, At: at.Add(2 * time.Second), Event: Delivered, Actor: "NA.TU/terminal 1", ID: id, From: "HN.UBND", To: "NA.TU", Precedence: telegram.Flash, Classification: telegram.Confidential, Reason: "Đã nhận"},
	}
	var leaves [][]byte
	for _, e := range es {
		l, err := Leaf(e)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, l)
	}
	return id, leaves
}

// The audit leaf, the signed checkpoint note and the proof bundle, made
// from fixed entries and a fixed key: what auditors' tools read.
func TestFormatsGolden(t *testing.T) {
	id, leaves := goldenEntries(t)
	golden.Check(t, "leaf.json", append(append([]byte(nil), leaves[3]...), '\n'))

	tree := testonly.New(rfc6962.DefaultHasher)
	tree.AppendData(leaves...)
	signer, vkey := goldenSigner(t)
	cp, err := Sign(signer, tree.Size(), tree.Hash())
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "checkpoint.note", cp)

	b := Bundle{ID: id, Checkpoint: string(cp), VerifierKey: vkey}
	for i, l := range leaves {
		p, err := tree.InclusionProof(uint64(i), tree.Size())
		if err != nil {
			t.Fatal(err)
		}
		b.Entries = append(b.Entries, BundleEntry{Index: uint64(i), Leaf: l, Proof: p})
	}
	js, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "bundle.json", append(js, '\n'))
	if _, got, err := b.Check(vkey); err != nil || len(got) != len(leaves) {
		t.Fatalf("the golden bundle does not check: %d entries, %v", len(got), err)
	}
}
