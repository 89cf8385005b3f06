package daemon

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/pelletier/go-toml/v2"
)

// DevIdentity is one identity the dev site creates.
type DevIdentity struct {
	Name      string // folder name under ids/
	Role      certs.Role
	Agency    telegram.Address
	Clearance telegram.Classification
}

// DevIdentities are the demo identities, with deliberately varied
// clearances so that clearance rules can be tried out.
var DevIdentities = []DevIdentity{
	{"TW.VPTW", certs.Terminal, "TW.VPTW", telegram.TopSecret},
	{"CP.VPCP", certs.Terminal, "CP.VPCP", telegram.TopSecret},
	{"HN.UBND", certs.Terminal, "HN.UBND", telegram.Secret},
	{"NA.TU", certs.Terminal, "NA.TU", telegram.Secret},
	{"NA.UBND", certs.Terminal, "NA.UBND", telegram.Confidential},
	{"NA.VINH.UBND", certs.Terminal, "NA.VINH.UBND", telegram.Unclassified},
	{"operator", certs.Operator, "", telegram.Secret},
	{"auditor", certs.Auditor, "", telegram.TopSecret},
}

// DevAgencies is the dev directory: every dev terminal's agency plus a few
// that no identity serves, to show queueing for agencies that are offline.
var DevAgencies = []directory.Agency{
	{Address: "TW.VPTW", Name: "Văn phòng Trung ương Đảng", Level: "centre"},
	{Address: "CP.VPCP", Name: "Văn phòng Chính phủ", Level: "centre"},
	{Address: "HN.UBND", Name: "Ủy ban nhân dân thành phố Hà Nội"},
	{Address: "NA.TU", Name: "Tỉnh ủy Nghệ An"},
	{Address: "NA.UBND", Name: "Ủy ban nhân dân tỉnh Nghệ An"},
	{Address: "NA.VINH.UBND", Name: "Ủy ban nhân dân thành phố Vinh"},
	{Address: "HCM.UBND", Name: "Ủy ban nhân dân Thành phố Hồ Chí Minh"},
	{Address: "DN.UBND", Name: "Ủy ban nhân dân thành phố Đà Nẵng"},
}

