package deploydb_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/deploydb/deploydb"
)

// fataler is what the helpers need of a *testing.T, *testing.B or
// *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
}

// utc parses an RFC 3339 time.
func utc(tb fataler, s string) time.Time {
	tb.Helper()
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func mustLocation(tb fataler, name string) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		tb.Fatal(err)
	}
	return loc
}

// weekly returns a weekly freeze as the config loader builds it.
func weekly(tb fataler, reason, tz string, days []string, from, to string) deploydb.Freeze {
	return deploydb.Freeze{Reason: reason, TimeZone: tz, Days: days, From: from, To: to, Location: mustLocation(tb, tz)}
}

func absolute(tb fataler, reason, start, end string) deploydb.Freeze {
	s, e := deploydb.NewTime(utc(tb, start)), deploydb.NewTime(utc(tb, end))
	return deploydb.Freeze{Reason: reason, Start: &s, End: &e}
}

var weekdays = []string{"mon", "tue", "wed", "thu", "fri"}

func TestFrozenAt(t *testing.T) {
	t.Parallel()
	type check struct {
		at     string // RFC 3339
		frozen bool
		reason string
		until  string // RFC 3339, "" for zero
	}
	cases := []struct {
		name    string
		freezes func(testing.TB) []deploydb.Freeze
		checks  []check
	}{
		{
			name:    "OKNoFreezes",
			freezes: func(testing.TB) []deploydb.Freeze { return nil },
			checks:  []check{{at: "2025-06-02T12:00:00Z"}},
		},
		{
			name: "OKNightsCrossMidnight",
			// Weekday nights, 22:00 to 06:00 UTC. 2025-06-02 is a Monday.
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{weekly(tb, "nightly batch", "UTC", weekdays, "22:00", "06:00")}
			},
			checks: []check{
				{at: "2025-06-02T21:59:59Z"},
				{at: "2025-06-02T22:00:00Z", frozen: true, reason: "nightly batch", until: "2025-06-03T06:00:00Z"},
				{at: "2025-06-03T05:59:59Z", frozen: true, reason: "nightly batch", until: "2025-06-03T06:00:00Z"},
				{at: "2025-06-03T06:00:00Z"},
				// Friday night's window ends on Saturday morning.
				{at: "2025-06-07T02:00:00Z", frozen: true, reason: "nightly batch", until: "2025-06-07T06:00:00Z"},
				{at: "2025-06-07T23:00:00Z"},
				// Sunday is not listed: no window starts on Sunday night.
				{at: "2025-06-09T02:00:00Z"},
			},
		},
		{
			name: "OKTimeZone",
			// 09:00 to 17:00 in New York is 13:00 to 21:00 UTC in summer.
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{weekly(tb, "US office hours", "America/New_York", []string{"wed"}, "09:00", "17:00")}
			},
			checks: []check{
				{at: "2025-06-04T12:59:00Z"},
				{at: "2025-06-04T13:00:00Z", frozen: true, reason: "US office hours", until: "2025-06-04T21:00:00Z"},
				{at: "2025-12-03T13:30:00Z"}, // 08:30 EST
				{at: "2025-12-03T14:00:00Z", frozen: true, reason: "US office hours", until: "2025-12-03T22:00:00Z"},
			},
		},
		{
			name: "OKWeekendChain",
			// Friday 18:00 to Monday 08:00, written as windows that touch:
			// the freeze lasts until the end of the last one.
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{
					weekly(tb, "weekend", "Europe/Berlin", []string{"fri"}, "18:00", "24:00"),
					weekly(tb, "weekend", "Europe/Berlin", []string{"sat", "sun"}, "00:00", "00:00"),
					weekly(tb, "weekend", "Europe/Berlin", []string{"mon"}, "00:00", "08:00"),
				}
			},
			checks: []check{
				{at: "2025-06-06T15:59:00Z"},
				{at: "2025-06-06T16:00:00Z", frozen: true, reason: "weekend", until: "2025-06-09T06:00:00Z"},
				{at: "2025-06-08T12:00:00Z", frozen: true, reason: "weekend", until: "2025-06-09T06:00:00Z"},
				{at: "2025-06-09T06:00:00Z"},
			},
		},
		{
			name: "OKOverlapFirstReasonLatestEnd",
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{
					weekly(tb, "morning", "UTC", []string{"mon"}, "00:00", "12:00"),
					weekly(tb, "afternoon", "UTC", []string{"mon"}, "06:00", "18:00"),
					absolute(tb, "release", "2025-06-02T17:00:00Z", "2025-06-02T20:00:00Z"),
				}
			},
			checks: []check{
				{at: "2025-06-02T05:00:00Z", frozen: true, reason: "morning", until: "2025-06-02T20:00:00Z"},
				{at: "2025-06-02T07:00:00Z", frozen: true, reason: "morning", until: "2025-06-02T20:00:00Z"},
				{at: "2025-06-02T12:00:00Z", frozen: true, reason: "afternoon", until: "2025-06-02T20:00:00Z"},
				{at: "2025-06-02T18:00:00Z", frozen: true, reason: "release", until: "2025-06-02T20:00:00Z"},
				{at: "2025-06-02T20:00:00Z"},
				// A week later there is no release window.
				{at: "2025-06-09T07:00:00Z", frozen: true, reason: "morning", until: "2025-06-09T18:00:00Z"},
			},
		},
		{
			name: "OKAbsolute",
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{absolute(tb, "year-end", "2025-12-20T00:00:00+01:00", "2026-01-05T08:00:00+01:00")}
			},
			checks: []check{
				{at: "2025-12-19T22:59:59Z"},
				{at: "2025-12-19T23:00:00Z", frozen: true, reason: "year-end", until: "2026-01-05T07:00:00Z"},
				{at: "2026-01-05T06:59:59Z", frozen: true, reason: "year-end", until: "2026-01-05T07:00:00Z"},
				{at: "2026-01-05T07:00:00Z"},
			},
		},
		{
			name: "OKNeverEnds",
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{
					weekly(tb, "decommissioned", "Europe/Berlin", []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, "00:00", "24:00"),
				}
			},
			checks: []check{
				{at: "2025-03-30T01:30:00Z", frozen: true, reason: "decommissioned"},
				{at: "2025-10-26T01:30:00Z", frozen: true, reason: "decommissioned"},
			},
		},
		{
			name: "OKDSTSpringForwardShortNight",
			// Berlin, 2025-03-30 (a Sunday): at 02:00 CET the clocks jump to
			// 03:00 CEST, at 01:00 UTC. 01:00 CET to 04:00 CEST is two hours
			// of real time; a week before, three.
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{weekly(tb, "maintenance", "Europe/Berlin", []string{"sun"}, "01:00", "04:00")}
			},
			checks: []check{
				{at: "2025-03-29T23:59:00Z"},
				{at: "2025-03-30T00:00:00Z", frozen: true, reason: "maintenance", until: "2025-03-30T02:00:00Z"},
				{at: "2025-03-30T02:00:00Z"},
				{at: "2025-03-23T02:30:00Z", frozen: true, reason: "maintenance", until: "2025-03-23T03:00:00Z"},
			},
		},
		{
			name: "OKDSTSpringForwardStartSkipped",
			// 02:30 does not exist that night: the window starts when the
			// clocks skip past it, 03:00 CEST.
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{weekly(tb, "backup", "Europe/Berlin", []string{"sun"}, "02:30", "05:00")}
			},
			checks: []check{
				{at: "2025-03-30T00:59:59Z"},
				{at: "2025-03-30T01:00:00Z", frozen: true, reason: "backup", until: "2025-03-30T03:00:00Z"},
				{at: "2025-03-23T01:30:00Z", frozen: true, reason: "backup", until: "2025-03-23T04:00:00Z"},
			},
		},
		{
			name: "OKDSTSpringForwardEndSkipped",
			// 02:30 does not exist that night: the window ends when the
			// clocks skip past it.
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{weekly(tb, "backup", "Europe/Berlin", []string{"sun"}, "01:30", "02:30")}
			},
			checks: []check{
				{at: "2025-03-30T00:30:00Z", frozen: true, reason: "backup", until: "2025-03-30T01:00:00Z"},
				{at: "2025-03-30T01:00:00Z"},
			},
		},
		{
			name: "OKDSTSpringForwardWindowSkipped",
			// 02:00 to 02:30 lies wholly in the skipped hour: no window that
			// night, an ordinary one the weeks around it.
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{weekly(tb, "ghost", "Europe/Berlin", []string{"sun"}, "02:00", "02:30")}
			},
			checks: []check{
				{at: "2025-03-30T00:59:59Z"},
				{at: "2025-03-30T01:00:00Z"},
				{at: "2025-03-30T01:15:00Z"},
				{at: "2025-03-23T01:10:00Z", frozen: true, reason: "ghost", until: "2025-03-23T01:30:00Z"},
				{at: "2025-04-06T00:10:00Z", frozen: true, reason: "ghost", until: "2025-04-06T00:30:00Z"},
			},
		},
		{
			name: "OKDSTSpringForwardOvernight",
			// Across midnight into the short night: 22:00 CET is 21:00 UTC,
			// 06:00 CEST is 04:00 UTC: seven hours.
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{weekly(tb, "overnight", "Europe/Berlin", []string{"sat"}, "22:00", "06:00")}
			},
			checks: []check{
				{at: "2025-03-29T20:59:00Z"},
				{at: "2025-03-29T21:00:00Z", frozen: true, reason: "overnight", until: "2025-03-30T04:00:00Z"},
				{at: "2025-03-30T03:59:00Z", frozen: true, reason: "overnight", until: "2025-03-30T04:00:00Z"},
				{at: "2025-03-30T04:00:00Z"},
			},
		},
		{
			name: "OKDSTFallBackTimeShownTwice",
			// Berlin, 2025-10-26 (a Sunday): at 03:00 CEST the clocks go back
			// to 02:00 CET, at 01:00 UTC, so 02:00 to 03:00 happens twice.
			// The window starts at the first 02:30 (CEST) and ends at 03:30
			// CET: two hours of real time, frozen through the second 02:30.
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{weekly(tb, "maintenance", "Europe/Berlin", []string{"sun"}, "02:30", "03:30")}
			},
			checks: []check{
				{at: "2025-10-26T00:29:00Z"},
				{at: "2025-10-26T00:30:00Z", frozen: true, reason: "maintenance", until: "2025-10-26T02:30:00Z"},
				{at: "2025-10-26T01:15:00Z", frozen: true, reason: "maintenance", until: "2025-10-26T02:30:00Z"},
				{at: "2025-10-26T02:30:00Z"},
				// A week later, an ordinary night: 02:30 to 03:30 CET.
				{at: "2025-11-02T01:29:00Z"},
				{at: "2025-11-02T01:30:00Z", frozen: true, reason: "maintenance", until: "2025-11-02T02:30:00Z"},
			},
		},
		{
			name: "OKDSTFallBackOvernight",
			// Across midnight into the long night: 22:00 CEST is 20:00 UTC,
			// 06:00 CET is 05:00 UTC: nine hours.
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{weekly(tb, "overnight", "Europe/Berlin", []string{"sat"}, "22:00", "06:00")}
			},
			checks: []check{
				{at: "2025-10-25T19:59:00Z"},
				{at: "2025-10-25T20:00:00Z", frozen: true, reason: "overnight", until: "2025-10-26T05:00:00Z"},
				{at: "2025-10-26T04:59:00Z", frozen: true, reason: "overnight", until: "2025-10-26T05:00:00Z"},
				{at: "2025-10-26T05:00:00Z"},
			},
		},
		{
			name: "OKDecodedFromJSON",
			// The client decodes environments from JSON: no Location, the
			// time zone is loaded by name.
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{{Reason: "office", TimeZone: "Europe/Berlin", Days: []string{"mon"}, From: "09:00", To: "17:00"}}
			},
			checks: []check{
				{at: "2025-06-02T07:00:00Z", frozen: true, reason: "office", until: "2025-06-02T15:00:00Z"},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := &deploydb.Environment{Ident: "prod", Freezes: c.freezes(t)}
			for _, ch := range c.checks {
				frozen, reason, until := env.FrozenAt(utc(t, ch.at))
				var wantUntil time.Time
				if ch.until != "" {
					wantUntil = utc(t, ch.until)
				}
				if frozen != ch.frozen || reason != ch.reason || !until.Equal(wantUntil) {
					t.Errorf("FrozenAt(%s) = %v, %q, %s; want %v, %q, %s", ch.at, frozen, reason, fmtTime(until), ch.frozen, ch.reason, fmtTime(wantUntil))
				}
			}
		})
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "zero"
	}
	return t.UTC().Format(time.RFC3339)
}

