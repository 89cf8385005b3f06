package daemon

import (
	sdnotify "github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// Readiness for systemd (Type=notify, deploy/dienbao.service). The
// switch says READY=1 once it serves (its store open and recovered, its
// QUIC listener, monitoring listeners and control socket up), RELOADING=1
// and READY=1 around a SIGHUP reload, and STOPPING=1 when it begins to
// drain, each with a STATUS line. Outside systemd (no NOTIFY_SOCKET) it
// says nothing.

// notify sends state to systemd's notification socket, if there is one.
func notify(log *zap.Logger, state, status string) {
	if status != "" {
		state += "\nSTATUS=" + status
	}
	if _, err := sdnotify.SdNotify(false, state); err != nil {
		log.Warn("cannot notify systemd", zap.Error(err))
	}
}

// serving is the STATUS line of a switch that serves.
func serving(addr string) string { return "serving on " + addr }