// DevSite creates, where absent, everything a dev switch needs under dir,
// and returns the equivalent production config:
//
//	dir/ca/ca.pem, ca.key       the dev CA
//	dir/switch/cert.pem, key.pem
//	dir/directory.toml
//	dir/ids/NAME/               one identity folder per DevIdentities entry (a terminal's with its agency's keys)
//	dir/agency-keys/            the agencies' published end-to-end keys (devkeys.go)
//	dir/keys/master.key         the key-encryption key (a key file, outside the data folder)
//	dir/switchd.toml            the config file a production start would use
//	dir/data/                   the data folder: keyring.json and the Badger store, created by the switch
//
// Existing files are kept, so restarting with the same dir keeps the CA,
// the identities and the queued telegrams. The switch address in each
// identity folder is rewritten to listen.
func DevSite(dir, listen string) (*Config, error) {
	caDir := filepath.Join(dir, "ca")
	ca, err := certs.LoadCA(caDir)
	if err != nil {
		if _, statErr := os.Stat(filepath.Join(caDir, certs.CACertFile)); statErr == nil {
			return nil, err // present but unreadable: do not replace it
		}
		if ca, err = certs.NewCA("dienbao dev CA", 10*365*24*time.Hour); err != nil {
			return nil, err
		}
		if err := ca.Save(caDir); err != nil {
			return nil, err
		}
	}
	swDir := filepath.Join(dir, "switch")
	if err := devSwitchCert(ca, swDir, "dev switch", "SW.DEV", listen); err != nil {
		return nil, err
	}
	dirFile := filepath.Join(dir, "directory.toml")
	if _, err := os.Stat(dirFile); errors.Is(err, os.ErrNotExist) {
		d, err := directory.New(DevAgencies)
		if err != nil {
			return nil, err
		}
		b, err := d.WithKeysDir(DevKeysDir).Marshal()
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(dirFile, b, 0o644); err != nil {
			return nil, err
		}
	}
	for _, a := range DevAgencies {
		if err := devAgencyKeys(ca, dir, a.Address); err != nil {
			return nil, err
		}
	}
	if err := devDirectoryNamesKeys(dirFile); err != nil {
		return nil, err
	}
	for _, di := range DevIdentities {
		idDir := filepath.Join(dir, "ids", di.Name)
		if di.Role == certs.Terminal {
			if err := os.MkdirAll(idDir, 0o700); err != nil {
				return nil, err
			}
			if err := CopyDevAgencyKeys(dir, di.Agency, idDir); err != nil {
				return nil, err
			}
		}
		if _, err := os.Stat(filepath.Join(idDir, certs.FolderCert)); errors.Is(err, os.ErrNotExist) {
			iss, err := ca.Issue(certs.Request{Name: di.Name + " (dev)", Role: di.Role, Agency: di.Agency,
				Clearance: di.Clearance, Validity: 365 * 24 * time.Hour})
			if err != nil {
				return nil, err
			}
			if err := certs.WriteFolder(idDir, iss, ca.PEM, listen); err != nil {
				return nil, err
			}
			continue
		}
		if err := os.WriteFile(filepath.Join(idDir, certs.FolderSwitch), []byte(listen+"\n"), 0o644); err != nil {
			return nil, err
		}
	}
	keyFile := filepath.Join(dir, "keys", "master.key")
	if _, err := os.Stat(keyFile); errors.Is(err, os.ErrNotExist) {
		if err := crypto.NewKeyFile(keyFile); err != nil {
			return nil, err
		}
	}
	// A fresh CRL at every start (the dev CA's key is at hand), valid a
	// year; tg certs revoke --ca DIR/ca writes a new one, which the switch
	// picks up by itself.
	crlFile := filepath.Join(caDir, certs.CRLFile)
	crl, err := ca.CRL(caDir, 365*24*time.Hour)
	if err == nil {
		err = certs.WriteCRL(crlFile, crl)
	}
	if err != nil {
		return nil, err
	}
	cfg := &Config{Listen: listen, Data: filepath.Join(dir, "data"), KeyFile: keyFile, CA: filepath.Join(caDir, certs.CACertFile),
		Cert: filepath.Join(swDir, certs.FolderCert), Key: filepath.Join(swDir, certs.FolderKey),
		Directory: dirFile, Name: "dev switch", Log: "console", CRL: crlFile,
		// A dev machine's disk is not the switch's own: smaller watermarks
		// and reserve than production's.
		Storage: Storage{LowWatermark: 256 << 20, CriticalWatermark: 64 << 20, Reserve: 16 << 20}}
	return cfg, writeDevConfig(cfg, filepath.Join(dir, "switchd.toml"))
}

// writeDevConfig writes cfg to path with its file paths relative to the
// file's folder, as LoadConfig reads them: the dev site's config then
// serves SIGHUP (which re-reads it) and switchd --config alike, from any
// working folder.
func writeDevConfig(cfg *Config, path string) error {
	c := withDefaultsShown(*cfg)
	base, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return err
	}
	for _, p := range []*string{&c.Data, &c.CA, &c.Cert, &c.Key, &c.Directory, &c.KeyFile, &c.PassphraseFile, &c.CRL} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		if rel, err := filepath.Rel(base, abs); err == nil {
			*p = rel
		}
	}
	b, err := toml.Marshal(&c)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// devSwitchCert issues, unless the folder dir holds one already, a dev
// switch certificate named name (for loopback, five years) into dir.
func devSwitchCert(ca *certs.CA, dir, name string, agency telegram.Address, addr string) error {
	if _, err := os.Stat(filepath.Join(dir, certs.FolderCert)); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	iss, err := ca.Issue(certs.Request{Name: name, Role: certs.Switch, Agency: agency, Clearance: telegram.TopSecret,
		DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, Validity: 5 * 365 * 24 * time.Hour})
	if err != nil {
		return err
	}
	return certs.WriteFolder(dir, iss, ca.PEM, addr)
}