func TestNextFreezeChange(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		freezes func(testing.TB) []deploydb.Freeze
		at      string
		want    string // "" for never
	}{
		{name: "OKNoFreezes", freezes: func(testing.TB) []deploydb.Freeze { return nil }, at: "2025-06-02T12:00:00Z"},
		{
			name: "OKNextStart",
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{weekly(tb, "friday", "UTC", []string{"fri"}, "18:00", "22:00")}
			},
			at: "2025-06-04T10:00:00Z", want: "2025-06-06T18:00:00Z",
		},
		{
			name: "OKNextStartNextWeek",
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{weekly(tb, "friday", "UTC", []string{"fri"}, "18:00", "22:00")}
			},
			at: "2025-06-06T22:00:00Z", want: "2025-06-13T18:00:00Z",
		},
		{
			name: "OKEndOfChain",
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{
					weekly(tb, "a", "UTC", []string{"fri"}, "18:00", "24:00"),
					weekly(tb, "a", "UTC", []string{"sat"}, "00:00", "12:00"),
				}
			},
			// Midnight starts and ends a window, but nothing FrozenAt says
			// changes then.
			at: "2025-06-06T19:00:00Z", want: "2025-06-07T12:00:00Z",
		},
		{
			name: "OKReasonChanges",
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{
					weekly(tb, "morning", "UTC", []string{"mon"}, "00:00", "12:00"),
					weekly(tb, "afternoon", "UTC", []string{"mon"}, "06:00", "18:00"),
				}
			},
			at: "2025-06-02T07:00:00Z", want: "2025-06-02T12:00:00Z",
		},
		{
			name: "OKAbsoluteStart",
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{absolute(tb, "release", "2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z")}
			},
			at: "2025-06-02T07:00:00Z", want: "2030-01-01T00:00:00Z",
		},
		{
			name: "OKAbsoluteEnd",
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{absolute(tb, "release", "2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z")}
			},
			at: "2030-01-01T00:00:00Z", want: "2030-01-02T00:00:00Z",
		},
		{
			name: "OKAbsolutePast",
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{absolute(tb, "release", "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z")}
			},
			at: "2025-06-02T07:00:00Z",
		},
		{
			name: "OKNeverEnds",
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{weekly(tb, "forever", "UTC", []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, "12:00", "12:00")}
			},
			at: "2025-06-02T07:00:00Z",
		},
		{
			name: "OKDSTSpringForward",
			freezes: func(tb testing.TB) []deploydb.Freeze {
				return []deploydb.Freeze{weekly(tb, "backup", "Europe/Berlin", []string{"sun"}, "02:30", "05:00")}
			},
			at: "2025-03-29T12:00:00Z", want: "2025-03-30T01:00:00Z",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env := &deploydb.Environment{Ident: "prod", Freezes: c.freezes(t)}
			var want time.Time
			if c.want != "" {
				want = utc(t, c.want)
			}
			if got := env.NextFreezeChange(utc(t, c.at)); !got.Equal(want) {
				t.Errorf("NextFreezeChange(%s) = %s, want %s", c.at, fmtTime(got), fmtTime(want))
			}
		})
	}
}

