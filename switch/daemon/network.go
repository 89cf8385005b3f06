package daemon

import (
	"net"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/route"
	"github.com/dienbao/dienbao/switch/server"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Network is the [network] table: this switch's place in a network of
// switches (docs/DESIGN.md, "A network of switches"). Absent, the switch
// serves every address in its directory and relays nothing.
//
//	[network]
//	name      = "HN"            # this switch's name: its switch certificate's name, and its name in traces
//	prefixes  = ["HN"]          # the addresses it serves (whole segments: HN covers HN.UBND)
//	hop_limit = 8               # switches a telegram may pass, the filing one included
//
//	[[network.peers]]           # switches this one links with, by certificate name
//	name    = "TW"
//	address = "10.0.0.1:4433"
//
//	[[network.routes]]          # longest prefix wins; "*" is the default route
//	prefix = "*"
//	via    = ["TW", "NA"]       # next hops in order of preference
//
//	[network.divert]            # how long the preferred next hop may be down before traffic takes an alternate
//	flash = "5s"                # (defaults shown)
//	immediate = "30s"
//	priority  = "2m"
//	routine   = "10m"
type Network struct {
	Name     string         `toml:"name"`
	Prefixes []string       `toml:"prefixes"`
	HopLimit int            `toml:"hop_limit"`
	Peers    []Peer         `toml:"peers"`
	Routes   []Route        `toml:"routes"`
	Divert   SpeedOfService `toml:"divert"`
}

// Peer is one [[network.peers]] entry.
type Peer struct {
	Name    string `toml:"name"`
	Address string `toml:"address"`
}

// Route is one [[network.routes]] entry.
type Route struct {
	Prefix string   `toml:"prefix"`
	Via    []string `toml:"via"`
}

// enabled reports whether the table is there.
func (n Network) enabled() bool {
	return n.Name != "" || len(n.Prefixes) > 0 || len(n.Peers) > 0 || len(n.Routes) > 0
}

// build checks the table and makes the server's network settings (nil
// when there is none).
func (n Network) build() (*server.Network, error) {
	const op = "config"
	if !n.enabled() {
		return nil, nil
	}
	if n.Name == "" {
		return nil, fault.E(op, fault.Invalid, "[network] needs this switch's name")
	}
	if len(n.Prefixes) == 0 {
		return nil, fault.E(op, fault.Invalid, "[network] needs the prefixes of the addresses this switch serves")
	}
	own := make([]route.Prefix, len(n.Prefixes))
	for i, s := range n.Prefixes {
		p, err := route.ParsePrefix(s)
		if err != nil {
			return nil, fault.E(op, fault.Invalid, "[network] prefixes: "+err.Error())
		}
		own[i] = p
	}
	peers := make([]server.Peer, 0, len(n.Peers))
	known := map[string]bool{}
	for _, p := range n.Peers {
		switch {
		case p.Name == "" || p.Address == "":
			return nil, fault.E(op, fault.Invalid, "[[network.peers]] needs a name and an address")
		case p.Name == n.Name:
			return nil, fault.Errorf(op, fault.Invalid, "[[network.peers]] %s is this switch's own name", p.Name)
		case known[p.Name]:
			return nil, fault.Errorf(op, fault.Invalid, "[[network.peers]] %s is listed twice", p.Name)
		}
		if _, _, err := net.SplitHostPort(p.Address); err != nil {
			return nil, fault.Errorf(op, fault.Invalid, "[[network.peers]] %s: address %q is not HOST:PORT", p.Name, p.Address)
		}
		known[p.Name] = true
		peers = append(peers, server.Peer{Name: p.Name, Address: p.Address})
	}
	routes := make([]route.Route, 0, len(n.Routes))
	for _, r := range n.Routes {
		p, err := route.ParsePrefix(r.Prefix)
		if err != nil {
			return nil, fault.E(op, fault.Invalid, "[[network.routes]]: "+err.Error())
		}
		if len(r.Via) == 0 {
			return nil, fault.Errorf(op, fault.Invalid, "[[network.routes]] %s names no next hop", r.Prefix)
		}
		for _, v := range r.Via {
			if !known[v] {
				return nil, fault.Errorf(op, fault.Invalid, "[[network.routes]] %s goes via %s, which is not in [[network.peers]]", r.Prefix, v)
			}
		}
		routes = append(routes, route.Route{Prefix: p, Via: r.Via})
	}
	t, err := route.NewTable(n.Name, own, routes, n.HopLimit)
	if err != nil {
		return nil, fault.E(op, fault.Invalid, "[network]: "+err.Error())
	}
	pol := route.DefaultPolicy()
	for p, d := range map[telegram.Precedence]Duration{telegram.Flash: n.Divert.Flash, telegram.Immediate: n.Divert.Immediate,
		telegram.Priority: n.Divert.Priority, telegram.Routine: n.Divert.Routine} {
		if d > 0 {
			pol.Divert[p] = time.Duration(d)
		}
	}
	return &server.Network{Table: t, Peers: peers, Policy: pol}, nil
}
