package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/deploydb/deploydb"
)

// maxTickInterval bounds how long the ticker sleeps, as a safety net behind
// the times the store gives and the commits it signals.
const maxTickInterval = 30 * time.Second

// minCommitTick is the least time between two ticks woken by commits, so
// that a busy write load costs one tick per interval, not one per commit.
// A soak due is then applied at most this late.
const minCommitTick = 100 * time.Millisecond

// minTickRetry is how soon the ticker tries again after the store failed
// (the database is unreachable, say); the pause doubles with each failure
// in a row, up to maxTickRetry, so that the soaks and freeze windows that
// came due meanwhile are applied within seconds of the database's return.
const (
	minTickRetry = time.Second
	maxTickRetry = 5 * time.Second
)

// runTicker applies what time does (soak promotions that are due, freeze
// windows that end) until ctx is done: at the time the store says it next
// has something to do, after every commit that recorded events (a
// completed deployment may start a soak), and at least every
// maxTickInterval, and after a config reload (freeze windows may have
// changed). At start and after each reload it also announces the
// environments the configuration added, changed or removed. A store that
// fails is tried again after minTickRetry, then less and less often.
func runTicker(ctx context.Context, store deploydb.Store, config func() *deploydb.Config, reloaded func() <-chan struct{}, logger *slog.Logger) {
	synced := ""
	retry := minTickRetry
	for {
		committed, changed := store.EventsCommitted(), reloaded()
		cfg := config()
		failed := false
		if cfg.Checksum != synced {
			if _, err := store.SyncEnvironments(ctx, cfg); err != nil {
				failed = true
				if ctx.Err() == nil {
					logger.Error("config: announcing environment changes", "err", err)
				}
			} else {
				synced = cfg.Checksum
			}
		}
		next, err := store.Tick(ctx, cfg)
		if err != nil {
			failed = true
			if ctx.Err() == nil {
				logger.Error("timer: applying soaks and freeze windows", "err", err, "retry_in", retry)
			}
		}
		wait := maxTickInterval
		switch {
		case failed:
			wait, retry = retry, min(2*retry, maxTickRetry)
		case !next.IsZero():
			wait = min(max(time.Until(next), 10*time.Millisecond), maxTickInterval)
		}
		if !failed {
			retry = minTickRetry
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-committed:
			// Coalesce the commits of a busy moment into one tick.
			timer.Stop()
			timer = time.NewTimer(minCommitTick)
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
		case <-changed:
		case <-timer.C:
		}
		timer.Stop()
	}
}
