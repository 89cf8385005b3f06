package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/pelletier/go-toml/v2"
)

// netnsNet is the dev network with each switch in a network namespace of
// its own, joined by veth pairs: HN-TW, TW-NA, and HN-NA (the provinces'
// alternate path). Addresses are 10.201.x.y, inside these namespaces only.
type netnsNet struct {
	t     *testing.T
	ip    string
	tg    string
	dir   string
	ns    map[string]string    // switch → namespace
	veth  map[[2]string]string // (switch, peer) → its end of their pair
	addr  map[[2]string]string // (switch, peer) → the peer's address as the switch dials it
	procs map[string]*process
}

func newNetnsNet(t *testing.T) *netnsNet {
	t.Helper()
	if os.Getuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the network-namespace test needs root (CI runs as root)")
		}
		t.Skip("needs root: network namespaces")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ip is not installed (.ci/run installs iproute2)")
		}
		t.Skip("ip (iproute2) is not installed")
	}
	n := &netnsNet{t: t, ip: ip, dir: filepath.Join(t.TempDir(), "net"), ns: map[string]string{},
		veth: map[[2]string]string{}, addr: map[[2]string]string{}, procs: map[string]*process{}}
	tag := fmt.Sprintf("%04d", os.Getpid()%10000)
	for _, s := range daemon.DevNetworkSwitches() {
		n.ns[s] = "db" + tag + strings.ToLower(s)
		n.run(ip, "netns", "add", n.ns[s])
		t.Cleanup(func() { exec.Command(ip, "netns", "del", n.ns[s]).Run() })
		n.run(ip, "-n", n.ns[s], "link", "set", "lo", "up")
	}
	for i, pair := range [][2]string{{"HN", "TW"}, {"TW", "NA"}, {"HN", "NA"}} {
		a, b := pair[0], pair[1]
		va, vb := "db"+tag+strings.ToLower(a+b), "db"+tag+strings.ToLower(b+a)
		n.run(ip, "link", "add", va, "type", "veth", "peer", "name", vb)
		n.run(ip, "link", "set", va, "netns", n.ns[a])
		n.run(ip, "link", "set", vb, "netns", n.ns[b])
		ipa, ipb := fmt.Sprintf("10.201.%d.1", i+1), fmt.Sprintf("10.201.%d.2", i+1)
		n.run(ip, "-n", n.ns[a], "addr", "add", ipa+"/30", "dev", va)
		n.run(ip, "-n", n.ns[b], "addr", "add", ipb+"/30", "dev", vb)
		n.run(ip, "-n", n.ns[a], "link", "set", va, "up")
		n.run(ip, "-n", n.ns[b], "link", "set", vb, "up")
		n.veth[[2]string{a, b}], n.veth[[2]string{b, a}] = va, vb
		n.addr[[2]string{a, b}], n.addr[[2]string{b, a}] = ipb+":4433", ipa+":4433"
	}
	return n
}

