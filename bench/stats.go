package bench

import (
	"math"
	"slices"
	"time"
)

// Never is the duration of what did not end while it was measured (a
// webhook call that never arrived): it sorts after every measured one, so
// a percentile that falls on it is unknown, not small.
const Never = time.Duration(math.MaxInt64)

// Sample collects measured durations. The zero value is empty and ready to
// use; a Sample is not safe for concurrent use (give each client its own
// and Merge them).
type Sample struct {
	d      []time.Duration
	sorted bool
}

// Add records one duration.
func (s *Sample) Add(d time.Duration) {
	s.d = append(s.d, d)
	s.sorted = false
}

// Merge adds every duration of o.
func (s *Sample) Merge(o *Sample) {
	s.d = append(s.d, o.d...)
	s.sorted = false
}

// Len returns how many durations were recorded.
func (s *Sample) Len() int { return len(s.d) }

// Percentile returns the p-th percentile (0 < p <= 100) by the
// nearest-rank method: the smallest recorded duration that at least p % of
// the durations are less than or equal to. It returns 0 for an empty
// sample.
func (s *Sample) Percentile(p float64) time.Duration {
	if len(s.d) == 0 {
		return 0
	}
	if !s.sorted {
		slices.Sort(s.d)
		s.sorted = true
	}
	rank := int(math.Ceil(p / 100 * float64(len(s.d))))
	rank = min(max(rank, 1), len(s.d))
	return s.d[rank-1]
}

// Max returns the largest duration, 0 for an empty sample.
func (s *Sample) Max() time.Duration { return s.Percentile(100) }

// Mean returns the mean duration, 0 for an empty sample.
func (s *Sample) Mean() time.Duration {
	if len(s.d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range s.d {
		sum += d
	}
	return sum / time.Duration(len(s.d))
}

// msOf returns d in milliseconds.
func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
