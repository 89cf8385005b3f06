package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// devIdentities issues, where absent, bench-sNN and bench-rNN terminals in
// the dev site (agencies BENCH.SNN and BENCH.RNN), adds the agencies to its
// directory (the switch reloads a changed directory by itself) and waits
// until the switch knows them.
func (r *benchRun) devIdentities(e *env) error {
	dir := r.cmd.Dev
	var err error
	if r.devCA, err = certs.LoadCA(filepath.Join(dir, "ca")); err != nil {
		return err
	}
	if r.devSwitch, err = os.ReadFile(filepath.Join(dir, "ids", "HN.UBND", certs.FolderSwitch)); err != nil {
		return fault.E("bench", fault.NotExist, dir+" is not a dev site (no ids/HN.UBND)", err)
	}
	dirFile := filepath.Join(dir, "directory.toml")
	if r.found, err = os.ReadFile(dirFile); err != nil {
		return err
	}
	d, err := directory.Load(dirFile)
	if err != nil {
		return err
	}
	keysDir := d.KeysDir()
	if keysDir != "" && !filepath.IsAbs(keysDir) {
		keysDir = filepath.Join(dir, keysDir) // as the switch reads it: beside the directory file
	}
	keysBefore := keyFiles(keysDir)
	agencies := append([]directory.Agency(nil), d.Agencies()...)
	added := false
	adding := map[telegram.Address]bool{}
	mk := func(kind string, n int) (string, telegram.Address, error) {
		name := fmt.Sprintf("bench-%s%02d", strings.ToLower(kind), n)
		addr := telegram.Address(fmt.Sprintf("BENCH.%s%02d", kind, n))
		if kind == "I" { // idle terminals: ten per agency
			name = fmt.Sprintf("bench-i%04d", n)
			addr = telegram.Address(fmt.Sprintf("BENCH.I%02d", n/10))
		}
		idDir := filepath.Join(dir, "ids", name)
		if err := r.devIdentity(idDir, addr); err != nil {
			return "", "", err
		}
		if !d.Has(addr) && !adding[addr] {
			adding[addr] = true
			r.added = append(r.added, addr)
			agencies = append(agencies, directory.Agency{Address: addr, Name: "bench " + string(addr), Level: "district"})
			added = true
		}
		return idDir, addr, nil
	}
	for i := 1; i <= r.cmd.Senders; i++ {
		idDir, _, err := mk("S", i)
		if err != nil {
			return err
		}
		r.sendDirs = append(r.sendDirs, idDir)
	}
	for i := 1; i <= r.cmd.Recipients; i++ {
		idDir, addr, err := mk("R", i)
		if err != nil {
			return err
		}
		r.recvDirs = append(r.recvDirs, idDir)
		r.recvAddrs = append(r.recvAddrs, addr)
	}
	if r.cmd.Backlog > 0 {
		if err := daemon.EnsureDevAgencyKeys(dir, offlineAgency, ""); err != nil {
			return err
		}
	}
	if r.cmd.Backlog > 0 && !d.Has(offlineAgency) {
		agencies = append(agencies, directory.Agency{Address: offlineAgency, Name: "bench: never connects", Level: "district"})
		r.added = append(r.added, offlineAgency)
		added = true
	}
	for i := 0; i < r.cmd.Idle; i++ {
		idDir, _, err := mk("I", i)
		if err != nil {
			return err
		}
		r.idleDirs = append(r.idleDirs, idDir)
	}
	for _, f := range keyFiles(keysDir) {
		if !slices.Contains(keysBefore, f) {
			r.addedKeys = append(r.addedKeys, f)
		}
	}
	if !added {
		return nil
	}
	nd, err := directory.New(agencies)
	if err != nil {
		return err
	}
	b, err := nd.WithKeysDir(d.KeysDir()).Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(dirFile, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "added %d bench agencies to %s; waiting for the switch to load it\n", len(agencies)-len(d.Agencies()), dirFile)
	return r.waitKnown(e)
}

// devIdentity issues, where absent, a terminal identity of agency into
// idDir from the dev site's CA (else points the one there at the switch),
// with its agency's end-to-end keys, made and published as the dev site
// does (the switch loads them with the directory).
func (r *benchRun) devIdentity(idDir string, agency telegram.Address) error {
	sw := strings.TrimSpace(string(r.devSwitch))
	if _, err := os.Stat(filepath.Join(idDir, certs.FolderCert)); err != nil {
		iss, err := r.devCA.Issue(certs.Request{Name: filepath.Base(idDir), Role: certs.Terminal, Agency: agency, Clearance: telegram.TopSecret,
			Validity: 365 * 24 * time.Hour})
		if err != nil {
			return err
		}
		if err := certs.WriteFolder(idDir, iss, r.devCA.PEM, sw); err != nil {
			return err
		}
	} else if err := os.WriteFile(filepath.Join(idDir, certs.FolderSwitch), []byte(sw+"\n"), 0o644); err != nil {
		return err
	}
	return daemon.EnsureDevAgencyKeys(r.cmd.Dev, agency, idDir)
}

// waitKnown files one telegram to the last recipient until the switch
// accepts it (it reloads the directory within a timer interval). It is a
// FLASH, which neither admission control nor a MINIMIZE refuses.
func (r *benchRun) waitKnown(e *env) error {
	cl, err := dialDir(e.ctx, r.sendDirs[0])
	if err != nil {
		return err
	}
	defer cl.Close()
	body := make([]byte, 8)
	for deadline := time.Now().Add(15 * time.Second); ; {
		res, err := cl.SendBatch(e.ctx, []client.Telegram{{To: []telegram.Address{r.recvAddrs[len(r.recvAddrs)-1]}, Precedence: telegram.Flash, Body: body}})
		if err == nil {
			err = res[0].Err
		}
		if err == nil {
			return nil
		}
		// Until the switch has loaded the new directory, the senders and
		// recipients it names are unknown to it.
		waiting := fault.Is(fault.NotExist, err) || fault.Is(fault.Permission, err) && strings.Contains(err.Error(), "not in the agency directory") ||
			strings.Contains(err.Error(), "no published end-to-end key") || strings.Contains(err.Error(), "no valid published key")
		if !waiting || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// scrape reads the switch's unlabelled metrics (nil when there is no
// address or they cannot be read), with Prometheus's own text parser.
func scrape(addr string) map[string]float64 {
	if addr == "" {
		return nil
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) > 0 {
				continue
			}
			switch {
			case m.GetGauge() != nil:
				out[name] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}