func (n *netnsNet) run(name string, args ...string) string {
	n.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// configure writes the dev network's configs for the namespaces: each
// switch listens on every address of its namespace, dials its peers at
// their veth addresses, and diverts FLASH after a second.
func (n *netnsNet) configure() {
	names := daemon.DevNetworkSwitches()
	loop := make([]string, len(names))
	for i := range loop {
		loop[i] = "127.0.0.1:4433" // what terminals in the namespace dial
	}
	if _, err := daemon.DevNetworkAt(n.dir, loop); err != nil {
		n.t.Fatal(err)
	}
	for _, s := range names {
		path := filepath.Join(n.dir, s, "switchd.toml")
		cfg, err := daemon.LoadConfig(path)
		if err != nil {
			n.t.Fatal(err)
		}
		cfg.Listen = "0.0.0.0:4433"
		for i, p := range cfg.Network.Peers {
			cfg.Network.Peers[i].Address = n.addr[[2]string{s, p.Name}]
		}
		cfg.Network.Divert.Flash = daemon.Duration(time.Second)
		b, err := toml.Marshal(cfg)
		if err != nil {
			n.t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			n.t.Fatal(err)
		}
	}
}

// start runs switch s's switchd in its namespace and waits until it
// answers its operator.
func (n *netnsNet) start(bin, s string) {
	n.t.Helper()
	n.procs[s] = startCmd(n.t, exec.Command(n.ip, "netns", "exec", n.ns[s], bin, "--config", filepath.Join(n.dir, s, "switchd.toml")))
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := n.tgIn(s, "operator", "queues"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("switch %s did not come up\n%s", s, n.procs[s].out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tgIn runs tg as a dev identity of switch s, in s's namespace.
func (n *netnsNet) tgIn(s, id string, args ...string) (string, error) {
	full := append([]string{"netns", "exec", n.ns[s], n.tg, "--id", filepath.Join(n.dir, s, "ids", id)}, args...)
	var out, errb bytes.Buffer
	cmd := exec.Command(n.ip, full...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%v: %s", err, errb.String())
	}
	return out.String(), nil
}

// waitInbox receives as NA.UBND at NA until telegram id is in, and returns
// the switches it passed.
func (n *netnsNet) waitInbox(id string) []string {
	n.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := n.tgIn("NA", "NA.UBND", "--json", "inbox")
		if err != nil {
			n.t.Fatal(err)
		}
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var m struct {
				ID    string `json:"id"`
				Trace []struct {
					Switch string `json:"switch"`
				} `json:"trace"`
			}
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.ID == id {
				var way []string
				for _, h := range m.Trace {
					way = append(way, h.Switch)
				}
				return way
			}
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s did not reach NA.UBND within a minute", id)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Three switches, each in its own network namespace, joined by veth
// pairs. A FLASH from HN to NA goes by the centre; with HN's veth to the
// centre set down (ip link set down), the next FLASH takes the direct
// path once FLASH's diversion time has passed; with it up again, a
// ROUTINE goes by the centre again.
func TestNetnsLinkCut(t *testing.T) {
	n := newNetnsNet(t)
	bin := buildSwitchd(t)
	n.tg = filepath.Join(t.TempDir(), "tg")
	if out, err := exec.Command("go", "build", "-o", n.tg, "../tg").CombinedOutput(); err != nil {
		t.Fatalf("go build tg: %v\n%s", err, out)
	}
	n.configure()
	for _, s := range daemon.DevNetworkSwitches() {
		n.start(bin, s)
	}
	send := func(prec, text string) string {
		t.Helper()
		out, err := n.tgIn("HN", "HN.UBND", "send", "--to", "NA.UBND", "--prec", prec, text)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	if way := n.waitInbox(send("FLASH", "qua trung tâm")); strings.Join(way, ">") != "HN>TW>NA" {
		t.Fatalf("first FLASH went %v, want HN>TW>NA", way)
	}
	// Cut HN's line to the centre.
	cut := time.Now()
	n.run(n.ip, "-n", n.ns["HN"], "link", "set", n.veth[[2]string{"HN", "TW"}], "down")
	id := send("FLASH", "đường vòng")
	if way := n.waitInbox(id); strings.Join(way, ">") != "HN>NA" {
		t.Fatalf("FLASH with HN-TW down went %v, want HN>NA", way)
	}
	t.Logf("with HN's line to TW down, a FLASH reached NA.UBND by the alternate %v after the cut (link idle timeout 10 s, FLASH diversion 1 s)",
		time.Since(cut).Round(100*time.Millisecond))
	n.run(n.ip, "-n", n.ns["HN"], "link", "set", n.veth[[2]string{"HN", "TW"}], "up")
	// Back: HN's link to TW comes up again within seconds (it dials every
	// second); a ROUTINE filed then goes by the centre.
	deadline := time.Now().Add(time.Minute)
	for {
		out, err := n.tgIn("HN", "operator", "--json", "links")
		if err == nil && strings.Contains(out, `"peer":"TW"`) && strings.Contains(strings.SplitAfter(out, "\n")[0], `"state":"up"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("HN's link to TW did not come back: %s %v", out, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if way := n.waitInbox(send("ROUTINE", "trở lại")); strings.Join(way, ">") != "HN>TW>NA" {
		t.Fatalf("ROUTINE after the line came back went %v, want HN>TW>NA", way)
	}
	for _, s := range daemon.DevNetworkSwitches() {
		n.procs[s].stop(t)
	}
}
