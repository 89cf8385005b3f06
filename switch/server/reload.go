package server

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// watchDirectory reloads the agency directory when its file, or a file of
// its keys folder (the agencies' published end-to-end keys), changed.
func (s *Server) watchDirectory() {
	if s.cfg.DirectoryFile == "" {
		return
	}
	fileChanged := s.dirFile.changed(s.cfg.DirectoryFile)
	keysChanged := s.keysFolderChanged()
	if !fileChanged && !keysChanged {
		s.noteUnlisted()
		s.moveMoved()
		return
	}
	dir, err := directory.Load(s.cfg.DirectoryFile)
	if err != nil {
		s.log.Error("directory file changed but was refused; the directory in force stays", zap.Error(err))
		return
	}
	if err := s.Reload(dir, *s.limits.Load()); err != nil {
		s.log.Error("directory file changed but was refused; the directory in force stays", zap.Error(err))
	}
}

// keysFolderChanged reports whether the directory's keys folder (its
// *.pem files: names, sizes, modification times) differs from the last
// look, and remembers it. Only the timer goroutine calls it.
func (s *Server) keysFolderChanged() bool {
	kd := s.directory().KeysDir()
	if kd == "" {
		return false
	}
	if !filepath.IsAbs(kd) {
		kd = filepath.Join(filepath.Dir(s.cfg.DirectoryFile), kd)
	}
	files, _ := filepath.Glob(filepath.Join(kd, "*.pem"))
	var b strings.Builder
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			fmt.Fprintf(&b, "%s %d %d\n", f, st.Size(), st.ModTime().UnixNano())
		}
	}
	sig := b.String()
	if s.keysSeen == nil {
		s.keysSeen = &sig // as loaded at start
		return false
	}
	if *s.keysSeen == sig {
		return false
	}
	*s.keysSeen = sig
	return true
}
