package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/server"
	"github.com/google/renameio/v2"
	"go.uber.org/zap"
)

// Backup and restore (switchd backup, switchd restore). A running switch
// serves its backup on a Unix socket in its data folder (control.sock,
// mode 0600: whoever may read the data folder may take it), so that a
// backup is taken while it serves; a stopped switch's store is opened
// and read directly. Either way the backup is store.Backup's stream: one
// read snapshot of the store, with the keyring, the latest checkpoint
// and the audit archive files, and it is audited (event "backup").

// ControlSocket is where a running switch answers switchd backup.
func ControlSocket(cfg *Config) string { return filepath.Join(cfg.Data, "control.sock") }

// backupInfoHeader carries the backup's manifest, as a trailer, from a
// running switch (or, as a trailer too, why it failed).
const (
	backupInfoHeader  = "Dienbao-Backup"
	backupErrorHeader = "Dienbao-Backup-Error"
)

// listenControl serves switchd backup on the control socket; the
// function it returns stops it.
func listenControl(o Options, srv *server.Server) func() {
	path := ControlSocket(o.Config)
	os.Remove(path) // left by a switch that did not stop cleanly: the store's lock says none runs now
	ln, err := net.Listen("unix", path)
	if err == nil {
		if err = os.Chmod(path, 0o600); err != nil {
			ln.Close()
		}
	}
	if err != nil {
		// Not a reason to stop serving: switchd backup then needs the
		// switch stopped.
		o.Logger.Warn("no control socket: switchd backup works only with the switch stopped", zap.String("path", path), zap.Error(err))
		return func() {}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /backup", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", backupInfoHeader+", "+backupErrorHeader)
		w.Header().Set("Content-Type", "application/octet-stream")
		rate, _ := strconv.ParseInt(r.URL.Query().Get("rate"), 10, 64)
		info, err := takeBackup(o.Config, srv.Store(), w, rate)
		if err != nil {
			o.Logger.Error("backup failed", zap.Error(err))
			w.Header().Set(backupErrorHeader, err.Error())
			return
		}
		b, _ := json.Marshal(info)
		w.Header().Set(backupInfoHeader, string(b))
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	return func() { hs.Close(); os.Remove(path) }
}

// takeBackup writes st's backup to w and audits it.
func takeBackup(cfg *Config, st *store.Store, w io.Writer, rate int64) (store.BackupInfo, error) {
	info, err := st.Backup(w, func() ([]byte, error) { return os.ReadFile(filepath.Join(cfg.Data, crypto.KeyringFile)) },
		store.BackupOptions{Rate: rate})
	if err != nil {
		return info, err
	}
	err = st.Record(store.AuditEntry{Actor: "switchd backup", Event: audit.Backup,
		Reason: fmt.Sprintf("a backup was taken at %s: audit log of %d entries, queue sequence %d, %d records, %d bytes",
			info.TakenAt.Format(time.RFC3339), info.AuditSize, info.QueueSeq, info.Records, info.Bytes)})
	return info, err
}

// Backup writes a backup of cfg's switch to w, at most rate bytes a second
// (0: no bound): through the control socket if the switch runs, else from
// its store directly.
func Backup(ctx context.Context, cfg *Config, w io.Writer, rate int64) (store.BackupInfo, error) {
	const op = "switchd backup"
	var info store.BackupInfo
	if cfg.Group.enabled() {
		return info, fault.E(op, fault.Invalid, "a node of a replicated switch is not backed up this way: every node holds the whole store, and a node that is lost is replaced by adding a new one")
	}
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", ControlSocket(cfg))
	}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://switchd/backup?rate="+strconv.FormatInt(rate, 10), nil)
	resp, err := client.Do(req)
	if err != nil {
		// No switch answers: take the backup from the store itself (which
		// fails, saying so, if a switch has it open after all).
		st, err := OpenStore(cfg)
		if err != nil {
			return info, err
		}
		defer st.Close()
		return takeBackup(cfg, st, w, 0) // nothing else runs: no bound
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return info, fault.Errorf(op, fault.Unavailable, "the switch refused the backup: %s", resp.Status)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		return info, fault.E(op, fault.Unavailable, "the backup was cut short", err)
	}
	if msg := resp.Trailer.Get(backupErrorHeader); msg != "" {
		return info, fault.E(op, fault.Unavailable, "the switch could not finish the backup: "+msg)
	}
	if err := json.Unmarshal([]byte(resp.Trailer.Get(backupInfoHeader)), &info); err != nil {
		return info, fault.E(op, fault.Unavailable, "the switch did not confirm the backup", err)
	}
	return info, nil
}

