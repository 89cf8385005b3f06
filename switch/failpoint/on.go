//go:build failpoints

package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

var (
	name  string
	at    int64
	count atomic.Int64
)

func init() {
	spec := os.Getenv("DIENBAO_FAILPOINT")
	n, c, ok := strings.Cut(spec, ":")
	if !ok {
		return
	}
	v, err := strconv.ParseInt(c, 10, 64)
	if err != nil || v < 1 {
		return
	}
	name, at = n, v
}

// Hit counts a pass through step, and kills the process at the chosen one.
func Hit(step string) {
	if step == name && count.Add(1) == at {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

// Panic counts a pass through step, and panics at the chosen one: a bug
// in the code there, for the tests of what recovers from it.
func Panic(step string) {
	if step == name && count.Add(1) == at {
		panic("failpoint " + step)
	}
}
