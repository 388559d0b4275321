package webhook

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Defaults of a Dispatcher's settings (DESIGN.md §5).
const (
	DefaultTimeout     = 10 * time.Second
	DefaultGiveUpAfter = 24 * time.Hour
	DefaultJitter      = 0.1
	// DefaultWorkers is how many calls a dispatcher makes at once. Each
	// worker sends, then waits for its attempt to be recorded (a commit
	// it shares with the others': group commit), so the throughput to a
	// fast receiver is about workers / (call + commit): with 8 it stayed
	// under 1,000 deliveries/s here, with 64 it passes 2,000 (DESIGN.md
	// §10).
	DefaultWorkers      = 64
	DefaultPollInterval = time.Second
	// DefaultDrainTimeout bounds how long a shutdown waits for calls in flight.
	DefaultDrainTimeout = 5 * time.Second
	// DefaultLease is how long a claimed delivery stays a dispatcher's: an
	// attempt (DefaultTimeout) and its recording, with room to spare.
	DefaultLease = time.Minute
)

// MaxRetryAfter caps how long a receiver's Retry-After can postpone the next
// attempt, so that a receiver cannot park a delivery (and the queue behind
// it) for days.
const MaxRetryAfter = time.Hour

// minRetryAfter floors Retry-After: "0" or a date in the past would
// otherwise let a throttling receiver make us call it in a tight loop.
const minRetryAfter = time.Second

// DefaultSchedule returns the default delays before each retry: 5 s, 30 s,
// 2 m, 10 m, 30 m, 1 h. After the last one the dispatcher keeps retrying
// hourly until DefaultGiveUpAfter has passed since the first attempt.
func DefaultSchedule() []time.Duration {
	return []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour}
}

// retryDelay returns the delay before the retry that follows attempt n
// (1-based): the schedule's n-th delay, or its last one once the schedule is
// used up, spread by ±jitter (a fraction) so that the calls a receiver
// outage piled up do not all come back at the same instant.
func retryDelay(schedule []time.Duration, n int, jitter float64) time.Duration {
	d := schedule[min(n, len(schedule))-1]
	if jitter > 0 {
		d = time.Duration(float64(d) * (1 + jitter*(2*rand.Float64()-1)))
	}
	return max(d, 0)
}

// parseRetryAfter reads a Retry-After header (RFC 9110 §10.2.3): a number of
// seconds or an HTTP date. It reports false when the header is absent or
// malformed. The delay is clamped to [minRetryAfter, MaxRetryAfter].
func parseRetryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		d = MaxRetryAfter
		if secs < int64(MaxRetryAfter/time.Second) {
			d = time.Duration(secs) * time.Second
		}
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	} else {
		return 0, false
	}
	return min(max(d, minRetryAfter), MaxRetryAfter), true
}
