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

// runTicker applies what time does (soak promotions that are due, freeze
// windows that end) until ctx is done: at the time the store says it next
// has something to do, after every commit that recorded events (a
// completed deployment may start a soak), and at least every
// maxTickInterval.
func runTicker(ctx context.Context, store deploydb.Store, config func() *deploydb.Config, logger *slog.Logger) {
	for {
		committed := store.EventsCommitted()
		next, err := store.Tick(ctx, config())
		if err != nil && ctx.Err() == nil {
			logger.Error("timer: applying soaks and freeze windows", "err", err)
		}
		wait := maxTickInterval
		if !next.IsZero() {
			wait = min(max(time.Until(next), 10*time.Millisecond), maxTickInterval)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-committed:
		case <-timer.C:
		}
		timer.Stop()
	}
}
