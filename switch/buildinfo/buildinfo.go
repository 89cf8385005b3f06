// Package buildinfo owns what a binary says about itself: the module
// version, the source revision it was built from, and the Go that built
// it, as the Go toolchain records them (runtime/debug.ReadBuildInfo).
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// Info describes this binary.
type Info struct {
	Version  string `json:"version"`  // the module version, "(devel)" for a checkout
	Revision string `json:"revision"` // the VCS revision, "unknown" when not recorded
	Modified bool   `json:"modified"` // built from a tree with uncommitted changes
	Go       string `json:"go"`       // the Go version that built it
}

// Get is this binary's build information, read once (the metrics ask at
// every scrape).
var Get = sync.OnceValue(read)

func read() Info {
	in := Info{Version: "(devel)", Revision: "unknown", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	if v := bi.Main.Version; v != "" {
		in.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// Short is the revision's first 12 characters, with "+dirty" when
// modified.
func (in Info) Short() string {
	r := in.Revision
	if len(r) > 12 {
		r = r[:12]
	}
	if in.Modified {
		r += "+dirty"
	}
	return r
}

// Line is what --version prints: the program, the version, the revision
// and the Go that built it.
func (in Info) Line(program string) string {
	return fmt.Sprintf("dienbao %s %s, revision %s, %s", program, in.Version, in.Short(), in.Go)
}
