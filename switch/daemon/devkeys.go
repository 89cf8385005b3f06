package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/envelope"
	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Dev agency keys (end-to-end sealing, package envelope). In production a
// terminal makes its agency's keys itself (tg agency-keys new) and the CA
// certifies the public half (tg certs sign-keys); the dev site does both
// at once for every dev agency:
//
//	dir/agency-keys/ADDR.pem          the published key certificates (the directory's keys folder)
//	dir/ca/agency-private/ADDR/       the dev site's copy of each agency's private keys (dev only),
//	                                  copied into every identity folder of the agency
const (
	DevKeysDir        = "agency-keys"
	devPrivateKeysDir = "agency-private"
)

// devAgencyKeys makes, unless present, a key pair for agency, certifies
// it, and publishes the certificate.
func devAgencyKeys(ca *certs.CA, dir string, agency telegram.Address) error {
	priv := filepath.Join(dir, "ca", devPrivateKeysDir, string(agency))
	pub := filepath.Join(dir, DevKeysDir, string(agency)+".pem")
	have, err := envelope.LoadKeys(priv)
	if err != nil {
		return err
	}
	if _, err := os.Stat(pub); err == nil && len(have) > 0 {
		return nil
	}
	// Made now, or made before and no longer published (tg bench removes
	// what it published): certified and published again.
	var k *envelope.AgencyKey
	if len(have) > 0 {
		k = have[len(have)-1]
	} else if k, err = envelope.NewAgencyKey(agency); err != nil {
		return err
	}
	cert, err := envelope.Certify(ca.Key, k.Public(5*365*24*time.Hour))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(pub), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(pub, envelope.EncodePEM("cert", cert), 0o644); err != nil {
		return err
	}
	if len(have) > 0 {
		return nil
	}
	return k.Save(priv)
}

// CopyDevAgencyKeys copies the dev site's private keys of agency into the
// identity folder idDir (a terminal of that agency issued later, as tests
// and tg bench do), leaving keys already there.
func CopyDevAgencyKeys(dir string, agency telegram.Address, idDir string) error {
	keys, err := envelope.LoadKeys(filepath.Join(dir, "ca", devPrivateKeysDir, string(agency)))
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := k.Save(idDir); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	return nil
}

// EnsureDevAgencyKeys makes and publishes keys for agency in the dev site
// in dir (the CA's key at hand) if it has none, and copies them into
// idDir when given.
func EnsureDevAgencyKeys(dir string, agency telegram.Address, idDir string) error {
	ca, err := certs.LoadCA(filepath.Join(dir, "ca"))
	if err != nil {
		return err
	}
	if err := devAgencyKeys(ca, dir, agency); err != nil {
		return err
	}
	if idDir == "" {
		return nil
	}
	return CopyDevAgencyKeys(dir, agency, idDir)
}

// ShareDevAgencyKeys copies the dev agency keys (published and private)
// of the dev site in from into the dev site in to, keeping what is there:
// the switches of a dev or test network then publish the same keys for
// an agency, as a real network's switches publish the one directory.
func ShareDevAgencyKeys(from, to string) error {
	for _, sub := range []string{DevKeysDir, filepath.Join("ca", devPrivateKeysDir)} {
		src := filepath.Join(from, sub)
		err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			dst := filepath.Join(to, sub, rel)
			if d.IsDir() {
				return os.MkdirAll(dst, 0o700)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if _, err := os.Stat(dst); err == nil {
				return nil
			}
			return os.WriteFile(dst, data, fi.Mode().Perm())
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// SeedDevAgencyKeys makes keys for every dev agency, and the extra ones,
// in the dev site in dir with ca (as DevSite does), for sharing before
// the sites start.
func SeedDevAgencyKeys(ca *certs.CA, dir string, extra ...telegram.Address) error {
	for _, a := range DevAgencies {
		extra = append(extra, a.Address)
	}
	for _, a := range extra {
		if err := devAgencyKeys(ca, dir, a); err != nil {
			return err
		}
	}
	return nil
}

// devDirectoryNamesKeys makes a dev directory written before end-to-end
// sealing name the keys folder, so that an older dev site seals too.
func devDirectoryNamesKeys(dirFile string) error {
	d, err := directory.Load(dirFile)
	if err != nil || d.KeysDir() != "" {
		return err
	}
	data, err := os.ReadFile(dirFile)
	if err != nil {
		return err
	}
	return os.WriteFile(dirFile, append([]byte("keys = \""+DevKeysDir+"\"\n"), data...), 0o644)
}
