// Package directory owns the agency directory: the list of agencies the
// switch knows. An addressee not in the directory is refused at filing.
//
// The directory is a TOML file, read and validated once:
//
//	[[agency]]
//	address = "NA.UBND"
//	name = "Ủy ban nhân dân tỉnh Nghệ An"
//	level = "province"       # centre | province | district | commune (optional)
//
// An agency that is closing stays listed until nothing waits for it, with
// one of (package doc of switch/server: a reload that drops an agency with
// telegrams in custody is refused):
//
//	moved_to = "NA.UBND"     # merged into NA.UBND: what waits is moved there
//	drain = true             # closing: its terminals still receive, nobody files to it
//
// Neither takes new telegrams: a filing to it is refused, naming the new
// address for a moved one.
//
// A top-level keys = "agency-keys" names the folder (relative to the
// directory file) of the agencies' published end-to-end keys: PEM files
// (*.pem) of key certificates and revocations the CA signed (package
// envelope). The switch serves them to terminals, which check them under
// their own copy of the CA.
//
// The level is how operators see the network (the console groups agencies
// by it, metrics are labelled with it). Without one, it follows the
// address: one segment is the centre, two a province, three a district,
// four or more a commune.
//
// A Directory is immutable; reloading builds a new one.
package directory

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/pelletier/go-toml/v2"
)

// Agency is one entry.
type Agency struct {
	Address telegram.Address `toml:"address"`
	Name    string           `toml:"name"`
	Level   string           `toml:"level,omitempty"`
	// MovedTo: merged into this agency; the switch moves what waits for
	// this one there, and refuses filings to it.
	MovedTo telegram.Address `toml:"moved_to,omitempty"`
	// Drain: closing; its terminals still receive what waits, nobody
	// may file to it.
	Drain bool `toml:"drain,omitempty"`
}

// Closing reports whether a takes no new telegrams (moved or draining).
func (a Agency) Closing() bool { return a.MovedTo != "" || a.Drain }

// Levels of the network, from the centre down.
var Levels = []string{"centre", "province", "district", "commune"}

// LevelOf is a's level: as listed, else from its address.
func (a Agency) LevelOf() string {
	if a.Level != "" {
		return a.Level
	}
	return Levels[min(a.Address.Tier(), len(Levels))-1]
}

// Directory is a validated, immutable set of agencies.
type Directory struct {
	list  []Agency
	index map[telegram.Address]int
	keys  map[string][]byte // the keys folder's files, by path
	// keysDir is the keys folder as the file names it.
	keysDir string
}

type file struct {
	Keys   string `toml:"keys"`
	Agency []struct {
		Address string `toml:"address"`
		Name    string `toml:"name"`
		Level   string `toml:"level"`
		MovedTo string `toml:"moved_to"`
		Drain   bool   `toml:"drain"`
	} `toml:"agency"`
}

// Parse reads a directory from TOML. Unknown fields, malformed or duplicate
// addresses are errors. A keys folder is read relative to the working
// directory (Load reads it relative to the file).
func Parse(data []byte) (*Directory, error) { return parse(data, ".") }

func parse(data []byte, base string) (*Directory, error) {
	const op = "directory"
	var f file
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		var sme *toml.StrictMissingError
		if errors.As(err, &sme) {
			return nil, fault.E(op, fault.Invalid, "unknown field in directory: "+sme.String())
		}
		return nil, fault.E(op, fault.Invalid, "directory is not valid TOML", err)
	}
	agencies := make([]Agency, 0, len(f.Agency))
	for _, a := range f.Agency {
		addr, err := telegram.ParseAddress(a.Address)
		if err != nil {
			return nil, err
		}
		if a.Level != "" && !slices.Contains(Levels, a.Level) {
			return nil, fault.Errorf(op, fault.Invalid, "agency %s: level %q is not one of %v", addr, a.Level, Levels)
		}
		ag := Agency{Address: addr, Name: a.Name, Level: a.Level, Drain: a.Drain}
		if a.MovedTo != "" {
			if ag.MovedTo, err = telegram.ParseAddress(a.MovedTo); err != nil {
				return nil, fault.Errorf(op, fault.Invalid, "agency %s: moved_to: %v", addr, err)
			}
		}
		agencies = append(agencies, ag)
	}
	d, err := New(agencies)
	if err != nil || f.Keys == "" {
		return d, err
	}
	d.keysDir = f.Keys
	kd := f.Keys
	if !filepath.IsAbs(kd) {
		kd = filepath.Join(base, kd)
	}
	if d.keys, err = readKeys(kd); err != nil {
		return nil, err
	}
	return d, nil
}