// civilFrozen is an oracle written another way: it compares wall-clock
// times in the window's zone as calendar values, as a person reading a
// clock would. It agrees with FrozenAt for windows that do not end at a
// time the clocks show twice.
func civilFrozen(loc *time.Location, days map[time.Weekday]bool, from, to int, t time.Time) bool {
	l := t.In(loc)
	now := time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
	for k := -1; k <= 0; k++ {
		day := time.Date(l.Year(), l.Month(), l.Day()+k, 0, 0, 0, 0, time.UTC)
		if !days[day.Weekday()] {
			continue
		}
		start := day.Add(time.Duration(from) * time.Minute)
		end := day.Add(time.Duration(to) * time.Minute)
		if to <= from {
			end = end.Add(24 * time.Hour)
		}
		if !now.Before(start) && now.Before(end) {
			return true
		}
	}
	return false
}

// TestFreezeAgainstClock scans weeks around both changes of daylight
// saving time in Berlin minute by minute, checking FrozenAt against the
// wall-clock oracle and NextFreezeChange against the changes seen.
func TestFreezeAgainstClock(t *testing.T) {
	t.Parallel()
	berlin := mustLocation(t, "Europe/Berlin")
	type win struct {
		days     []string
		from, to string
	}
	common := []win{
		{[]string{"sat"}, "22:00", "06:00"},
		{[]string{"mon", "wed"}, "09:15", "17:45"},
		{[]string{"tue"}, "23:00", "23:00"},
	}
	seasons := []struct {
		start string
		wins  []win
	}{
		// Spring: boundaries in the skipped hour.
		{"2025-03-26T00:00:00Z", append([]win{
			{[]string{"sun"}, "01:00", "02:30"},
			{[]string{"sun"}, "02:30", "04:00"},
			{[]string{"sun"}, "02:00", "02:45"},
		}, common...)},
		// Autumn: windows around the hour shown twice. A boundary inside it
		// is where the oracle, which reads the clock, and FrozenAt, which
		// takes its first occurrence, part ways: the table tests cover it.
		{"2025-10-22T00:00:00Z", append([]win{
			{[]string{"sun"}, "01:00", "04:00"},
			{[]string{"sun"}, "03:30", "05:00"},
			{[]string{"sun"}, "00:30", "02:00"},
		}, common...)},
	}
	for _, season := range seasons {
		wins := season.wins
		var freezes []deploydb.Freeze
		for i, w := range wins {
			freezes = append(freezes, deploydb.Freeze{Reason: string(rune('a' + i)), TimeZone: "Europe/Berlin", Days: w.days, From: w.from, To: w.to, Location: berlin})
		}
		env := &deploydb.Environment{Freezes: freezes}
		oracle := func(at time.Time) (bool, string) {
			for i, w := range wins {
				days := map[time.Weekday]bool{}
				for _, d := range w.days {
					wd, err := deploydb.ParseFreezeDay(d)
					if err != nil {
						t.Fatal(err)
					}
					days[wd] = true
				}
				from, _ := deploydb.ParseClock(w.from)
				to, _ := deploydb.ParseClock(w.to)
				if civilFrozen(berlin, days, from, to, at) {
					return true, string(rune('a' + i))
				}
			}
			return false, ""
		}
		t0 := utc(t, season.start)
		step := 15 * time.Minute
		var prevFrozen bool
		var prevReason string
		var prevUntil time.Time
		for at := t0; at.Before(t0.Add(8 * 24 * time.Hour)); at = at.Add(step) {
			frozen, reason, until := env.FrozenAt(at)
			wantFrozen, wantReason := oracle(at)
			if frozen != wantFrozen || reason != wantReason {
				t.Fatalf("FrozenAt(%s) = %v %q, the clock says %v %q", fmtTime(at), frozen, reason, wantFrozen, wantReason)
			}
			if frozen && !until.After(at) {
				t.Fatalf("FrozenAt(%s): until %s is not after it", fmtTime(at), fmtTime(until))
			}
			if at != t0 {
				prev := at.Add(-step)
				next := env.NextFreezeChange(prev)
				changed := frozen != prevFrozen || reason != prevReason || !until.Equal(prevUntil)
				switch {
				case changed && !next.After(prev):
					t.Fatalf("NextFreezeChange(%s) = %s, want a change by %s", fmtTime(prev), fmtTime(next), fmtTime(at))
				case changed && next.After(at):
					t.Fatalf("NextFreezeChange(%s) = %s, but the answer changed by %s", fmtTime(prev), fmtTime(next), fmtTime(at))
				case !changed && !next.IsZero() && !next.After(at):
					t.Fatalf("NextFreezeChange(%s) = %s, but nothing changed by %s", fmtTime(prev), fmtTime(next), fmtTime(at))
				}
			}
			prevFrozen, prevReason, prevUntil = frozen, reason, until
		}
	}
}

