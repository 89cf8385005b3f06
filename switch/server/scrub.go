package server

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// The scrub (store/scrub.go) checks, in the background, the tables the
// store has written since it last checked them (so that the next start
// need not: start-up takes the same time whatever the backlog), and once a
// day every table, for damage a start would not see. What it finds is
// logged, audited (integrity) and counted in dienbao_store_damaged_tables.
const (
	scrubFirst = 30 * time.Second // after start: the switch serves first
	scrubEvery = 10 * time.Minute
	scrubAll   = 24 * time.Hour
)

func (s *Server) scrubber(ctx context.Context) {
	t := time.NewTimer(scrubFirst)
	defer t.Stop()
	lastFull := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		full := time.Since(lastFull) >= scrubAll
		res, err := s.store.Scrub(ctx, full)
		if err != nil && ctx.Err() == nil {
			s.log.Error("the store's scrub failed", zap.Error(err))
		}
		if full && err == nil {
			lastFull = time.Now()
		}
		if res.Checked > 0 {
			s.log.Info("store tables scrubbed", zap.Int("tables", res.Checked), zap.Bool("all", full), zap.Strings("damaged", res.Damaged))
		}
		t.Reset(scrubEvery)
	}
}
