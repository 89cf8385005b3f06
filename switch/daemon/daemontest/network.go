package daemontest

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
)

// NetSwitch describes one switch of a test network: its name, the
// prefixes it serves, its routes (prefix → next hops) and its peers.
type NetSwitch struct {
	Name     string
	Prefixes []string
	Routes   []daemon.Route
	Peers    []string
	// Forward lists the peers this switch reaches through a Forwarder
	// (Network.Forwarders["HN>TW"] for HN's link to TW), which the test
	// can cut, restore or slow.
	Forward []string
	// Tune, if set, adjusts the switch's configuration further.
	Tune func(*daemon.Config)
}

// Network is a network of dev switches on loopback sharing one CA.
type Network struct {
	t     testing.TB
	Sites map[string]*Site
	Addrs map[string]string
	specs map[string]NetSwitch
	dirs  map[string]string
	// Forwarders are the links that go through a Forwarder, by "FROM>TO".
	Forwarders map[string]*Forwarder
}

// StartNetwork starts the switches of specs, each on its own dev site
// (every dev identity, every dev agency in its directory) with a switch
// certificate named as the switch, all from one CA.
func StartNetwork(t testing.TB, log func(name string) *zap.Logger, specs ...NetSwitch) *Network {
	t.Helper()
	base := t.TempDir()
	ca, err := certs.NewCA("dienbao test network CA", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	n := &Network{t: t, Sites: map[string]*Site{}, Addrs: map[string]string{}, specs: map[string]NetSwitch{}, dirs: map[string]string{},
		Forwarders: map[string]*Forwarder{}}
	for _, sp := range specs {
		n.Addrs[sp.Name] = freeUDP(t)
		n.specs[sp.Name] = sp
		dir := filepath.Join(base, sp.Name)
		n.dirs[sp.Name] = dir
		if err := ca.Save(filepath.Join(dir, "ca")); err != nil {
			t.Fatal(err)
		}
		iss, err := ca.Issue(certs.Request{Name: sp.Name, Role: certs.Switch, Agency: telegram.Address("SW." + sp.Name),
			Clearance: telegram.TopSecret, DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Validity: 24 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if err := certs.WriteFolder(filepath.Join(dir, "switch"), iss, ca.PEM, n.Addrs[sp.Name]); err != nil {
			t.Fatal(err)
		}
	}
	// One set of agency keys for the whole network, as one directory;
	// with keys for XX.UBND and ZZ.UBND, which no switch serves (the tests
	// of telegrams nobody can route).
	if err := daemon.SeedDevAgencyKeys(ca, base, "XX.UBND", "ZZ.UBND"); err != nil {
		t.Fatal(err)
	}
	for _, sp := range specs {
		if err := daemon.ShareDevAgencyKeys(base, n.dirs[sp.Name]); err != nil {
			t.Fatal(err)
		}
	}
	for _, sp := range specs {
		for _, p := range sp.Forward {
			n.Forwarders[sp.Name+">"+p] = NewForwarder(t, n.Addrs[p])
		}
	}
	for _, sp := range specs {
		var lg *zap.Logger
		if log != nil {
			lg = log(sp.Name)
		}
		n.Start(sp.Name, lg)
	}
	return n
}

// Start starts (or restarts) switch name.
func (n *Network) Start(name string, log *zap.Logger) *Site {
	n.t.Helper()
	sp := n.specs[name]
	site := StartWith(n.t, n.dirs[name], log, func(c *daemon.Config) {
		c.Listen = n.Addrs[name]
		c.Name = name
		c.Network = daemon.Network{Name: name, Prefixes: sp.Prefixes, Routes: sp.Routes}
		for _, p := range sp.Peers {
			addr := n.Addrs[p]
			if f := n.Forwarders[name+">"+p]; f != nil {
				addr = f.Addr
			}
			c.Network.Peers = append(c.Network.Peers, daemon.Peer{Name: p, Address: addr})
		}
		if sp.Tune != nil {
			sp.Tune(c)
		}
	})
	for _, di := range daemon.DevIdentities {
		if err := os.WriteFile(filepath.Join(site.IDDir(di.Name), certs.FolderSwitch), []byte(n.Addrs[name]+"\n"), 0o644); err != nil {
			n.t.Fatal(err)
		}
	}
	n.Sites[name] = site
	return site
}

// freeUDP is a loopback UDP address free at this moment.
func freeUDP(t testing.TB) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// CentreAndProvinces starts the smallest network: a centre (TW, serving TW
// and CP) and two provinces (HN, NA), each province linked to the centre
// only, their default route; the centre routes HN and NA to them, and
// extra besides. tune, if set, adjusts every switch's configuration.
func CentreAndProvinces(t testing.TB, tune func(*daemon.Config), extra ...daemon.Route) *Network {
	t.Helper()
	toCentre := []daemon.Route{{Prefix: "*", Via: []string{"TW"}}}
	return StartNetwork(t, nil,
		NetSwitch{Name: "TW", Prefixes: []string{"TW", "CP"}, Peers: []string{"HN", "NA"}, Tune: tune,
			Routes: append([]daemon.Route{{Prefix: "HN", Via: []string{"HN"}}, {Prefix: "NA", Via: []string{"NA"}}}, extra...)},
		NetSwitch{Name: "HN", Prefixes: []string{"HN"}, Peers: []string{"TW"}, Tune: tune, Routes: toCentre},
		NetSwitch{Name: "NA", Prefixes: []string{"NA"}, Peers: []string{"TW"}, Tune: tune, Routes: toCentre},
	)
}