func TestParseClock(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want int
	}{{"00:00", 0}, {"8:30", 510}, {"08:30", 510}, {"23:59", 1439}, {"24:00", 1440}} {
		got, err := deploydb.ParseClock(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseClock(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
		if c.in != "8:30" && deploydb.FormatClock(got) != c.in {
			t.Errorf("FormatClock(%d) = %q, want %q", got, deploydb.FormatClock(got), c.in)
		}
	}
	for _, in := range []string{"", "8", "08:3", "08:300", "24:01", "25:00", "12:60", "-1:00", "+8:00", "0x:00", "08.30", "８:30", "8:30pm"} {
		if got, err := deploydb.ParseClock(in); err == nil {
			t.Errorf("ParseClock(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseFreezeDay(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Weekday{"mon": time.Monday, "Sun": time.Sunday, "SATURDAY": time.Saturday, "wednesday": time.Wednesday} {
		got, err := deploydb.ParseFreezeDay(in)
		if err != nil || got != want {
			t.Errorf("ParseFreezeDay(%q) = %v, %v; want %v", in, got, err, want)
		}
		if deploydb.FreezeDay(got) != deploydb.FreezeDay(want) || len(deploydb.FreezeDay(got)) != 3 {
			t.Errorf("FreezeDay(%v) = %q", got, deploydb.FreezeDay(got))
		}
	}
	for _, in := range []string{"", "mo", "montag", "weekend", "1"} {
		if _, err := deploydb.ParseFreezeDay(in); err == nil {
			t.Errorf("ParseFreezeDay(%q) accepted", in)
		}
	}
}

func TestEnvironmentJSONShowsFreezes(t *testing.T) {
	t.Parallel()
	env := deploydb.Environment{
		Ident:   "prod",
		Webhook: deploydb.Webhook{},
		Freezes: []deploydb.Freeze{
			weekly(t, "weekend", "Europe/Berlin", []string{"fri"}, "18:00", "24:00"),
			absolute(t, "year-end", "2025-12-20T00:00:00+01:00", "2026-01-05T08:00:00+01:00"),
		},
	}
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ident":"prod","description":"","production":false,"webhook":{},"freezes":[` +
		`{"reason":"weekend","timezone":"Europe/Berlin","days":["fri"],"from":"18:00","to":"24:00"},` +
		`{"reason":"year-end","start":"2025-12-19T23:00:00.000Z","end":"2026-01-05T07:00:00.000Z"}]}`
	if string(b) != want {
		t.Errorf("JSON =\n%s\nwant\n%s", b, want)
	}
	// The client decodes it back, and it answers the same.
	var back deploydb.Environment
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	for _, at := range []string{"2025-06-06T17:00:00Z", "2025-06-06T15:00:00Z", "2025-12-25T00:00:00Z"} {
		f1, r1, u1 := env.FrozenAt(utc(t, at))
		f2, r2, u2 := back.FrozenAt(utc(t, at))
		if f1 != f2 || r1 != r2 || !u1.Equal(u2) {
			t.Errorf("at %s: decoded environment says %v %q %s, the original %v %q %s", at, f2, r2, fmtTime(u2), f1, r1, fmtTime(u1))
		}
	}
	// No freezes: no key.
	b, _ = json.Marshal(deploydb.Environment{Ident: "integ", Freezes: []deploydb.Freeze{}})
	if string(b) != `{"ident":"integ","description":"","production":false,"webhook":{}}` {
		t.Errorf("JSON without freezes = %s", b)
	}
}

// TestNextFreezeChangeLongFreezes: windows that go on for years answer at
// once, exactly when they can, and never loop without end.
func TestNextFreezeChangeLongFreezes(t *testing.T) {
	t.Parallel()
	at := utc(t, "2025-06-02T07:00:00Z")
	// An absolute window listed first holds for years, with weekly
	// windows starting and ending inside it: the answer changes when it
	// ends.
	env := &deploydb.Environment{Freezes: []deploydb.Freeze{
		absolute(t, "migration", "2025-01-01T00:00:00Z", "2030-01-01T00:00:00Z"),
		weekly(t, "nights", "Europe/Berlin", weekdays, "22:00", "06:00"),
	}}
	if got, want := env.NextFreezeChange(at), utc(t, "2030-01-01T00:00:00Z"); !got.Equal(want) {
		t.Errorf("NextFreezeChange = %s, want %s", fmtTime(got), fmtTime(want))
	}
	// Frozen every hour of the week for ever, and an absolute window far
	// ahead listed after: nothing FrozenAt says ever changes. The answer
	// is the zero time, or an instant to ask again from.
	env = &deploydb.Environment{Freezes: []deploydb.Freeze{
		weekly(t, "closed", "Europe/Berlin", []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, "00:00", "24:00"),
		absolute(t, "far", "2999-01-01T00:00:00Z", "2999-01-02T00:00:00Z"),
	}}
	if frozen, why, until := env.FrozenAt(at); !frozen || why != "closed" || !until.IsZero() {
		t.Errorf("FrozenAt = %v %q %s, want frozen for ever", frozen, why, fmtTime(until))
	}
	for x, n := at, 0; ; n++ {
		next := env.NextFreezeChange(x)
		if next.IsZero() {
			break
		}
		if !next.After(x) {
			t.Fatalf("NextFreezeChange(%s) = %s, not after it", fmtTime(x), fmtTime(next))
		}
		if frozen, why, until := env.FrozenAt(next); !frozen || why != "closed" || !until.IsZero() {
			t.Fatalf("FrozenAt(%s) = %v %q %s, want frozen for ever", fmtTime(next), frozen, why, fmtTime(until))
		}
		if n > 1000 {
			t.Fatalf("NextFreezeChange still going at %s", fmtTime(next))
		}
		x = next
	}
}

// prodFreezes is the production environment of docs/config.md.
func prodFreezes(tb testing.TB) *deploydb.Environment {
	return &deploydb.Environment{Ident: "prod", Freezes: []deploydb.Freeze{
		weekly(tb, "nightly batch jobs", "Europe/Berlin", []string{"mon", "tue", "wed", "thu"}, "22:00", "06:00"),
		weekly(tb, "weekend freeze", "Europe/Berlin", []string{"fri"}, "18:00", "24:00"),
		weekly(tb, "weekend freeze", "Europe/Berlin", []string{"sat", "sun"}, "00:00", "00:00"),
		weekly(tb, "weekend freeze", "Europe/Berlin", []string{"mon"}, "00:00", "08:00"),
		absolute(tb, "year-end freeze", "2025-12-20T00:00:00+01:00", "2026-01-05T08:00:00+01:00"),
	}}
}

func BenchmarkFrozenAt(b *testing.B) {
	env := prodFreezes(b)
	at := utc(b, "2025-06-07T12:00:00Z")
	for b.Loop() {
		env.FrozenAt(at)
	}
}

func BenchmarkNextFreezeChange(b *testing.B) {
	env := prodFreezes(b)
	at := utc(b, "2025-06-04T12:00:00Z")
	for b.Loop() {
		env.NextFreezeChange(at)
	}
}

// TestFreezeProperties draws windows at random and checks FrozenAt and
// NextFreezeChange against each other on a 15-minute grid, which holds
// every boundary of windows set to the quarter hour in zones whose clocks
// change by whole hours: the answer is the same up to until, and up to the
// next change, and differs there.
func TestFreezeProperties(t *testing.T) {
	t.Parallel()
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney"}
	days := []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
	base := utc(t, "2025-03-27T00:00:00Z") // the days Berlin springs forward
	rapid.Check(t, func(rt *rapid.T) {
		var freezes []deploydb.Freeze
		for i := range rapid.IntRange(1, 4).Draw(rt, "windows") {
			reason := rapid.SampledFrom([]string{"a", "b", "c"}).Draw(rt, "reason")
			if rapid.IntRange(0, 3).Draw(rt, fmt.Sprintf("kind%d", i)) == 0 {
				start := base.Add(time.Duration(rapid.IntRange(-96, 5*96).Draw(rt, "start")) * 15 * time.Minute)
				end := start.Add(time.Duration(rapid.IntRange(1, 3*96).Draw(rt, "length")) * 15 * time.Minute)
				freezes = append(freezes, absolute(rt, reason, start.Format(time.RFC3339), end.Format(time.RFC3339)))
				continue
			}
			var ds []string
			for _, d := range days {
				if rapid.Bool().Draw(rt, d) {
					ds = append(ds, d)
				}
			}
			if len(ds) == 0 {
				ds = []string{rapid.SampledFrom(days).Draw(rt, "day")}
			}
			from := rapid.IntRange(0, 95).Draw(rt, "from") * 15
			to := rapid.IntRange(0, 96).Draw(rt, "to") * 15
			freezes = append(freezes, weekly(rt, reason, rapid.SampledFrom(zones).Draw(rt, "zone"), ds, deploydb.FormatClock(from), deploydb.FormatClock(to)))
		}
		env := &deploydb.Environment{Freezes: freezes}
		const step = 15 * time.Minute
		grid := 5 * 24 * 4 // five days of quarter hours
		type ans struct {
			frozen bool
			reason string
			until  time.Time
		}
		at := func(i int) ans {
			f, r, u := env.FrozenAt(base.Add(time.Duration(i) * step))
			return ans{f, r, u}
		}
		answers := make([]ans, grid+1)
		for i := range answers {
			answers[i] = at(i)
		}
		same := func(a, b ans) bool { return a.frozen == b.frozen && a.reason == b.reason && a.until.Equal(b.until) }
		for range 8 {
			i := rapid.IntRange(0, grid-1).Draw(rt, "at")
			x := base.Add(time.Duration(i) * step)
			a := answers[i]
			if a.frozen && !a.until.IsZero() {
				if !a.until.After(x) {
					rt.Fatalf("FrozenAt(%s): until %s is not after it", fmtTime(x), fmtTime(a.until))
				}
				if f, _, _ := env.FrozenAt(a.until); f {
					rt.Fatalf("FrozenAt(%s) = frozen until %s, but it is frozen then", fmtTime(x), fmtTime(a.until))
				}
			}
			for j := i; j <= grid; j++ {
				g := base.Add(time.Duration(j) * step)
				if a.frozen && (a.until.IsZero() || g.Before(a.until)) && !answers[j].frozen {
					rt.Fatalf("FrozenAt(%s) = frozen until %s, but not at %s", fmtTime(x), fmtTime(a.until), fmtTime(g))
				}
			}
			next := env.NextFreezeChange(x)
			if !next.IsZero() {
				if !next.After(x) {
					rt.Fatalf("NextFreezeChange(%s) = %s, not after it", fmtTime(x), fmtTime(next))
				}
				f, r, u := env.FrozenAt(next)
				if same(a, ans{f, r, u}) {
					rt.Fatalf("NextFreezeChange(%s) = %s, but FrozenAt answers the same there: %+v", fmtTime(x), fmtTime(next), a)
				}
			}
			for j := i + 1; j <= grid; j++ {
				g := base.Add(time.Duration(j) * step)
				if !next.IsZero() && !g.Before(next) {
					break
				}
				if !same(a, answers[j]) {
					rt.Fatalf("NextFreezeChange(%s) = %s, but FrozenAt changes by %s: %+v then %+v", fmtTime(x), fmtTime(next), fmtTime(g), a, answers[j])
				}
			}
		}
	})
}
