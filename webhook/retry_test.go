package webhook

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name   string
		header string
		want   time.Duration
		ok     bool
	}{
		{"Seconds", "120", 2 * time.Minute, true},
		{"SecondsSpaces", " 7 ", 7 * time.Second, true},
		{"Zero", "0", minRetryAfter, true},
		{"Capped", "86400", MaxRetryAfter, true},
		{"Huge", "99999999999999999", MaxRetryAfter, true},
		{"Date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"DatePast", now.Add(-time.Hour).Format(http.TimeFormat), minRetryAfter, true},
		{"DateCapped", now.Add(48 * time.Hour).Format(http.TimeFormat), MaxRetryAfter, true},
		{"DateRFC850", now.Add(time.Minute).Format(time.RFC850), time.Minute, true},
		{"Missing", "", 0, false},
		{"Negative", "-5", 0, false},
		{"Fraction", "1.5", 0, false},
		{"Garbage", "soon", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.header, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("parseRetryAfter(%q) = %v, %v, want %v, %v", tt.header, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	schedule := DefaultSchedule()
	t.Run("OK", func(t *testing.T) {
		want := []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour, time.Hour, time.Hour}
		for i, w := range want {
			if got := retryDelay(schedule, i+1, 0); got != w {
				t.Errorf("delay after attempt %d = %v, want %v", i+1, got, w)
			}
		}
	})
	t.Run("Jitter", func(t *testing.T) {
		seen := map[time.Duration]bool{}
		for range 100 {
			got := retryDelay(schedule, 2, 0.1)
			if got < 27*time.Second || got > 33*time.Second {
				t.Fatalf("delay %v, want 30 s ± 10%%", got)
			}
			seen[got] = true
		}
		if len(seen) < 2 {
			t.Errorf("100 jittered delays took %d values, want a spread", len(seen))
		}
	})
}

func TestSnippet(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"ASCII", "ok", "ok"},
		{"CutRune", "é"[:1], ""},
		{"CutRuneAfterText", "abc" + "€"[:2], "abc"},
		{"WholeRune", "abc€", "abc€"},
		{"InvalidInside", "a\xffb", "a\uFFFDb"},
	}
	for _, tt := range tests {
		if got := snippet([]byte(tt.in)); got != tt.want {
			t.Errorf("%s: snippet(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://ci.example.com/job/deploy/buildWithParameters?token=s3cret&x=1", "https://ci.example.com/job/deploy/buildWithParameters"},
		{"https://user:pass@hooks.example.com/a#frag", "https://hooks.example.com/a"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/"},
		{"http://[::1", "(malformed URL)"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
