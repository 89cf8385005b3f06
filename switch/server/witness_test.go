package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// witnessing is the centre and two provinces signing a checkpoint every
// 200 ms, so that their peers cosign within a second.
func witnessing(t *testing.T) *daemontest.Network {
	quick := func(c *daemon.Config) { c.Audit.CheckpointInterval = daemon.Duration(200 * time.Millisecond) }
	return daemontest.CentreAndProvinces(t, quick)
}

// Switches cosign each other's checkpoints over their links: NA's proof
// bundle for a telegram it delivered comes to carry the centre's
// cosignature, which a verifier can require ("at least 1 of these witness
// keys"); a key that did not cosign does not count.
func TestWitnessCosignsOverLinks(t *testing.T) {
	n := witnessing(t)
	hn, tw, na := n.Sites["HN"], n.Sites["TW"], n.Sites["NA"]
	id := hn.Send("HN.UBND", tg("NA.UBND", telegram.Immediate, "chứng kiến"))
	receiveUntil(t, na, "NA.UBND", inbox, 1)
	_, twKey, err := tw.Dial("auditor").AuditCosignatures(context.Background())
	if err != nil || twKey == "" {
		t.Fatalf("TW's witness key: %q, %v", twKey, err)
	}
	_, hnKey, _ := hn.Dial("auditor").AuditCosignatures(context.Background())
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := na.Dial("auditor").AuditProof(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := audit.Witnessed([]byte(b.Checkpoint), b.VerifierKey, []string{twKey}, 1); err == nil {
			if _, _, err := b.Check(""); err != nil {
				t.Fatalf("the cosigned bundle does not check: %v", err)
			}
			if _, err := audit.Witnessed([]byte(b.Checkpoint), b.VerifierKey, []string{hnKey}, 1); err == nil {
				t.Fatal("HN, not NA's peer, counted as a witness of NA's log")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("NA's bundle is not cosigned by TW after 30 s:\n%s", b.Checkpoint)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A switch that forks its log (two stores from the same keys, each grown
// its own way: what a switch would do to show two histories to two
// auditors) is caught by its witness: the witness cosigns one history and
// refuses the other, and audits the refusal.
func TestWitnessCatchesFork(t *testing.T) {
	n := witnessing(t)
	hn, tw := n.Sites["HN"], n.Sites["TW"]
	hn.Send("HN.UBND", tg("TW.VPTW", telegram.Routine, "trước khi rẽ nhánh"))
	var cosigned uint64
	deadline := time.Now().Add(30 * time.Second)
	for cosigned == 0 {
		cs, _, err := hn.Dial("auditor").AuditCosignatures(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 1 && cs[0].Witness == "TW" {
			cosigned = cs[0].Size
		}
		if time.Now().After(deadline) {
			t.Fatal("TW did not cosign HN's log within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	hn.Stop()
	// Two copies of HN's store, same keys, each grown its own way.
	fork := filepath.Join(t.TempDir(), "HN")
	if err := os.CopyFS(fork, os.DirFS(hn.Dir)); err != nil {
		t.Fatal(err)
	}
	open := func(dir string) *store.Store {
		cfg, err := daemon.LoadConfig(filepath.Join(hn.Dir, "switchd.toml"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Data = filepath.Join(dir, "data") // the copy's (its key file is the same)
		st, err := daemon.OpenStore(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	grow := func(dir, what string) (store.SignedCheckpoint, string) {
		st := open(dir)
		defer st.Close()
		if err := st.Record(store.AuditEntry{Actor: "HN", Event: store.AuditLink, Reason: what}); err != nil {
			t.Fatal(err)
		}
		cp, err := st.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		return cp, st.VerifierKey()
	}
	// proof proves the log in dir of size to consistent with its size from.
	proof := func(dir string, from, to uint64) [][]byte {
		if from == 0 || from >= to {
			return nil
		}
		st := open(dir)
		defer st.Close()
		p, err := st.ConsistencyProof(from, to)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, key := grow(hn.Dir, "history A")
	b, _ := grow(fork, "history B")
	if a.Size != b.Size || string(a.Note) == string(b.Note) {
		t.Fatalf("the two histories: sizes %d and %d, same note %v", a.Size, b.Size, string(a.Note) == string(b.Note))
	}
	f, err := certs.LoadFolder(filepath.Join(hn.Dir, "switch")) // HN's switch certificate
	if err != nil {
		t.Fatal(err)
	}
	f.Switch = n.Addrs["TW"]
	ctx := context.Background()
	c, err := client.Dial(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := wire.CosignRequest{Checkpoint: a.Note, LogKey: key, Old: cosigned, Proof: proof(hn.Dir, cosigned, a.Size)}
	got, err := c.Cosign(ctx, req)
	if err == nil && got.Note == nil && got.Conflict > cosigned {
		// TW cosigned a later checkpoint of HN's before HN stopped (its
		// log grew, and it signs one at stop): from there, as the
		// protocol says.
		req.Old, req.Proof = got.Conflict, proof(hn.Dir, got.Conflict, a.Size)
		got, err = c.Cosign(ctx, req)
	}
	if err != nil || got.Note == nil {
		t.Fatalf("history A: %+v, %v; want cosigned", got, err)
	}
	_, err = c.Cosign(ctx, wire.CosignRequest{Checkpoint: b.Note, LogKey: key, Old: a.Size, Proof: proof(fork, cosigned, b.Size)})
	if err == nil || !strings.Contains(err.Error(), "not consistent with the last checkpoint cosigned") {
		t.Fatalf("history B after A: %v; want refused as inconsistent", err)
	}
	es, err := tw.Server.Store().QueryAudit(store.AuditQuery{Event: audit.Witness})
	if err != nil || len(es) != 1 || es[0].Actor != "HN" || !strings.Contains(es[0].Reason, "refused to cosign HN's checkpoint of dienbao/HN") {
		t.Fatalf("TW's witness entries: %+v, %v", es, err)
	}
}
