package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// Leaving a dev site as the bench found it. The switch refuses a
// directory that drops an agency with telegrams or delivery reports in
// custody, so the bench first takes back what it left: the backlog
// (received as BENCH.OFFLINE, with an identity issued for the purpose),
// what its recipients left unacknowledged when they stopped, then the
// delivery reports waiting for its senders. Then it writes the
// directory file back as it was, removes the agency key files it
// published, and waits until the switch no longer lists its agencies.

// cleanUp runs after a --dev bench that added agencies.
func (r *benchRun) cleanUp(e *env) error {
	if len(r.added) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := r.cmd.Dev
	if slices.Contains(r.added, offlineAgency) {
		idDir := filepath.Join(dir, "ids", "bench-offline")
		err := r.devIdentity(idDir, offlineAgency)
		if err == nil {
			err = drain(ctx, idDir, client.ReceiveOptions{Inbox: true})
		}
		if err != nil {
			return fmt.Errorf("taking back the backlog: %w", err)
		}
	}
	reports := func() error {
		// A recipient stopped at the end of the run may leave telegrams it
		// counted but whose acknowledgement did not reach the switch: they
		// went back to its queue. Taken with its reports in one session,
		// before the senders', whose reports those deliveries make.
		for _, d := range r.recvDirs {
			if err := drain(ctx, d, client.ReceiveOptions{Inbox: true, Receipts: true}); err != nil {
				return fmt.Errorf("taking what still waits for %s: %w", filepath.Base(d), err)
			}
		}
		for _, d := range r.sendDirs {
			if err := drain(ctx, d, client.ReceiveOptions{Receipts: true}); err != nil {
				return fmt.Errorf("taking the delivery reports of %s: %w", filepath.Base(d), err)
			}
		}
		return nil
	}
	if err := reports(); err != nil {
		return err
	}
	dirFile := filepath.Join(dir, "directory.toml")
	if err := os.WriteFile(dirFile, r.found, 0o644); err != nil {
		return err
	}
	for _, f := range r.addedKeys {
		os.Remove(f)
	}
	// The switch reloads the file within a timer interval.
	op, err := dialDir(ctx, filepath.Join(dir, "ids", "operator"))
	if err != nil {
		return err
	}
	defer op.Close()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		q, err := op.QueuesWith(ctx, wire.QueuesRequest{})
		if err != nil {
			return err
		}
		var left []string
		for _, row := range q.Rows {
			if slices.Contains(r.added, row.Agency) && !slices.Contains(left, string(row.Agency)) {
				left = append(left, string(row.Agency))
			}
		}
		if len(left) == 0 {
			fmt.Fprintf(e.stderr, "%s restored as the bench found it (%d bench agencies removed)\n", dirFile, len(r.added))
			return nil
		}
		if err := reports(); err != nil { // reports of the last deliveries, committed since
			return err
		}
		os.WriteFile(dirFile, r.found, 0o644) // a reload refused meanwhile is tried again
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is restored, but the switch still lists %s (telegrams or reports in custody: tg queues, tg list); it keeps them until they are delivered or cancelled",
				dirFile, strings.Join(left, ", "))
		}
	}
}

// drain receives what waits for the identity in idDir (telegrams or
// reports, as opts says), acknowledging and discarding it.
func drain(ctx context.Context, idDir string, opts client.ReceiveOptions) error {
	cl, err := dialDir(ctx, idDir)
	if err != nil {
		return err
	}
	defer cl.Close()
	return cl.Receive(ctx, opts, discard{})
}

// discard acknowledges and forgets.
type discard struct{}

func (discard) Telegram(client.Delivery) error { return nil }
func (discard) Receipt(telegram.Receipt) error { return nil }

// keyFiles lists the files of a directory's keys folder.
func keyFiles(dir string) []string {
	if dir == "" {
		return nil
	}
	m, _ := filepath.Glob(filepath.Join(dir, "*"))
	return m
}