// readKeys reads every *.pem file in dir, by path.
func readKeys(dir string) (map[string][]byte, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.pem"))
	if err == nil && len(files) == 0 {
		if _, err = os.Stat(dir); err != nil {
			return nil, fault.E("directory", fault.Invalid, "cannot read the agency keys folder", err)
		}
	}
	out := make(map[string][]byte, len(files))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fault.E("directory", fault.Invalid, "cannot read agency keys", err)
		}
		out[f] = data
	}
	return out, nil
}

// KeysDir is the keys folder as the file names it ("" for none).
func (d *Directory) KeysDir() string { return d.keysDir }

// WithKeysDir returns d naming the keys folder dir (for Marshal).
func (d *Directory) WithKeysDir(dir string) *Directory {
	c := *d
	c.keysDir = dir
	return &c
}

// Keys is the files of the agencies' published end-to-end keys, by path,
// as read (unchecked: envelope.ParseFiles reads them). Do not modify.
func (d *Directory) Keys() map[string][]byte { return d.keys }

// New builds a directory from a list, refusing duplicates.
func New(agencies []Agency) (*Directory, error) {
	d := &Directory{index: make(map[telegram.Address]int, len(agencies))}
	d.list = append(d.list, agencies...)
	sort.Slice(d.list, func(i, j int) bool { return d.list[i].Address < d.list[j].Address })
	for i, a := range d.list {
		if _, dup := d.index[a.Address]; dup {
			return nil, fault.Errorf("directory", fault.Invalid, "agency %s is listed twice", a.Address)
		}
		d.index[a.Address] = i
	}
	for _, a := range d.list {
		if a.MovedTo == "" {
			continue
		}
		const op = "directory"
		to, ok := d.Agency(a.MovedTo)
		switch {
		case a.Drain:
			return nil, fault.Errorf(op, fault.Invalid, "agency %s: moved_to and drain together; give one", a.Address)
		case a.MovedTo == a.Address:
			return nil, fault.Errorf(op, fault.Invalid, "agency %s is moved to itself", a.Address)
		case !ok:
			return nil, fault.Errorf(op, fault.Invalid, "agency %s is moved to %s, which is not in the directory", a.Address, a.MovedTo)
		case to.Closing():
			return nil, fault.Errorf(op, fault.Invalid, "agency %s is moved to %s, which is closing too: move it to where %s goes", a.Address, a.MovedTo, a.MovedTo)
		}
	}
	return d, nil
}

// Addressable says whether a may be sent telegrams: listed, and not
// closing (the error says which, and where a moved one went).
func (d *Directory) Addressable(a telegram.Address) error {
	if !d.Has(a) {
		return fault.Errorf("directory", fault.NotExist, "unknown addressee %s: not in the agency directory", a)
	}
	if why := d.Closed(a); why != "" {
		return fault.E("directory", fault.NotExist, why)
	}
	return nil
}

// Closed says why listed agency a takes no new telegrams ("" if it does).
func (d *Directory) Closed(a telegram.Address) string {
	ag, _ := d.Agency(a)
	switch {
	case ag.MovedTo != "":
		return fmt.Sprintf("agency %s has moved to %s (merged): address the telegram to %s", a, ag.MovedTo, ag.MovedTo)
	case ag.Drain:
		return fmt.Sprintf("agency %s is closing (drain in the directory): it takes no new telegrams", a)
	}
	return ""
}

// Load reads a directory file.
func Load(path string) (*Directory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fault.E("directory", fault.Invalid, "cannot read directory", err)
	}
	return parse(data, filepath.Dir(path))
}

// Marshal writes d as TOML.
func (d *Directory) Marshal() ([]byte, error) {
	var f struct {
		Keys   string   `toml:"keys,omitempty"`
		Agency []Agency `toml:"agency"`
	}
	f.Keys, f.Agency = d.keysDir, d.list
	return toml.Marshal(f)
}

// Has reports whether a is a known agency.
func (d *Directory) Has(a telegram.Address) bool {
	_, ok := d.index[a]
	return ok
}

// Agency returns a's entry.
func (d *Directory) Agency(a telegram.Address) (Agency, bool) {
	i, ok := d.index[a]
	if !ok {
		return Agency{Address: a}, false
	}
	return d.list[i], true
}

// Agencies returns the agencies in address order. Do not modify.
func (d *Directory) Agencies() []Agency { return d.list }
