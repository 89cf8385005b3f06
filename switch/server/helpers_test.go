package server_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
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
	return name
}