// Restore writes the backup in file into cfg's data folder, whose store
// must be absent or empty (the switch stopped). It reads the backup
// through once to check it, checks that the configured secret opens its
// keyring, builds the store beside the data folder's (data/.restoring),
// opens it once to record the restore in its audit log, and only then
// moves it into place; the keyring, checkpoint copy and audit archive
// folder it replaces are kept with the suffix .before-restore-TIME.
func Restore(cfg *Config, file string) (store.BackupInfo, error) {
	const op = "switchd restore"
	var info store.BackupInfo
	if cfg.Group.enabled() {
		return info, fault.E(op, fault.Invalid, "a node of a replicated switch is not restored from a backup: add a new node to the group instead")
	}
	if entries, err := os.ReadDir(StoreDir(cfg)); err == nil && len(entries) > 0 {
		return info, fault.Errorf(op, fault.Invalid, "%s already holds a store: stop the switch, move that folder aside (keep it until the restored switch is checked), then restore", StoreDir(cfg))
	}
	secret, err := cfg.Secret()
	if err != nil {
		return info, fault.E(op, fault.Invalid, err.Error())
	}
	open := func() (*os.File, error) {
		f, err := os.Open(file)
		if err != nil {
			return nil, fault.E(op, fault.NotExist, "cannot read the backup", err)
		}
		return f, nil
	}
	f, err := open()
	if err != nil {
		return info, err
	}
	_, err = store.ReadBackup(f, func(byte, []byte, []byte) error { return nil })
	f.Close()
	if err != nil {
		return info, err
	}
	work := filepath.Join(cfg.Data, ".restoring")
	if err := os.RemoveAll(work); err != nil {
		return info, fault.E(op, fault.Internal, "cannot clear "+work, err)
	}
	if err := os.MkdirAll(filepath.Join(work, "audit-archive"), 0o700); err != nil {
		return info, fault.E(op, fault.Internal, "cannot create "+work, err)
	}
	var note []byte
	if f, err = open(); err != nil {
		return info, err
	}
	info, err = store.LoadBackup(f, filepath.Join(work, "store"), func(tag byte, a, b []byte) error {
		switch tag {
		case store.FrameKeyring:
			if err := renameio.WriteFile(filepath.Join(work, crypto.KeyringFile), a, 0o600); err != nil {
				return err
			}
			if _, err := crypto.OpenKeyring(work, secret); err != nil {
				return fault.E(op, fault.Invalid, "the configured key file or passphrase does not open the backup's keyring", err)
			}
		case store.FrameCheckpoint:
			note = a
		case store.FrameArchive:
			name := filepath.Base(string(a))
			return renameio.WriteFile(filepath.Join(work, "audit-archive", name), b, 0o600)
		}
		return nil
	})
	f.Close()
	if err != nil {
		return info, err
	}
	if note != nil {
		if err := renameio.WriteFile(filepath.Join(work, "checkpoint.note"), note, 0o600); err != nil {
			return info, fault.E(op, fault.Internal, "cannot write the checkpoint copy", err)
		}
	}
	ring, err := crypto.OpenKeyring(work, secret)
	if err != nil {
		return info, err
	}
	st, err := store.Open(store.Options{Dir: filepath.Join(work, "store"), Keyring: ring, Origin: cfg.origin(),
		CheckpointCopy: filepath.Join(work, "checkpoint.note"), ArchiveDir: filepath.Join(work, "audit-archive"), Restored: &info})
	if err != nil {
		return info, err
	}
	if err := st.Close(); err != nil {
		return info, err
	}
	return info, moveRestored(cfg, work)
}

// moveRestored moves the restored store, keyring, checkpoint copy and
// archive files from work into the data folder.
func moveRestored(cfg *Config, work string) error {
	const op = "switchd restore"
	stamp := time.Now().UTC().Format("20060102T150405Z")
	// The former archive files go aside too: the restored log may archive
	// the same ranges again, with other entries.
	for _, name := range []string{crypto.KeyringFile, "checkpoint.note", filepath.Base(ArchiveDir(cfg))} {
		if _, err := os.Stat(filepath.Join(cfg.Data, name)); err == nil {
			if err := os.Rename(filepath.Join(cfg.Data, name), filepath.Join(cfg.Data, name+".before-restore-"+stamp)); err != nil {
				return fault.E(op, fault.Internal, "cannot keep the former "+name, err)
			}
		}
	}
	os.Remove(StoreDir(cfg)) // empty (checked)
	archives, err := os.ReadDir(filepath.Join(work, "audit-archive"))
	if err != nil {
		return fault.E(op, fault.Internal, "cannot read the restored archive", err)
	}
	if err := os.MkdirAll(ArchiveDir(cfg), 0o700); err != nil {
		return fault.E(op, fault.Internal, "cannot create "+ArchiveDir(cfg), err)
	}
	moves := [][2]string{{filepath.Join(work, "store"), StoreDir(cfg)}}
	for _, a := range archives {
		moves = append(moves, [2]string{filepath.Join(work, "audit-archive", a.Name()), filepath.Join(ArchiveDir(cfg), a.Name())})
	}
	for _, name := range []string{crypto.KeyringFile, "checkpoint.note"} {
		moves = append(moves, [2]string{filepath.Join(work, name), filepath.Join(cfg.Data, name)})
	}
	for _, m := range moves {
		if err := os.Rename(m[0], m[1]); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fault.E(op, fault.Internal, "cannot move the restored "+filepath.Base(m[1])+" into place", err)
		}
	}
	return os.RemoveAll(work)
}
