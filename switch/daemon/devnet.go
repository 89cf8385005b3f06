package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
)

// devNet is the dev network (switchd --dev --network): a central switch
// (TW, serving the TW and CP agencies) and two provincial ones (HN, NA),
// each province linked to the centre and, as an alternate path, to the
// other province.
var devNet = []Network{
	{Name: "TW", Prefixes: []string{"TW", "CP"}, Routes: []Route{{Prefix: "HN", Via: []string{"HN"}}, {Prefix: "NA", Via: []string{"NA"}}}},
	{Name: "HN", Prefixes: []string{"HN"}, Routes: []Route{{Prefix: "NA", Via: []string{"TW", "NA"}}, {Prefix: "*", Via: []string{"TW"}}}},
	{Name: "NA", Prefixes: []string{"NA"}, Routes: []Route{{Prefix: "HN", Via: []string{"TW", "HN"}}, {Prefix: "*", Via: []string{"TW"}}}},
}

// DevNetwork creates, where absent, a dev network of three switches under
// dir (dir/TW, dir/HN, dir/NA, each a dev site as DevSite makes it, all
// from one CA, each with a switch certificate named as the switch), the
// first listening on listen and the others on the next ports, and returns
// their configs (also written to each site's switchd.toml).
func DevNetwork(dir, listen string) ([]*Config, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", listen, err)
	}
	base, err := strconv.Atoi(port)
	if err != nil || base <= 0 || base > 65535-len(devNet) {
		return nil, fmt.Errorf("--listen %s: the dev network needs a fixed port (it uses it and the next %d)", listen, len(devNet)-1)
	}
	addrs := make([]string, len(devNet))
	for i := range addrs {
		addrs[i] = net.JoinHostPort(host, strconv.Itoa(base+i))
	}
	return DevNetworkAt(dir, addrs)
}

// DevNetworkSwitches names the dev network's switches, in order.
func DevNetworkSwitches() []string {
	out := make([]string, len(devNet))
	for i, n := range devNet {
		out[i] = n.Name
	}
	return out
}

// DevNetworkAt is DevNetwork with each switch's address given, in the
// order of DevNetworkSwitches.
func DevNetworkAt(dir string, addrs []string) ([]*Config, error) {
	if len(addrs) != len(devNet) {
		return nil, fmt.Errorf("the dev network has %d switches, not %d", len(devNet), len(addrs))
	}
	addr := func(i int) string { return addrs[i] }
	caDir := filepath.Join(dir, "ca")
	ca, err := certs.LoadCA(caDir)
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(caDir, certs.CACertFile)); statErr == nil {
			return nil, err
		}
		if ca, err = certs.NewCA("dienbao dev network CA", 10*365*24*time.Hour); err != nil {
			return nil, err
		}
		if err := ca.Save(caDir); err != nil {
			return nil, err
		}
	}
	// One set of agency keys for the whole network, as one directory.
	if err := SeedDevAgencyKeys(ca, dir); err != nil {
		return nil, err
	}
	cfgs := make([]*Config, len(devNet))
	for i, n := range devNet {
		site := filepath.Join(dir, n.Name)
		if err := ShareDevAgencyKeys(dir, site); err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(site, "ca", certs.CACertFile)); errors.Is(err, os.ErrNotExist) {
			if err := ca.Save(filepath.Join(site, "ca")); err != nil {
				return nil, err
			}
		}
		if err := devSwitchCert(ca, filepath.Join(site, "switch"), n.Name, telegram.Address("SW."+n.Name), addr(i)); err != nil {
			return nil, err
		}
		cfg, err := DevSite(site, addr(i))
		if err != nil {
			return nil, err
		}
		cfg.Name = n.Name
		cfg.Network = n
		for j, p := range devNet {
			if j != i {
				cfg.Network.Peers = append(cfg.Network.Peers, Peer{Name: p.Name, Address: addr(j)})
			}
		}
		if err := writeDevConfig(cfg, filepath.Join(site, "switchd.toml")); err != nil {
			return nil, err
		}
		cfgs[i] = cfg
	}
	return cfgs, nil
}

// RunNetwork runs the dev network's switches in this process until ctx
// ends; http, if set, is the first switch's monitoring address (the
// others take the next ports).
func RunNetwork(ctx context.Context, dir string, cfgs []*Config, http string, out io.Writer) error {
	log, err := NewLogger("console")
	if err != nil {
		return err
	}
	defer log.Sync()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(cfgs))
	for i, cfg := range cfgs {
		if http != "" {
			if cfg.HTTP, err = nextPort(http, i); err != nil {
				return err
			}
		}
		site := filepath.Join(dir, cfg.Network.Name)
		o := Options{Config: cfg, DevDir: site, Logger: log.With(zap.String("switch", cfg.Network.Name)), Out: io.Discard}
		srv, err := Start(o)
		if err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("switch %s: %w", cfg.Network.Name, err)
		}
		if cfg.HTTP != "" {
			ml, err := listenMonitor(o, srv)
			if err != nil {
				log.Warn("no monitoring listener", zap.String("switch", cfg.Network.Name), zap.Error(err))
			} else {
				defer ml.Close()
			}
		}
		wg.Go(func() { errs[i] = srv.Serve(ctx) })
	}
	printNetworkBanner(out, dir, cfgs)
	<-ctx.Done()
	wg.Wait()
	return errors.Join(errs...)
}

// nextPort is HOST:PORT+i.
func nextPort(hostport string, i int) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(p+i)), nil
}

func printNetworkBanner(w io.Writer, dir string, cfgs []*Config) {
	fmt.Fprintf(w, "\ndienbao dev network: %d switches on loopback (QUIC, ALPN dienbao/1), data under %s\n", len(cfgs), dir)
	for _, c := range cfgs {
		fmt.Fprintf(w, "  %-3s %-16s serves %v   identities: %s\n", c.Network.Name, c.Listen, c.Network.Prefixes,
			filepath.Join(dir, c.Network.Name, "ids"))
	}
	hn, na, tw := filepath.Join(dir, "HN", "ids"), filepath.Join(dir, "NA", "ids"), filepath.Join(dir, "TW", "ids")
	fmt.Fprintf(w, `
In another terminal, from this folder:
  GOTOOLCHAIN=go1.27.3 go build -o bin/ ./cmd/tg
  bin/tg --id %s/HN.UBND send --to NA.UBND --prec FLASH --class CONFIDENTIAL --subject "Báo cáo" "Nội dung điện"
  bin/tg --id %s/NA.UBND inbox            # relayed HN > TW > NA
  bin/tg --id %s/HN.UBND receipts         # DELIVERED, from NA's switch
  bin/tg --id %s/operator links           # the centre's links

Stop with Ctrl-C (queued telegrams stay in %s).

`, hn, na, hn, tw, dir)
}
