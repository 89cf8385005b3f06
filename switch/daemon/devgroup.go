package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/crypto"
	"go.uber.org/zap"
)

// DevGroupSize is the dev group's number of nodes.
const DevGroupSize = 3

// DevGroup creates, where absent, a dev replicated switch of three nodes
// under dir: one dev site (dir: its CA, directory and identity folders,
// whose switch files list the three nodes) and each node's own folder
// (dir/node-1..3: its switch certificate, key file, data and
// switchd.toml). Node i listens for terminals on listen's port + i-1, and
// for the other nodes 100 ports above.
func DevGroup(dir, listen string) ([]*Config, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", listen, err)
	}
	base, err := strconv.Atoi(port)
	if err != nil || base <= 0 || base > 65535-100-DevGroupSize {
		return nil, fmt.Errorf("--listen %s: the dev group needs a fixed port (it uses it, the next %d, and those 100 above)", listen, DevGroupSize-1)
	}
	var addrs, gaddrs []string
	for i := range DevGroupSize {
		addrs = append(addrs, net.JoinHostPort(host, strconv.Itoa(base+i)))
		gaddrs = append(gaddrs, net.JoinHostPort(host, strconv.Itoa(base+100+i)))
	}
	return DevGroupAt(dir, addrs, gaddrs)
}

// DevGroupAt is DevGroup with each node's addresses given.
func DevGroupAt(dir string, addrs, gaddrs []string) ([]*Config, error) {
	if len(addrs) != DevGroupSize || len(gaddrs) != DevGroupSize {
		return nil, fmt.Errorf("the dev group has %d nodes", DevGroupSize)
	}
	site, err := DevSite(dir, addrs[0])
	if err != nil {
		return nil, err
	}
	ca, err := certs.LoadCA(filepath.Join(dir, "ca"))
	if err != nil {
		return nil, err
	}
	for _, di := range DevIdentities {
		p := filepath.Join(dir, "ids", di.Name, certs.FolderSwitch)
		if err := os.WriteFile(p, []byte(strings.Join(addrs, "\n")+"\n"), 0o644); err != nil {
			return nil, err
		}
	}
	var members []GroupMember
	for i := range DevGroupSize {
		members = append(members, GroupMember{ID: uint64(i + 1), Name: fmt.Sprintf("dev switch %d", i+1), Address: addrs[i], GroupAddress: gaddrs[i]})
	}
	cfgs := make([]*Config, DevGroupSize)
	for i, m := range members {
		node := filepath.Join(dir, fmt.Sprintf("node-%d", m.ID))
		swDir := filepath.Join(node, "switch")
		if err := devSwitchCert(ca, swDir, m.Name, "SW.DEV", addrs[i]); err != nil {
			return nil, err
		}
		keyFile := filepath.Join(node, "keys", "master.key")
		if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
			if err := crypto.NewKeyFile(keyFile); err != nil {
				return nil, err
			}
		}
		cfg := *site
		cfg.Listen, cfg.Data, cfg.KeyFile = addrs[i], filepath.Join(node, "data"), keyFile
		cfg.Cert, cfg.Key = filepath.Join(swDir, certs.FolderCert), filepath.Join(swDir, certs.FolderKey)
		cfg.Group = Group{Node: m.ID, Members: slices.Clone(members)}
		if err := writeDevConfig(&cfg, filepath.Join(node, "switchd.toml")); err != nil {
			return nil, err
		}
		cfgs[i] = &cfg
	}
	return cfgs, nil
}

// RunGroup runs the dev group's nodes in this process until ctx ends;
// http, if set, is node 1's monitoring address (the others take the next
// ports; each shows the group, the leader's the switch too).
func RunGroup(ctx context.Context, dir string, cfgs []*Config, http string, out io.Writer) error {
	log, err := NewLogger("console")
	if err != nil {
		return err
	}
	defer log.Sync()
	var wg sync.WaitGroup
	errs := make([]error, len(cfgs))
	for i, cfg := range cfgs {
		if http != "" {
			if cfg.HTTP, err = nextPort(http, i); err != nil {
				return err
			}
		}
		o := Options{Config: cfg, Logger: log.With(zap.Uint64("node", cfg.Group.Node)), Out: io.Discard, KeepRuntime: i > 0}
		wg.Go(func() { errs[i] = Run(ctx, o) })
	}
	fmt.Fprintf(out, "\ndienbao dev replicated switch: %d nodes on loopback, data under %s\n", len(cfgs), dir)
	for _, c := range cfgs {
		fmt.Fprintf(out, "  node %d  %-16s group %s\n", c.Group.Node, c.Listen, c.Group.Members[c.Group.Node-1].GroupAddress)
	}
	ids := filepath.Join(dir, "ids")
	fmt.Fprintf(out, `
The identity folders (%s) list the three nodes; the client finds the leader.
In another terminal, from this folder:
  GOTOOLCHAIN=go1.27.3 go build -o bin/ ./cmd/tg
  bin/tg --id %s/operator group status
  bin/tg --id %s/HN.UBND send --to NA.UBND --prec FLASH --class CONFIDENTIAL --subject "Báo cáo" "Nội dung điện"
  bin/tg --id %s/NA.UBND inbox

Stop with Ctrl-C (queued telegrams stay in %s).

`, ids, ids, ids, ids, dir)
	wg.Wait()
	return errors.Join(errs...)
}
