package server

import (
	"os"
	"time"

	"github.com/dienbao/dienbao/switch/directory"
	"go.uber.org/zap"
)

// fileWatch notices that a file changed (modification time or size)
// since it was last looked at. Only the timer goroutine and reloads under
// crlMu use one.
type fileWatch struct {
	mod  time.Time
	size int64
	seen bool
}

// changed reports whether path differs from the last look, and remembers
// it: a file that fails to load is not retried until it changes again.
func (w *fileWatch) changed(path string) bool {
	st, err := os.Stat(path)
	if err != nil || (w.seen && st.ModTime().Equal(w.mod) && st.Size() == w.size) {
		return false
	}
	w.mod, w.size, w.seen = st.ModTime(), st.Size(), true
	return true
}

// watchDirectory reloads the agency directory when its file changed.
func (s *Server) watchDirectory() {
	if s.cfg.DirectoryFile == "" || !s.dirFile.changed(s.cfg.DirectoryFile) {
		return
	}
	dir, err := directory.Load(s.cfg.DirectoryFile)
	if err != nil {
		s.log.Error("directory file changed but was refused; the directory in force stays", zap.Error(err))
		return
	}
	s.Reload(dir, *s.limits.Load())
}
