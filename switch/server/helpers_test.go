package server_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// issueTerminal issues another terminal certificate from the site's dev
// CA into ids/NAME and returns NAME.
func issueTerminal(t *testing.T, site *daemontest.Site, agency telegram.Address, clearance telegram.Classification) string {
	t.Helper()
	ca, err := certs.LoadCA(filepath.Join(site.Dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.Issue(certs.Request{Name: string(agency) + " terminal 2", Role: certs.Terminal, Agency: agency,
		Clearance: clearance, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	name := string(agency) + "-2"
	if err := certs.WriteFolder(site.IDDir(name), iss, ca.PEM, site.Server.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if err := daemon.EnsureDevAgencyKeys(site.Dir, agency, site.IDDir(name)); err != nil {
		t.Fatal(err)
	}
	return name
}

// flipStoredBit flips one bit, at offset at (negative: from the end), of
// the stored value of key in the stopped dev site in dir, as damage on
// disk would.
func flipStoredBit(t *testing.T, dir string, keyOf func(*store.Store) []byte, at int) {
	t.Helper()
	st := daemontest.OpenStore(t, dir)
	defer st.Close()
	key := keyOf(st)
	err := st.DB().Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		v, _ := item.ValueCopy(nil)
		if at < 0 {
			at += len(v)
		}
		v[at] ^= 1
		return txn.Set(key, v)
	})
	if err != nil {
		t.Fatal(err)
	}
}
