package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/google/renameio/v2"
)

// backupOrRestore runs switchd backup and switchd restore.
func backupOrRestore(ctx context.Context, c cli) error {
	if c.Config == "" {
		return fmt.Errorf("%s needs --config FILE (the switch's)", c.Action)
	}
	if c.File == "" {
		return fmt.Errorf("%s needs a FILE: switchd %s --config %s FILE", c.Action, c.Action, c.Config)
	}
	cfg, err := daemon.LoadConfig(c.Config)
	if err != nil {
		return err
	}
	if c.Action == "restore" {
		info, err := daemon.Restore(cfg, c.File)
		if err != nil {
			return err
		}
		fmt.Printf("restored the backup taken at %s: %d records, audit log of %d entries, queue sequence %d\n",
			info.TakenAt.Local().Format("2006-01-02 15:04:05 MST"), info.Records, info.AuditSize, info.QueueSeq)
		fmt.Println("the restore is in the audit log; every telegram queued at the backup goes out flagged possible duplicate; start the switch")
		return nil
	}
	var w io.Writer = os.Stdout
	var pending *renameio.PendingFile
	if c.File != "-" {
		if pending, err = renameio.NewPendingFile(c.File, renameio.WithPermissions(0o600)); err != nil {
			return fmt.Errorf("cannot create %s: %w", c.File, err)
		}
		defer pending.Cleanup()
		w = pending
	}
	info, err := daemon.Backup(ctx, cfg, w, int64(c.Rate)<<20)
	if err != nil {
		return err
	}
	if pending != nil {
		if err := pending.CloseAtomicallyReplace(); err != nil {
			return fmt.Errorf("cannot write %s: %w", c.File, err)
		}
	}
	fmt.Fprintf(os.Stderr, "backup taken at %s: %d records, %d bytes, audit log of %d entries (latest checkpoint %d), queue sequence %d\n",
		info.TakenAt.Local().Format("2006-01-02 15:04:05 MST"), info.Records, info.Bytes, info.AuditSize, info.Checkpoint, info.QueueSeq)
	return nil
}
